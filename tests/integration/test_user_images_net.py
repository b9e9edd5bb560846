"""User images on the real build engine and the real registry storage, pulled by a cloudlet.

`mec image add` of a Dockerfile folder (FROM mec/busybox:latest, a RUN, a COPY and a
CMD) and of a `docker save` archive; `mec image ls` sizes checked against what a
cloudlet's engine pulls from the emulated cloud's registry; `mec image rm`; and the
refusals (failing build with its log tail, corrupt archive, unknown base, clashes), each
leaving the registry storage and the publication record byte for byte as they were.
Image names start with ``mxi-`` and are removed in ``finally``.
"""

import json
import subprocess
import uuid
from pathlib import Path

import docker.errors
import pytest

from mec.cli.main import main
from mec.core.proc import CommandError, run
from mec.edge import images, userimages
from mec.edge.images import registry_ref
from mec.edge.manager import EdgeManager
from mec.edge.regstore import RegistryStore

from edge_net import SUBNET, edge_net

pytestmark = pytest.mark.integration

RUN_ID = uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def env():
    images.ensure_images(["busybox"])
    with edge_net(n_cloudlets=1) as e:
        yield e


def name(what: str) -> str:
    return f"mxi-{what}-{RUN_ID}"


def service_dir(tmp_path: Path, message: str, dirname: str = "svc") -> Path:
    d = tmp_path / dirname
    d.mkdir()
    (d / "message").write_text(message + "\n")
    (d / "Dockerfile").write_text(
        "FROM mec/busybox:latest\n"
        "RUN mkdir -p /srv && echo built-offline > /srv/built\n"
        "COPY message /srv/message\n"
        'CMD ["cat", "/srv/built", "/srv/message"]\n')
    return d


def cleanup(*refs: str) -> None:
    for ref in refs:
        try:
            userimages.remove(ref)
        except userimages.ImageError:
            pass
        run(["docker", "rmi", "-f", f"mec/{ref}"], check=False, timeout=60)


def ls_rows(capsys) -> dict:
    assert main(["image", "ls", "--json"]) == 0
    return {row["ref"]: row for row in json.loads(capsys.readouterr().out)}


def state() -> tuple:
    """The registry storage's files and the publication record, to compare before/after."""
    return RegistryStore().snapshot(), images.PUBLISHED_STAMP.read_bytes()


def engine_tags() -> set[str]:
    out = run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], timeout=30).stdout
    return {t for t in out.split() if RUN_ID in t}


def test_dockerfile_image_is_added_listed_pulled_by_a_cloudlet_and_removed(env, tmp_path,
                                                                            capsys):
    ref = f"{name('hello')}:v1"
    em = EdgeManager.for_engine(env.engines["c0"], f"{SUBNET}.10")
    pulled = registry_ref(ref, env.registry_addr)
    try:
        assert main(["image", "add", str(service_dir(tmp_path, "hello from the user")),
                     "--name", ref]) == 0
        assert f"{ref}: added from dockerfile {tmp_path}/svc/Dockerfile" in capsys.readouterr().out
        row = ls_rows(capsys)[ref]
        assert row["origin"] == "dockerfile" and row["published"] is True
        assert row["layers"] == 3  # busybox's root file system, the RUN, the COPY
        busybox = ls_rows(capsys)["busybox:latest"]
        assert busybox["origin"] == "built-in" and busybox["layers"] == 1
        # compressed: the layer blobs in the registry, less than the engine's unpacked size
        assert busybox["compressed_bytes"] < row["compressed_bytes"] < row["uncompressed_bytes"]
        assert ref in images.known_images()
        assert images.ensure_images([ref]) == {ref: "published (user image)"}

        pull = em.pull(pulled)  # through the cloudlet's namespace, from the cloud's registry
        assert pull.layers_downloaded == 3 and pull.layers_cached == 0
        # every compressed byte crossed the cloudlet's link, plus the protocols' cost
        assert row["compressed_bytes"] < pull.wire_bytes <= 1.25 * row["compressed_bytes"]
        manifest = RegistryStore().manifest(RegistryStore().tag_digest(
            f"mec/{name('hello')}", "v1"))
        assert row["compressed_bytes"] == sum(layer["size"] for layer in manifest["layers"])
        out = em.client.containers.run(pulled, remove=True).decode()
        assert out == "built-offline\nhello from the user\n"
        assert em.remove_image(pulled)

        assert main(["image", "rm", ref]) == 0
        assert "blob(s) no other image used deleted" in capsys.readouterr().out
        assert ref not in ls_rows(capsys) and ref not in images.known_images()
        assert ls_rows(capsys)["busybox:latest"]["published"] is True  # the shared base stays
        with pytest.raises((docker.errors.APIError, RuntimeError)):
            em.pull(pulled)  # the cloud's registry no longer has it
        with pytest.raises(ValueError, match="is not published: .*`mec image add"):
            images.ensure_images([ref])
        assert not engine_tags()
    finally:
        em.remove_image(pulled)
        cleanup(ref)


def test_docker_save_archive_is_added_under_its_own_tag(env, tmp_path, capsys):
    src_tag = f"{name('arch')}:7"
    try:
        service_dir(tmp_path, "from an archive")
        run(["docker", "build", "-q", "--network", "none", "-t", src_tag, str(tmp_path / "svc")],
            timeout=300)
        archive = tmp_path / "img.tar"
        run(["docker", "save", "-o", str(archive), src_tag], timeout=300)
        run(["gzip", str(archive)], timeout=120)
        assert main(["image", "add", f"{archive}.gz"]) == 0
        assert f"{src_tag}: added from archive {archive}.gz" in capsys.readouterr().out
        row = ls_rows(capsys)[src_tag]
        assert row["published"] and row["layers"] == 3 and row["origin"] == "archive"
        assert row["uncompressed_bytes"] > 0
        em = EdgeManager.for_engine(env.engines["c0"], f"{SUBNET}.10")
        pulled = registry_ref(src_tag, env.registry_addr)
        try:
            assert em.client.containers.run(pulled, remove=True).decode().endswith(
                "from an archive\n")
        finally:
            em.remove_image(pulled)
    finally:
        cleanup(src_tag)
        run(["docker", "rmi", "-f", src_tag], check=False, timeout=60)


def refused(capsys, argv: list[str], *expected: str) -> str:
    """Run `mec ARGV`, which must exit 2 with EXPECTED in its message and change nothing."""
    before, tags = state(), engine_tags()
    assert main(argv) == 2
    err = capsys.readouterr().err
    for text in expected:
        assert text in err, err
    assert state() == before, "a refused image changed the registry storage or the record"
    assert engine_tags() == tags
    return err


def test_refused_images_leave_nothing_published(env, tmp_path, capsys):
    ok = f"{name('ok')}:latest"
    try:
        fail = tmp_path / "fail"
        fail.mkdir()
        (fail / "Dockerfile").write_text(
            "FROM mec/busybox:latest\nRUN echo step-one-ran\n"
            "RUN echo about-to-fail && ls /no/such/dir\n")
        err = refused(capsys, ["image", "add", str(fail), "--name", name("fail")],
                      f"{fail}/Dockerfile: the build failed", "about-to-fail",
                      "returned a non-zero code")
        assert "DEPRECATED" not in err and "step-one-ran" in err
        # the failed build's finished steps and its failed container are gone from the engine
        everything = run(["docker", "images", "-a", "-q"], timeout=30).stdout.split()
        steps = run(["docker", "image", "inspect", "--format", "{{.ContainerConfig.Cmd}}",
                     *everything], timeout=60).stdout
        assert "step-one-ran" not in steps
        containers = run(["docker", "ps", "-a", "--format", "{{.Command}}"], timeout=30).stdout
        assert "about-to-fail" not in containers

        unknown = tmp_path / "unknown"
        unknown.mkdir()
        (unknown / "Dockerfile").write_text("FROM nginx:1.25\n")
        refused(capsys, ["image", "add", str(unknown), "--name", name("x")],
                "FROM nginx:1.25: the Docker engine has no such image and nothing is downloaded",
                "mec/busybox:latest")

        good = service_dir(tmp_path, "ok", dirname="good")
        archive = tmp_path / "img.tar"
        assert main(["image", "add", str(good), "--name", ok]) == 0
        run(["docker", "save", "-o", str(archive), f"mec/{ok}"], timeout=300)
        data = archive.read_bytes()
        (tmp_path / "cut.tar").write_bytes(data[: len(data) // 2])
        refused(capsys, ["image", "add", str(tmp_path / "cut.tar"), "--name", name("cut")],
                "cut.tar: corrupt archive")
        (tmp_path / "junk.tar.gz").write_bytes(b"\x1f\x8b" + bytes(range(256)) * 8)
        refused(capsys, ["image", "add", str(tmp_path / "junk.tar.gz")],
                "junk.tar.gz: corrupt archive")

        refused(capsys, ["image", "add", str(tmp_path / "img.tar")],  # tagged mec/<ok>
                f"{ok} already exists, added from dockerfile {good}/Dockerfile; use --replace")
        refused(capsys, ["image", "add", str(good), "--name", "httpd:mine"],
                "'httpd' is a built-in image's name")
        refused(capsys, ["image", "add", str(tmp_path / "empty-dir-missing")],
                "no such file or directory")
        refused(capsys, ["image", "rm", "debian"], "debian is a built-in image")
    finally:
        cleanup(ok)
        for log in images.BUILD_DIR.glob(f"user-mxi-*-{RUN_ID}-*.log"):
            log.unlink()  # the failed build's log, named in its error


def test_replace_publishes_the_new_image_and_drops_the_old_layers(env, tmp_path, capsys):
    ref = f"{name('rep')}:latest"
    store = RegistryStore()
    try:
        assert main(["image", "add", str(service_dir(tmp_path, "first", "one")),
                     "--name", ref]) == 0
        first = store.content(f"mec/{ref.split(':')[0]}", "latest")
        refused(capsys, ["image", "add", str(service_dir(tmp_path, "second", "two")),
                         "--name", ref], "use --replace")
        assert main(["image", "add", str(tmp_path / "two"), "--name", ref, "--replace"]) == 0
        assert f"{ref}: replaced from dockerfile" in capsys.readouterr().out
        second = store.content(f"mec/{ref.split(':')[0]}", "latest")
        assert second.manifest_digest != first.manifest_digest
        copy_layer = first.layers[-1]  # the COPY of "first": no manifest uses it any more
        assert not store.blob_path(copy_layer).exists()
        assert store.blob_path(first.layers[0]).exists()  # busybox's layer stays
        probe = subprocess.run(["docker", "run", "--rm", f"mec/{ref}"], capture_output=True,
                               text=True, timeout=60)
        assert probe.stdout.endswith("second\n")
    finally:
        cleanup(ref)


def test_an_image_sharing_a_built_ins_id_never_takes_the_built_in_with_it(env, tmp_path,
                                                                          capsys):
    """An archive of mec/busybox itself: refused under its own name; added under another, then
    replaced and removed, the built-in keeps its tag, its registry blobs and its pulls."""
    ref = f"{name('bb')}:latest"
    busybox_id = run(["docker", "image", "inspect", "--format", "{{.Id}}",
                      "mec/busybox:latest"], timeout=30).stdout.strip()
    archive = tmp_path / "busybox.tar"
    run(["docker", "save", "-o", str(archive), "mec/busybox:latest"], timeout=120)
    try:
        refused(capsys, ["image", "add", str(archive)], "'busybox' is a built-in image's name")
        assert main(["image", "add", str(archive), "--name", ref]) == 0
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        (scratch / "data").write_text("no busybox below\n")
        (scratch / "Dockerfile").write_text("FROM scratch\nCOPY data /data\n")
        # (not FROM busybox: a child image would keep busybox's id alive by itself)
        assert main(["image", "add", str(scratch), "--name", ref, "--replace"]) == 0
        assert main(["image", "rm", ref]) == 0
        capsys.readouterr()
        assert run(["docker", "image", "inspect", "--format", "{{.Id}}", "mec/busybox:latest"],
                   timeout=30).stdout.strip() == busybox_id
        row = ls_rows(capsys)["busybox:latest"]
        assert row["published"] and row["compressed_bytes"] > 0.2e6
    finally:
        cleanup(ref)


def test_a_push_that_fails_after_uploading_is_rolled_back(env, tmp_path, capsys, monkeypatch):
    """The layers reached the registry, then the push failed: nothing of it stays."""
    ref = f"{name('half')}:latest"
    real_push = images.push

    def push_then_fail(local_tag, image, registry):
        real_push(local_tag, image, registry)  # every blob and the manifest are in the storage
        raise CommandError(["docker", "push"], 1, "simulated: the registry went away")

    monkeypatch.setattr(images, "push", push_then_fail)
    try:
        refused(capsys, ["image", "add", str(service_dir(tmp_path, "half")), "--name", ref],
                f"publishing {ref} failed, nothing was published",
                "simulated: the registry went away")
        assert ref not in images.known_images()
    finally:
        cleanup(ref)
