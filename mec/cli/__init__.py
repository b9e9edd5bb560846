"""The ``mec`` command line: :mod:`mec.cli.main` builds the parser, one module per subcommand.

Each module here exposes ``register(subparsers)``; the work itself lives in the
layers below (``mec.host``, ``mec.measure``, ``mec.bench``, ``scenarios``...), so
a subcommand module only parses arguments, calls, and prints.
"""
