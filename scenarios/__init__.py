"""Experiment scripts, each runnable as ``sudo python3 scenarios/NAME.py`` or ``mec run NAME``."""
