#!/usr/bin/env bash
# Installs Containernet, at the pinned commit the testbed was checked with, from its own
# public source into its OWN virtual environment, and this project into that environment
# too, so `--backend containernet` works (docs/containernet.md). As root, after
# scripts/setup.sh (which brings Debian's mininet package, whose mnexec Containernet uses,
# and the Docker engine). The Vagrantfile runs it when MEC_VM_CONTAINERNET=1.
#
# Containernet's package is itself called `mininet`: it never goes into the project's
# .venv. Its Ansible playbook is not used: it would install docker-ce beside Debian's
# docker.io and pip packages into the system Python.
#
#   sudo bash scripts/install-containernet.sh     # then:
#   sudo /opt/containernet/venv/bin/mec net up topologies/line2.yaml --backend containernet
#
# Idempotent: a second run with the same pin only re-checks the import.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

CONTAINERNET_URL=${CONTAINERNET_URL:-https://github.com/containernet/containernet.git}
# "3.0" in its own version string; the master commit of 2024-01-15 (the v3.1 tag is of
# 2019 and predates the Python 3 fixes). Change both together, then rerun the backend's test.
CONTAINERNET_COMMIT=${CONTAINERNET_COMMIT:-c0689423329113ae0d10c8a59433605276059218}
PREFIX=${CONTAINERNET_PREFIX:-/opt/containernet}
SRC=$PREFIX/src
VENV=$PREFIX/venv
PYTHON=${PYTHON:-python3}
# The pins Containernet's docker<=6.0.1 needs (it breaks with requests>=2.32 and urllib3 2).
PINS=("docker<=6.0.1" "requests<2.32" "urllib3<2" "python-iptables")

if [ "$(id -u)" != 0 ]; then
    echo "install-containernet.sh: run as root" >&2
    exit 1
fi
for tool in git "$PYTHON" mnexec docker; do
    command -v "$tool" >/dev/null || {
        echo "install-containernet.sh: $tool is missing (run scripts/setup.sh first)" >&2
        exit 1
    }
done

mkdir -p "$PREFIX"
if [ ! -d "$SRC/.git" ]; then
    echo "== fetching Containernet from $CONTAINERNET_URL"
    git init -q "$SRC"
    git -C "$SRC" remote add origin "$CONTAINERNET_URL"
fi
if [ "$(git -C "$SRC" rev-parse -q --verify HEAD 2>/dev/null)" != "$CONTAINERNET_COMMIT" ]; then
    git -C "$SRC" fetch -q --depth 1 origin "$CONTAINERNET_COMMIT"
    git -C "$SRC" checkout -q --detach FETCH_HEAD
fi
got=$(git -C "$SRC" rev-parse HEAD)
if [ "$got" != "$CONTAINERNET_COMMIT" ]; then
    echo "install-containernet.sh: checked out $got, not the pinned $CONTAINERNET_COMMIT" >&2
    exit 1
fi

stamp="$CONTAINERNET_COMMIT $(cat requirements.txt setup.py | sha256sum | cut -c1-16)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.mec-stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "== installing Containernet $CONTAINERNET_COMMIT and the testbed into $VENV"
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip setuptools wheel
    "$VENV/bin/pip" install -q -r requirements.txt "${PINS[@]}"
    "$VENV/bin/pip" install -q "$SRC" "${PINS[@]}"
    "$VENV/bin/pip" install -q --no-deps --no-build-isolation -e "$REPO"
    echo "$stamp" > "$VENV/.mec-stamp"
fi

# Containernet puts containers under the cgroup parent /docker, which an engine with the
# systemd cgroup driver refuses (upstream issue 259): the VM's engine (started by systemd,
# cgroup v2) gets the cgroupfs driver.
if [ "$(docker info --format '{{.CgroupDriver}}' 2>/dev/null)" = systemd ]; then
    echo "== switching the Docker engine to the cgroupfs driver (/etc/docker/daemon.json)"
    mkdir -p /etc/docker
    "$PYTHON" - <<'PY'
import json, pathlib
path = pathlib.Path("/etc/docker/daemon.json")
text = path.read_text() if path.exists() else ""
conf = json.loads(text) if text.strip() else {}
opts = [o for o in conf.get("exec-opts", []) if not o.startswith("native.cgroupdriver=")]
conf["exec-opts"] = opts + ["native.cgroupdriver=cgroupfs"]
path.write_text(json.dumps(conf, indent=2) + "\n")
PY
    if command -v systemctl >/dev/null && systemctl is-active -q docker; then
        systemctl restart docker
    else
        echo "install-containernet.sh: restart the Docker engine to apply it" >&2
    fi
fi

# The check the backend itself makes (topologies/backends.py: containernet_available).
"$VENV/bin/python" - <<'PY'
from mininet.net import Containernet, CONTAINERNET_VERSION  # noqa: F401
print("== Containernet", CONTAINERNET_VERSION, "importable")
PY
