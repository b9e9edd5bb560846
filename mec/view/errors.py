"""What the view reports as bad input."""


class ViewError(Exception):
    """Bad input for the view: an unknown results folder, a port in use (`mec view` exits 2)."""
