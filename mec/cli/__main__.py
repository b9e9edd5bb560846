"""``python -m mec.cli ARGS``: the same as the ``mec`` command."""

import sys

from mec.cli.main import main

sys.exit(main())
