"""The registry storage read and pruned on disk, on a folder laid out as distribution does.

The integration test (tests/integration/test_user_images_net.py) checks the same code on
the real registry's storage after real pushes.
"""

import hashlib
import json
from pathlib import Path

from mec.edge.regstore import RegistryStore


def blob(store: RegistryStore, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = store.blob_path(digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def link(path: Path, digest: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "link").write_text(digest)


def push(store: RegistryStore, repo: str, tag: str, layers: list[bytes]) -> tuple[str, list[str]]:
    """Lay out REPO:TAG as the registry does after a push: blobs, manifest, links."""
    config = blob(store, json.dumps({"repo": repo, "tag": tag}).encode())
    digests = [blob(store, data) for data in layers]
    manifest = blob(store, json.dumps({
        "schemaVersion": 2, "config": {"digest": config, "size": 10},
        "layers": [{"digest": d, "size": len(x)} for d, x in zip(digests, layers)],
    }).encode())
    r = store.repo_dir(repo)
    for d in (config, *digests):
        link(r / "_layers" / "sha256" / d.split(":")[1], d)
    link(r / "_manifests" / "revisions" / "sha256" / manifest.split(":")[1], manifest)
    link(r / "_manifests" / "tags" / tag / "current", manifest)
    link(r / "_manifests" / "tags" / tag / "index" / "sha256" / manifest.split(":")[1], manifest)
    return manifest, [config, *digests]


def test_content_sums_the_layer_blobs_on_disk(tmp_path):
    store = RegistryStore(tmp_path)
    manifest, _ = push(store, "mec/a", "latest", [b"x" * 1000, b"y" * 234])
    c = store.content("mec/a", "latest")
    assert c.manifest_digest == manifest and len(c.layers) == 2
    assert c.layer_bytes == 1234 and c.missing == ()
    assert store.content("mec/a", "v2") is None and store.content("mec/zzz", "latest") is None


def test_a_missing_layer_blob_is_named_and_leaves_no_size(tmp_path):
    store = RegistryStore(tmp_path)
    _, blobs = push(store, "mec/a", "latest", [b"x" * 10, b"y" * 20])
    store.blob_path(blobs[2]).unlink()
    c = store.content("mec/a", "latest")
    assert c.layer_bytes is None and c.missing == (blobs[2],)


def test_remove_tag_keeps_the_blobs_another_manifest_uses(tmp_path):
    store = RegistryStore(tmp_path)
    base = b"base layer" * 100
    push(store, "mec/busybox", "latest", [base])
    manifest, blobs = push(store, "mec/mine", "latest", [base, b"my own layer"])
    deleted = store.remove_tag("mec/mine", "latest")
    assert sorted(deleted) == sorted([manifest, blobs[0], blobs[2]])  # manifest, config, own
    assert not any(store.blob_path(d).exists() for d in deleted)
    assert store.blob_path(blobs[1]).is_file()  # the base layer busybox uses stays
    assert not store.repo_dir("mec/mine").exists()
    assert store.content("mec/busybox", "latest").layer_bytes == len(base)


def test_remove_one_of_two_tags_on_one_manifest_keeps_the_manifest(tmp_path):
    store = RegistryStore(tmp_path)
    manifest, blobs = push(store, "mec/mine", "v1", [b"layer"])
    link(store.repo_dir("mec/mine") / "_manifests" / "tags" / "v2" / "current", manifest)
    assert store.remove_tag("mec/mine", "v1") == []
    assert store.tags("mec/mine") == ["v2"] and store.content("mec/mine", "v2").layer_bytes == 5
    assert sorted(store.remove_tag("mec/mine", "v2")) == sorted([manifest, *blobs])
    assert not store.repo_dir("mec/mine").exists()


def test_revisions_names_every_repository_holding_a_manifest(tmp_path):
    store = RegistryStore(tmp_path)
    m1, _ = push(store, "mec/a", "latest", [b"1"])
    m2, _ = push(store, "mec/b", "latest", [b"2"])
    assert store.revisions() == {m1: {"mec/a"}, m2: {"mec/b"}}
    assert RegistryStore(tmp_path / "none").revisions() == {}


def test_snapshot_changes_when_anything_is_written(tmp_path):
    store = RegistryStore(tmp_path)
    before = store.snapshot()
    push(store, "mec/a", "latest", [b"1"])
    assert store.snapshot() != before
