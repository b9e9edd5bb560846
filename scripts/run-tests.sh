#!/usr/bin/env bash
# Run the whole test suite (unit + integration, as root). pytest's "no tests collected"
# (exit 5) is a failure here, never a silent pass. Leftovers of an interrupted earlier
# run are removed first, and everything the tests created is removed at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/mec clean >/dev/null || true
.venv/bin/python -m pytest "$@"
rc=$?
.venv/bin/mec clean || true
if [ $rc -eq 5 ]; then
    echo "run-tests: pytest collected no tests: failing" >&2
    exit 1
fi
exit $rc
