#!/usr/bin/env bash
# One-command set-up of the MEC testbed on a Debian 12 / Ubuntu LTS machine, as root.
# Installs the distribution packages and the pinned Python environment (.venv), starts
# Open vSwitch and the Docker engine (no systemd needed), builds and publishes the
# service images. Idempotent: on a machine where everything is done it takes seconds.
# The Vagrantfile provisions the VM with this same script.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PYTHON=${PYTHON:-python3}

if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: run as root (sudo make setup)" >&2
    exit 1
fi

APT_PACKAGES=(
    openvswitch-switch mininet docker.io docker-registry iperf3 busybox-static debootstrap
    iproute2 iptables ethtool curl libnetfilter-queue-dev rsync procps psmisc util-linux
    iputils-ping sudo make gcc python3-dev python3-venv ca-certificates
    openssh-server  # sshd of the test servers: mec setup --servers, docs/scale-out.md
    vagrant  # only to `vagrant validate` the Vagrantfile in the tests (~78 MB, ~10 s)
    chromium  # headless browser of the live view's test (tests/integration/test_view_browser.py)
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
        || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing Debian packages: ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Python environment: pinned requirements, the ryu 4.34 line beside os-ken (CI tests both),
# and the project itself (editable). Redone only when the pins change.
stamp=$(cat requirements.txt requirements-ryu.txt setup.py | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.mec-stamp 2>/dev/null)" != "$stamp" ]; then
    echo "== creating the Python environment in $REPO/.venv"
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    .venv/bin/pip install -q --upgrade pip setuptools wheel
    .venv/bin/pip install -q -r requirements.txt
    # ryu 4.34 only builds with setuptools < 68 (PIP_CONSTRAINT for pip < 25.3,
    # PIP_BUILD_CONSTRAINT from 25.3 on).
    build_pins=$(mktemp)
    echo 'setuptools<68' > "$build_pins"
    PIP_CONSTRAINT="$build_pins" PIP_BUILD_CONSTRAINT="$build_pins" \
        .venv/bin/pip install -q -r requirements-ryu.txt
    rm -f "$build_pins"
    .venv/bin/pip install -q --no-deps --no-build-isolation -e .
    echo "$stamp" > .venv/.mec-stamp
fi
ln -sf "$REPO/.venv/bin/mec" /usr/local/bin/mec

# The compiled delay line (rebuilt when its source changes; the Python line otherwise).
bash scripts/build-delayline.sh

# Services (OVS with userspace TSO, Docker engine) and the service images.
.venv/bin/mec setup
