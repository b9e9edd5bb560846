"""The service images of the paper's three classes, built locally from distribution packages.

No image registry on the internet is reachable here, so the images that the
paper pulled from Docker Hub are rebuilt from the host distribution's packages:

* ``busybox``: a static busybox root file system (~2 MB);
* ``debian``: a ``debootstrap --variant=minbase`` root file system;
* ``httpd``: the same with Apache httpd installed (the largest);
* ``python``: the same with Python 3 and its standard library: not one of the paper's
  classes but a language runtime for the user's own services (a Dockerfile built offline
  by ``mec image add`` may start ``FROM mec/python:latest``; see examples/mec-app/).

A fourth recipe, ``UE_RECIPE`` (``ue``), is not a service image: it is the UE
container of the Containernet backend (``topologies.backends``), built only
when that backend is used and never published.

Each runs ``mec-service`` (see ``mec/edge/files/mec-service``): an HTTP server on
``$MEC_PORT`` whose body names the instance (``$MEC_INSTANCE``). Images are
built into the machine's Docker engine, labelled with a hash of their recipe
(a second build of an unchanged recipe is skipped), then pushed into the
registry storage folder that the emulated cloud node serves.

Images the user adds (``mec image add``, see ``mec.edge.userimages``) are published
into the same storage under ``mec/NAME:TAG``; :func:`known_images` lists both kinds and
:func:`ensure_images` accepts both (a user image is never built here, only checked).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mec.core import config
from mec.core.proc import CommandError, run
from mec.edge import stamp
from mec.edge.regstore import RegistryStore

log = logging.getLogger(__name__)

RECIPE_VERSION = "1"
SERVICE_SCRIPT = Path(__file__).parent / "files" / "mec-service"
BUSYBOX = Path("/bin/busybox")
BUSYBOX_APPLETS = ("sh", "httpd", "mkdir", "printf", "hostname", "ln", "cat", "ls", "sleep",
                   "echo", "sed", "wget", "rm", "du")
BUILD_DIR = config.STATE_DIR / "build"
DEBOOTSTRAP_CACHE = config.STATE_DIR / "cache" / "debootstrap"
PUBLISHED_STAMP = stamp.PUBLISHED_STAMP
DEFAULT_TAG = "latest"


@dataclass(frozen=True)
class ImageRecipe:
    """How one service image class is made."""

    name: str
    description: str
    debootstrap: bool = False  # False: static busybox only
    include: tuple[str, ...] = ()  # extra distribution packages (debootstrap --include)
    service: bool = True  # False: no mec-service; the image's command is /bin/bash
    files: tuple[tuple[str, str], ...] = ()  # (path in the image, text) written last

    @property
    def tag(self) -> str:
        return f"{config.IMAGE_REPO}/{self.name}:latest"

    def recipe_hash(self, suite: str) -> str:
        h = hashlib.sha256()
        fields = [RECIPE_VERSION, self.name, self.debootstrap, self.include,
                  suite if self.debootstrap else ""]
        if not self.service:
            fields.append("no-service")
        if self.files:
            fields.append([list(f) for f in self.files])
        h.update(json.dumps(fields).encode())
        h.update(SERVICE_SCRIPT.read_bytes())
        h.update(hashlib.sha256(BUSYBOX.read_bytes()).digest() if BUSYBOX.exists() else b"")
        return h.hexdigest()[:16]


RECIPES: dict[str, ImageRecipe] = {
    r.name: r
    for r in (
        ImageRecipe("busybox", "static busybox root file system with busybox httpd"),
        ImageRecipe("debian", "distribution minbase root file system, busybox httpd",
                    debootstrap=True),
        ImageRecipe("httpd", "distribution minbase with Apache httpd", debootstrap=True,
                    include=("apache2",)),
        # not one of the paper's classes: a language runtime for your own services (FROM
        # mec/python:latest in a Dockerfile of `mec image add`, e.g. examples/mec-app/)
        ImageRecipe("python", "distribution minbase with Python 3 and its standard library",
                    debootstrap=True, include=("python3",)),
    )
}

#: The UE image of the Containernet backend (not a service image: never published).
#: Containernet drives a Docker host through ``bash`` and configures its interfaces
#: with ``ifconfig``/``ip`` inside it; the probe (``python3 -m mec.measure.probe``) and the
#: checks need python3, ping and curl.
UE_RECIPE = ImageRecipe("ue", "user equipment for Containernet: bash, iproute2, net-tools, "
                        "ping, curl, python3", debootstrap=True,
                        include=("iproute2", "net-tools", "iputils-ping", "curl", "python3"),
                        service=False,
                        # bash >= 5.1 wraps its prompt in bracketed-paste escapes, which Mininet
                        # reads as command output ("Error setting u1-eth0 up: ESC[?2004h").
                        files=(("etc/inputrc", "set enable-bracketed-paste off\n"),))


def split_ref(ref: str) -> tuple[str, str]:
    """(NAME, TAG) of 'NAME' or 'NAME:TAG' (tag ``latest`` when none is given)."""
    name, _, tag = ref.partition(":")
    return name, tag or DEFAULT_TAG


def canonical(ref: str) -> str:
    """'NAME:TAG' of 'NAME' or 'NAME:TAG': the key of :func:`known_images`."""
    return ":".join(split_ref(ref))


def registry_ref(name: str, registry: str) -> str:
    """Reference of a published image (NAME or NAME:TAG) as pulled from REGISTRY ('IP:PORT')."""
    image, tag = split_ref(name)
    return f"{registry}/{config.IMAGE_REPO}/{image}:{tag}"


@dataclass(frozen=True)
class KnownImage:
    """A published image: a built-in recipe's or one the user added."""

    name: str
    tag: str
    origin: str  # "built-in", "dockerfile" or "archive"
    source: str | None = None  # the Dockerfile or archive it came from (user images)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def engine_tag(self) -> str:
        """Its tag in the build engine (also what a Dockerfile may name in FROM)."""
        return f"{config.IMAGE_REPO}/{self.ref}"


def apt_source(etc_apt: Path = Path("/etc/apt")) -> tuple[str, str]:
    """The (mirror URI, suite) the host's apt uses for its main distribution archive."""
    entries: list[tuple[str, str]] = []
    sources_d = etc_apt / "sources.list.d"
    for path in sorted(sources_d.glob("*.sources")):
        for block in path.read_text().split("\n\n"):
            fields: dict[str, str] = {}
            for line in block.splitlines():
                if ":" in line and not line.lstrip().startswith("#"):
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("uris"):
                entries.append((fields["uris"].split()[0], fields.get("suites", "").split()[0]))
    lists = [etc_apt / "sources.list", *sorted(sources_d.glob("*.list"))]
    for path in lists:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            words = [w for w in line.split() if not w.startswith("[")]
            if len(words) >= 3 and words[0] == "deb":
                entries.append((words[1], words[2]))
    for uri, suite in entries:
        if "security" not in uri and "security" not in suite and "-" not in suite:
            return uri, suite
    raise RuntimeError("no main distribution archive found in /etc/apt sources "
                       "(needed by debootstrap to build the debian/httpd images)")


def _docker(*args: str, timeout: float = 600) -> str:
    return run(["docker", *args], timeout=timeout).stdout.strip()


def image_label(tag: str) -> str | None:
    """The recipe label of an image in the build engine, or None if absent."""
    proc = run(["docker", "image", "inspect", "--format",
                '{{index .Config.Labels "mec.recipe"}}', tag], check=False, timeout=30)
    return proc.stdout.strip() if proc.returncode == 0 else None


def image_size(tag: str) -> int:
    return int(_docker("image", "inspect", "--format", "{{.Size}}", tag))


def _fill_busybox(root: Path) -> None:
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in BUSYBOX_APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    for d in ("tmp", "srv/www", "etc", "proc", "sys", "dev"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")


def _fill_debootstrap(root: Path, recipe: ImageRecipe, mirror: str, suite: str) -> None:
    DEBOOTSTRAP_CACHE.mkdir(parents=True, exist_ok=True)
    argv = ["debootstrap", "--variant=minbase", f"--cache-dir={DEBOOTSTRAP_CACHE}"]
    if recipe.include:
        argv.append("--include=" + ",".join(recipe.include))
    argv += [suite, str(root), mirror]
    log.info("debootstrap %s (%s): this takes a minute the first time", recipe.name, suite)
    run(argv, timeout=1800)
    for junk in ("var/lib/apt/lists", "var/cache/apt/archives"):
        for item in (root / junk).glob("*"):
            if item.is_file():
                item.unlink()
    (root / "usr/local/bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "usr/local/bin" / "busybox")


def build(recipe: ImageRecipe, force: bool = False) -> str:
    """Build one image into the build engine unless an identical recipe is there already."""
    mirror, suite = apt_source() if recipe.debootstrap else ("", "")
    digest = recipe.recipe_hash(suite)
    if not force and image_label(recipe.tag) == digest:
        return "cached"
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD_DIR, prefix=f"{recipe.name}-") as tmp:
        root = Path(tmp) / "rootfs"
        if recipe.debootstrap:
            _fill_debootstrap(root, recipe, mirror, suite)
        else:
            _fill_busybox(root)
        (root / "usr/local/bin").mkdir(parents=True, exist_ok=True)
        if recipe.service:
            shutil.copy2(SERVICE_SCRIPT, root / "usr/local/bin" / "mec-service")
            changes = [
                'CMD ["/usr/local/bin/mec-service"]',
                f"ENV MEC_PORT={config.SERVICE_PORT}",
                f"EXPOSE {config.SERVICE_PORT}",
            ]
        else:
            changes = ['CMD ["/bin/bash"]']
        for path, text in recipe.files:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)
        changes += [
            "ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            f"LABEL mec.recipe={digest} mec.image={recipe.name}",
        ]
        argv = ["docker", "import"]
        for change in changes:
            argv += ["--change", change]
        argv += ["-", recipe.tag]
        tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."],
                               stdout=subprocess.PIPE)
        imp = subprocess.run(argv, stdin=tar.stdout, capture_output=True, text=True, timeout=900)
        tar.stdout.close()
        tar.wait(timeout=60)  # docker import has read all it sends
        if imp.returncode != 0 or tar.returncode != 0:
            raise CommandError(argv, imp.returncode or tar.returncode, imp.stderr)
    return "built"


def ensure_ue_image(force: bool = False) -> str:
    """Build the Containernet UE image into the build engine if needed; returns its tag."""
    what = build(UE_RECIPE, force=force)
    log.info("image ue: %s (%.1f MB)", what, image_size(UE_RECIPE.tag) / 1e6)
    return UE_RECIPE.tag


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def published() -> dict[str, str]:
    """name -> recipe hash of the built-in images present in the registry storage."""
    return stamp.builtins(PUBLISHED_STAMP)


def known_images(store: RegistryStore | None = None) -> dict[str, KnownImage]:
    """'NAME:TAG' -> every published image the registry storage holds, built-in or user's.

    An image counts when the publication record names it AND the storage holds its tag.
    """
    store = store or RegistryStore()
    out: dict[str, KnownImage] = {}
    for name in published():
        if name in RECIPES:
            out[f"{name}:{DEFAULT_TAG}"] = KnownImage(name, DEFAULT_TAG, "built-in")
    for ref, entry in stamp.user_entries(PUBLISHED_STAMP).items():
        name, tag = split_ref(ref)
        out[ref] = KnownImage(name, tag, str(entry.get("origin")), entry.get("source"))
    return {ref: img for ref, img in out.items()
            if store.tag_digest(f"{config.IMAGE_REPO}/{img.name}", img.tag)}


def publish(names: list[str]) -> list[str]:
    """Push images whose recipe changed into the registry storage; returns the names pushed."""
    from topologies.registry import RegistryServer

    done = published()
    todo = [n for n in names if done.get(n) != image_label(RECIPES[n].tag)]
    if not todo:
        return []
    addr = local_registry()
    with RegistryServer(name="publish", addr=addr):
        for name in todo:
            push(RECIPES[name].tag, name, addr)
            with stamp.updating(PUBLISHED_STAMP) as record:
                record[name] = image_label(RECIPES[name].tag) or ""
    return todo


def local_registry() -> str:
    """A free loopback 'IP:PORT' for a short-lived registry server that publishes."""
    return f"127.0.0.1:{_free_port()}"


def push(local_tag: str, name: str, registry: str) -> None:
    """Push the build engine's LOCAL_TAG as NAME (or NAME:TAG) into the registry at REGISTRY."""
    ref = registry_ref(name, registry)
    _docker("tag", local_tag, ref)
    try:
        _docker("push", ref, timeout=900)
    finally:
        run(["docker", "rmi", ref], check=False, timeout=60)


def ensure_images(names: list[str] | None = None, force: bool = False) -> dict[str, str]:
    """Build (if needed) and publish the service images; returns name -> what was done.

    NAMES are built-in recipes (built and published here when their recipe changed) or
    images the user published with ``mec image add`` (NAME or NAME:TAG; only checked:
    a user image that is not published is an error naming the command that adds it).
    """
    names = names or list(RECIPES)
    odd = [n for n in names if split_ref(n)[0] in RECIPES and split_ref(n)[1] != DEFAULT_TAG]
    if odd:
        raise ValueError(f"image {', '.join(odd)}: built-in images have only the tag "
                         f"{DEFAULT_TAG}")
    user = [n for n in names if split_ref(n)[0] not in RECIPES]
    if user:
        known = known_images()
        missing = [n for n in user if canonical(n) not in known]
        if missing:
            raise ValueError(
                f"image {', '.join(missing)} is not published: built-in images are "
                f"{', '.join(RECIPES)}; add your own with `mec image add PATH --name NAME[:TAG]`")
    done = {n: "published (user image)" for n in user}
    names = [split_ref(n)[0] for n in names if n not in user]
    for name in names:
        done[name] = build(RECIPES[name], force=force)
        log.info("image %s: %s (%.1f MB)", name, done[name], image_size(RECIPES[name].tag) / 1e6)
    for name in publish(names):
        done[name] += ", published"
    return done
