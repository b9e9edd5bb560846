#!/usr/bin/env bash
# Compile the delay line (topologies/delayline-c/delayline.c) against Debian's
# libnetfilter-queue into .venv/bin/mec-delayline, with the sha256 of its source beside it
# (.venv/bin/mec-delayline.sha256; links use the binary only while that matches the
# source). Rebuilt only when the source changed. When it cannot be built, links use the
# Python line (topologies/delayline.py) and `mec doctor` says so. Called by setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
src=topologies/delayline-c/delayline.c
bin=.venv/bin/mec-delayline
sum=$(sha256sum "$src" | cut -d' ' -f1)
if [ -x "$bin" ] && [ "$(cat "$bin.sha256" 2>/dev/null)" = "$sum" ]; then
    exit 0
fi
echo "== compiling the delay line into $bin"
if gcc -O2 -Wall -Wextra -o "$bin.tmp" "$src" -lnetfilter_queue -lnfnetlink -lm; then
    mv -f "$bin.tmp" "$bin"
    echo "$sum" > "$bin.sha256"
else
    rm -f "$bin.tmp" "$bin" "$bin.sha256"
    echo "build-delayline: the compiled delay line did not build; links use the Python" \
         "line (topologies/delayline.py), which tops out near 350 Mbit/s" >&2
fi
