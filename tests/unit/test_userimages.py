"""User images: names, sources, Dockerfile bases, archives, the record, the command's refusals.

No engine here: what needs one (build, load, push, pull) is in
tests/integration/test_user_images_net.py.
"""

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from mec.cli.main import main
from mec.edge import images, imagesource, stamp, userimages
from mec.edge.imagesource import ImageError, Source
from mec.edge.regstore import RegistryStore

from test_regstore import push


@pytest.fixture
def record(tmp_path, monkeypatch):
    """A private publication record (the real one is the machine's)."""
    path = tmp_path / "registry" / "mec-published.json"
    path.parent.mkdir()
    monkeypatch.setattr(images, "PUBLISHED_STAMP", path)
    return path


# --- names -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("echo", ("echo", "latest")), ("my-kv.store_2:v1.2", ("my-kv.store_2", "v1.2")),
    ("a:Tag_1", ("a", "Tag_1"))])
def test_valid_names(text, expected):
    assert userimages.parse_name(text) == expected


@pytest.mark.parametrize("text, why", [
    ("Echo", "invalid image name"), ("my/echo", "invalid image name"), ("-x", "invalid image"),
    ("a--", "invalid image name"), ("x" * 65, "invalid image name"), ("echo:", "invalid image tag"),
    ("echo:.v1", "invalid image tag"), ("echo:a:b", "invalid image tag")])
def test_invalid_names_say_what_is_allowed(text, why):
    with pytest.raises(ImageError, match=why):
        userimages.parse_name(text)


def test_an_archive_needs_exactly_one_tag_or_a_name():
    assert userimages.name_from_tags(Path("a.tar"), ["10.0.0.1:5000/team/kv:3"]) == ("kv", "3")
    assert userimages.name_from_tags(Path("a.tar"), ["kv"]) == ("kv", "latest")
    with pytest.raises(ImageError, match=r"a.tar: the archive's image has no tag: give --name"):
        userimages.name_from_tags(Path("a.tar"), [])
    with pytest.raises(ImageError, match=r"has 2 tags \(a:1, b:2\): give --name"):
        userimages.name_from_tags(Path("a.tar"), ["a:1", "b:2"])
    with pytest.raises(ImageError, match="gives no usable name"):
        userimages.name_from_tags(Path("a.tar"), ["Upper:1"])


# --- sources -----------------------------------------------------------------------------

def test_source_of_tells_a_folder_from_an_archive(tmp_path):
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "img.tar.gz").write_bytes(b"")
    assert imagesource.source_of(tmp_path / "svc") == \
        Source("dockerfile", tmp_path / "svc" / "Dockerfile")
    assert imagesource.source_of(tmp_path / "img.tar.gz").kind == "archive"


def test_source_of_refuses_naming_the_file(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ImageError, match=f"{tmp_path}/empty/Dockerfile: no Dockerfile in"):
        imagesource.source_of(tmp_path / "empty")
    with pytest.raises(ImageError, match=f"{tmp_path}/nope: no such file or directory"):
        imagesource.source_of(tmp_path / "nope")
    with pytest.raises(ImageError, match="notes.txt: neither a folder with a Dockerfile nor"):
        imagesource.source_of(tmp_path / "notes.txt")


def test_from_lines_reads_stages_flags_and_continuations():
    text = ("# syntax comment\nARG X=1\nfrom --platform=linux/amd64 mec/busybox:latest AS build\n"
            "RUN true\nFROM \\\n  scratch\nCOPY --from=build /bin /bin\n")
    assert imagesource.from_lines(text) == [("mec/busybox:latest", "build"), ("scratch", None)]


def check(tmp_path, text, have=("mec/busybox:latest",)):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(text)
    imagesource.check_bases(dockerfile, lambda image: image in have, ["mec/busybox:latest"])


def test_bases_must_be_scratch_a_stage_or_in_the_engine(tmp_path):
    check(tmp_path, "FROM scratch\nCOPY a /a\n")
    check(tmp_path, "FROM mec/busybox:latest AS b\nFROM b\nFROM B\n")
    with pytest.raises(ImageError, match=r"Dockerfile: FROM nginx:1: the Docker engine has no "
                       r"such image and nothing is downloaded; .*mec/busybox:latest"):
        check(tmp_path, "FROM mec/busybox:latest\nFROM nginx:1\n")
    with pytest.raises(ImageError, match="a build argument in FROM is not supported"):
        check(tmp_path, "ARG B=scratch\nFROM $B\n")
    with pytest.raises(ImageError, match="Dockerfile: no FROM instruction"):
        check(tmp_path, "RUN true\n")


def test_log_tail_drops_the_legacy_builder_notice():
    log = "\n".join(f"line {i}" for i in range(30)) + (
        "\nDEPRECATED: The legacy builder is deprecated and will be removed in a future "
        "release.\n            BuildKit is currently disabled; enable it by removing the "
        "DOCKER_BUILDKIT=0\n            environment-variable.\n\nThe command failed: 1\n")
    tail = imagesource.log_tail(log)
    assert len(tail) == 20 and tail[-1] == "The command failed: 1" and tail[0] == "line 11"


# --- archives ----------------------------------------------------------------------------

def save_archive(path: Path, manifest, gz=False, extra=()) -> Path:
    """A tar shaped like `docker save`'s: a layer, a config, repositories, manifest.json."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        files = [("abc/layer.tar", b"L" * 100), ("cfg.json", b"{}"),
                 ("repositories", b'{"x":{"1":"abc"}}'), *extra]
        if manifest is not None:
            files.append(("manifest.json", json.dumps(manifest).encode()))
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buf.getvalue()) if gz else buf.getvalue())
    return path


def one(tags):
    return [{"Config": "cfg.json", "RepoTags": tags, "Layers": ["abc/layer.tar"]}]


@pytest.mark.parametrize("gz", [False, True])
def test_untagged_copy_keeps_the_image_and_drops_its_tags(tmp_path, gz):
    src = save_archive(tmp_path / ("a.tar.gz" if gz else "a.tar"), one(["kv:3"]), gz=gz)
    assert imagesource.untagged_copy(src, tmp_path / "u.tar") == ["kv:3"]
    with tarfile.open(tmp_path / "u.tar") as tar:
        assert sorted(tar.getnames()) == ["abc/layer.tar", "cfg.json", "manifest.json"]
        manifest = json.loads(tar.extractfile("manifest.json").read())
        assert manifest == [{**one(None)[0]}]
        assert tar.extractfile("abc/layer.tar").read() == b"L" * 100


def test_corrupt_archives_are_refused_with_the_reason(tmp_path):
    good = save_archive(tmp_path / "good.tar", one(["kv:3"])).read_bytes()
    (tmp_path / "cut.tar").write_bytes(good[:700])
    (tmp_path / "junk.tar.gz").write_bytes(b"\x1f\x8b" + b"not gzip at all" * 20)
    (tmp_path / "text.tar").write_bytes(b"hello\n" * 400)
    for name in ("cut.tar", "junk.tar.gz", "text.tar"):
        with pytest.raises(ImageError, match=f"{name}: corrupt archive"):
            imagesource.untagged_copy(tmp_path / name, tmp_path / "u.tar")


def test_archives_not_from_docker_save_or_with_two_images_are_refused(tmp_path):
    with pytest.raises(ImageError, match="not an archive written by `docker save`"):
        imagesource.untagged_copy(save_archive(tmp_path / "a.tar", None), tmp_path / "u.tar")
    with pytest.raises(ImageError, match="holds 2 images; add one image per archive"):
        imagesource.untagged_copy(save_archive(tmp_path / "b.tar", one(["a"]) + one(["b"])),
                                  tmp_path / "u.tar")


# --- the record, clashes, known images ---------------------------------------------------

def test_updating_keeps_every_entry_and_writes_nothing_on_error(record):
    record.write_text(json.dumps({"busybox": "h1"}))
    with stamp.updating(record) as data:
        data["kv:latest"] = {"origin": "archive", "source": "/x.tar"}
    assert stamp.builtins(record) == {"busybox": "h1"}
    assert list(stamp.user_entries(record)) == ["kv:latest"]
    assert images.published() == {"busybox": "h1"}  # the built-ins' view, as before
    before = record.read_bytes()
    with pytest.raises(RuntimeError):
        with stamp.updating(record) as data:
            data.clear()
            raise RuntimeError("push failed")
    assert record.read_bytes() == before


def test_clashes(record, tmp_path):
    record.write_text(json.dumps({"kv:latest": {"origin": "dockerfile",
                                                "source": "/src/kv/Dockerfile"}}))
    mine = Source("dockerfile", Path("/src/kv/Dockerfile"))
    other = Source("archive", Path("/tmp/kv.tar"))
    with pytest.raises(ImageError, match="'httpd' is a built-in image's name"):
        userimages.check_clash("httpd", "v2", other, replace=True)
    with pytest.raises(ImageError, match=r"/tmp/kv.tar: kv:latest already exists, added from "
                       r"dockerfile /src/kv/Dockerfile; use --replace"):
        userimages.check_clash("kv", "latest", other, replace=False)
    assert userimages.check_clash("kv", "latest", other, replace=True)["origin"] == "dockerfile"
    assert userimages.check_clash("kv", "latest", mine, replace=False) is not None  # re-add
    assert userimages.check_clash("kv", "v2", other, replace=False) is None  # another tag


def test_known_images_are_the_recorded_ones_the_storage_holds(record, tmp_path):
    store = RegistryStore(tmp_path / "registry")
    push(store, "mec/busybox", "latest", [b"b"])
    push(store, "mec/kv", "v1", [b"k"])
    record.write_text(json.dumps({
        "busybox": "h", "debian": "h",  # debian recorded but absent from the storage
        "kv:v1": {"origin": "archive", "source": "/kv.tar"},
        "gone:latest": {"origin": "dockerfile", "source": "/g/Dockerfile"}}))
    known = images.known_images(store)
    assert sorted(known) == ["busybox:latest", "kv:v1"]
    assert known["kv:v1"] == images.KnownImage("kv", "v1", "archive", "/kv.tar")
    assert known["kv:v1"].engine_tag == "mec/kv:v1" and known["busybox:latest"].origin == "built-in"


def test_ensure_images_accepts_a_published_user_image_without_building(monkeypatch):
    monkeypatch.setattr(images, "known_images",
                        lambda store=None: {"kv:v1": images.KnownImage("kv", "v1", "archive")})
    monkeypatch.setattr(images, "build", lambda *a, **k: pytest.fail("user images are not built"))
    assert images.ensure_images(["kv:v1"]) == {"kv:v1": "published (user image)"}
    with pytest.raises(ValueError, match="kv is not published: .*`mec image add PATH --name"):
        images.ensure_images(["kv"])  # kv:latest was never added
    with pytest.raises(ValueError, match="busybox:v2: built-in images have only the tag latest"):
        images.ensure_images(["busybox:v2"])


def test_registry_ref_takes_a_tag_and_keeps_the_old_form():
    assert images.registry_ref("httpd", "10.0.3.1:5000") == "10.0.3.1:5000/mec/httpd:latest"
    assert images.registry_ref("kv:v1", "10.0.3.1:5000") == "10.0.3.1:5000/mec/kv:v1"
    assert images.canonical("kv") == "kv:latest"


# --- the command (what is refused before the engine is asked) ----------------------------

def test_cli_refuses_a_bad_path_or_name_with_exit_2(tmp_path, capsys):
    assert main(["image", "add", str(tmp_path / "missing")]) == 2
    assert f"mec image add: {tmp_path}/missing: no such file or directory" in \
        capsys.readouterr().err
    (tmp_path / "svc").mkdir()
    assert main(["image", "add", str(tmp_path / "svc")]) == 2
    assert "svc/Dockerfile: no Dockerfile in" in capsys.readouterr().err
    (tmp_path / "svc" / "Dockerfile").write_text("FROM scratch\n")
    assert main(["image", "add", str(tmp_path / "svc"), "--name", "My/Svc"]) == 2
    assert "invalid image name 'My/Svc'" in capsys.readouterr().err


def test_cli_refuses_to_remove_a_built_in(capsys):
    assert main(["image", "rm", "busybox"]) == 2
    assert "busybox is a built-in image: `mec image rm` removes only images added" in \
        capsys.readouterr().err


def test_cli_image_needs_a_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["image"])
    assert exc.value.code == 2


LEGACY_LOG = """Sending build context to Docker daemon  3.072kB
Step 1/5 : FROM mec/busybox:latest
 ---> 637a08f4736f
Step 2/5 : RUN echo one
 ---> Using cache
 ---> 554a5b8b1550
Step 3/5 : COPY a /a
 ---> 7f78936be7fe
Step 4/5 : RUN echo two && true
 ---> Running in fb06ea575f90
two
Removing intermediate container fb06ea575f90
 ---> 9a1b2c3d4e5f
Step 5/5 : RUN false
 ---> Running in 0a06ea575f90
The command '/bin/sh -c false' returned a non-zero code: 1
"""


def test_steps_built_are_the_new_images_of_a_failed_build():
    """Neither the FROM image nor a cache hit: only what this build made is removed."""
    assert imagesource.steps_built(LEGACY_LOG) == ["7f78936be7fe", "9a1b2c3d4e5f"]
