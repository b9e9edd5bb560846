"""Where a user image comes from: a folder with a Dockerfile, or a ``docker save`` archive.

Either becomes an image in the machine's Docker engine (the ``docker`` CLI's default
engine), under a staging tag, before anything is published:

* a Dockerfile is built OFFLINE: every ``FROM`` must be ``scratch``, an earlier stage or
  an image the engine already has (``mec/busybox:latest``...), checked before the build so
  that nothing is looked up on the internet; the legacy builder runs with
  ``--network none`` (RUN steps work, without a network);
* an archive is read first (a corrupt one is refused with the reason), its tags are
  taken from its ``manifest.json``, and it is loaded UNTAGGED (a copy without its tags),
  so that loading it never moves a tag the engine already has (e.g. a built-in's).

Every failure is an :class:`ImageError` whose message names the file and the reason.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mec.core.proc import CommandError, CommandTimeout, run

log = logging.getLogger(__name__)

#: Lines of a failing build's log shown in the error.
LOG_TAIL_LINES = 20
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
BUILD_TIMEOUT_S = 1800.0


class ImageError(Exception):
    """A user image refused: the message names the file and the reason."""


@dataclass(frozen=True)
class Source:
    """What PATH holds: a Dockerfile (with its build context) or an archive."""

    kind: str  # "dockerfile" or "archive"
    path: Path  # the Dockerfile or the archive, absolute

    @property
    def context(self) -> Path:
        return self.path.parent

    @property
    def origin(self) -> str:
        return f"{'Dockerfile' if self.kind == 'dockerfile' else 'archive'} {self.path}"


def source_of(path: Path) -> Source:
    """Tell what PATH is, or refuse it naming the file."""
    path = path.resolve()
    if path.is_dir():
        dockerfile = path / "Dockerfile"
        if not dockerfile.is_file():
            raise ImageError(f"{dockerfile}: no Dockerfile in {path} (a folder to build needs "
                             "one; or give an archive written by `docker save`)")
        return Source("dockerfile", dockerfile)
    if not path.exists():
        raise ImageError(f"{path}: no such file or directory")
    if path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES):
        return Source("archive", path)
    raise ImageError(f"{path}: neither a folder with a Dockerfile nor an archive written by "
                     f"`docker save` ({', '.join(ARCHIVE_SUFFIXES)})")


# --- Dockerfile --------------------------------------------------------------------------

def from_lines(text: str) -> list[tuple[str, str | None]]:
    """(base image, stage alias or None) of every FROM instruction of a Dockerfile."""
    joined = re.sub(r"\\[ \t]*\r?\n", " ", text)
    out = []
    for line in joined.splitlines():
        words = line.split()
        if not words or words[0].upper() != "FROM":
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if not args:
            continue
        alias = args[2] if len(args) >= 3 and args[1].upper() == "AS" else None
        out.append((args[0], alias))
    return out


def check_bases(dockerfile: Path, engine_has: Callable[[str], bool],
                offered: list[str]) -> None:
    """Refuse a FROM that would need a download: only scratch, earlier stages, or images
    the engine has (OFFERED lists them in the message)."""
    stages: set[str] = set()
    bases = from_lines(dockerfile.read_text(errors="replace"))
    if not bases:
        raise ImageError(f"{dockerfile}: no FROM instruction")
    for base, alias in bases:
        if "$" in base:
            raise ImageError(f"{dockerfile}: FROM {base}: a build argument in FROM is not "
                             "supported; name the base image")
        if base != "scratch" and base.lower() not in stages and not engine_has(base):
            raise ImageError(
                f"{dockerfile}: FROM {base}: the Docker engine has no such image and nothing "
                f"is downloaded; use FROM scratch or an image the project has: "
                f"{', '.join(offered) or '(none: run `mec setup --images`)'}")
        if alias:
            stages.add(alias.lower())


def engine_has(image: str) -> bool:
    """Whether the build engine has IMAGE (a tag or an id)."""
    return run(["docker", "image", "inspect", "--format", "{{.Id}}", image],
               check=False, timeout=30).returncode == 0


#: The legacy builder's notice (stderr, so it comes last): noise in a failure's tail.
_NOTICE = re.compile(r"DEPRECATED: The legacy builder is deprecated.*?environment-variable\.\s*",
                     re.S)


def log_tail(output: str, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last LINES non-blank lines of a build log, without the legacy builder's notice."""
    kept = [line for line in _NOTICE.sub("", output).splitlines() if line.strip()]
    return kept[-lines:]


def build(source: Source, tag: str, labels: dict[str, str], log_file: Path) -> str:
    """Build SOURCE's Dockerfile offline as TAG; returns the image id. The whole build log
    goes to LOG_FILE; a failure shows its last lines."""
    argv = ["docker", "build", "--network", "none", "--force-rm", "-f", str(source.path),
            "-t", tag]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    argv.append(str(source.context))
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}  # the legacy builder: no buildx here
    log_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        proc = run(argv, check=False, env=env, timeout=BUILD_TIMEOUT_S)
        output, code = proc.stdout + proc.stderr, proc.returncode
    except CommandTimeout as exc:
        output, code = f"{exc.output}\n{exc}", -1
    if code != 0:
        log_file.write_text(output)
        remove_untagged(steps_built(output))
        tail = "\n".join(log_tail(output))
        raise ImageError(f"{source.path}: the build failed (exit {code}); the last "
                         f"{LOG_TAIL_LINES} lines of its log ({log_file}):\n{tail}")
    log_file.unlink(missing_ok=True)  # an earlier failure's log is history now
    return run(["docker", "image", "inspect", "--format", "{{.Id}}", tag],
               timeout=30).stdout.strip()


def steps_built(output: str) -> list[str]:
    """Ids of the images a legacy build created (not its FROM images, not cache hits)."""
    ids, previous = [], ""
    for line in output.splitlines():
        found = re.fullmatch(r" ---> ([0-9a-f]{12,64})", line.rstrip())
        if found and not re.match(r"(Step \d+/\d+ : FROM |\s*---> Using cache)", previous,
                                  re.I):
            ids.append(found.group(1))
        if line.strip():
            previous = line
    return ids


def remove_untagged(image_ids: list[str]) -> None:
    """Remove the images a failed build left (its finished steps), newest first, when they
    carry no tag; ``docker image rm`` without force also keeps any image another uses."""
    for image_id in reversed(image_ids):
        tags = run(["docker", "image", "inspect", "--format", "{{len .RepoTags}}", image_id],
                   check=False, timeout=30)
        if tags.returncode == 0 and tags.stdout.strip() == "0":
            run(["docker", "image", "rm", image_id], check=False, timeout=60)


# --- archive -----------------------------------------------------------------------------

ARCHIVE_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError, ValueError, KeyError)


def untagged_copy(archive: Path, dest: Path) -> list[str]:
    """Copy the ``docker save`` ARCHIVE into the plain tar DEST without its tags; returns the
    tags it had. Refuses a corrupt archive, one that is not ``docker save``'s, or one holding
    several images."""
    manifest: list | None = None
    try:
        with tarfile.open(archive, "r:*") as src, tarfile.open(dest, "w") as out:
            for member in src:
                if member.name in ("repositories", "./repositories"):
                    continue  # the legacy tag list: the manifest is what docker load reads
                data = src.extractfile(member) if member.isfile() else None
                if member.name.lstrip("./") == "manifest.json" and data is not None:
                    manifest = json.loads(data.read())
                    untagged = json.dumps([{**e, "RepoTags": None} for e in manifest]).encode()
                    member.size = len(untagged)
                    data = io.BytesIO(untagged)
                out.addfile(member, data)
    except ARCHIVE_ERRORS as exc:
        raise ImageError(f"{archive}: corrupt archive ({type(exc).__name__}: {exc})") from None
    if not isinstance(manifest, list) or not manifest:
        raise ImageError(f"{archive}: not an archive written by `docker save` "
                         "(no image in its manifest.json)")
    if len(manifest) > 1:
        raise ImageError(f"{archive}: holds {len(manifest)} images; add one image per archive")
    return list(manifest[0].get("RepoTags") or [])


def load(archive: Path, untagged: Path) -> str:
    """``docker load`` the untagged copy of ARCHIVE; returns the image id."""
    try:
        out = run(["docker", "load", "-i", str(untagged)], timeout=BUILD_TIMEOUT_S).stdout
    except CommandError as exc:
        raise ImageError(f"{archive}: corrupt archive: docker load refused it:\n"
                         f"{exc}") from None
    found = re.search(r"Loaded image ID: (sha256:[0-9a-f]{64})", out)
    if not found:
        raise ImageError(f"{archive}: docker load gave no image id: {out.strip()[-300:]}")
    return found.group(1)
