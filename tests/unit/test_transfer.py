"""File transfer mechanics on loopback (no namespaces needed): bytes equal the file size."""

import os

import pytest

from mec.core import config
from mec.edge.transfer import transfer_file


@pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox")
def test_transfer_on_loopback_moves_exact_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "RUN_DIR", tmp_path / "run")  # no root needed
    src = tmp_path / "src" / "blob.tar.gz"
    src.parent.mkdir()
    payload = os.urandom(300_000)
    src.write_bytes(payload)
    res = transfer_file(None, "127.0.0.1", None, src, dest_dir=tmp_path / "dst")
    assert res.bytes == len(payload) and res.seconds > 0
    assert res.wire_bytes is None  # no namespace to count in: missing, not the file size
    assert res.path.read_bytes() == payload and res.path != src
