"""Images from the user: add, list and remove them in the emulated cloud registry.

``add`` turns a Dockerfile folder or a ``docker save`` archive into an image of the
build engine (``mec.edge.imagesource``), then publishes it into the registry storage
exactly like the built-in images (a short-lived ``RegistryServer`` on loopback and a
``docker push``), as ``mec/NAME:TAG``, and records it in the publication record with
what it is and where it came from (``mec.edge.stamp``). Every check (name, clash,
Dockerfile, build, archive) runs BEFORE the push, and a failed push is rolled back, so
an error leaves the registry storage and the record as they were.

``images`` lists every image, built-in or user's, with the bytes the registry holds for
it (compressed layers), the engine's size (uncompressed) and its layer count; ``remove``
drops a user image's tag, its manifest and the blobs no other manifest uses.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mec.core import config
from mec.core.proc import CommandError, run
from mec.edge import images, imagesource, stamp
from mec.edge.imagesource import ImageError, Source
from mec.edge.regstore import RegistryStore

log = logging.getLogger(__name__)

#: A name: a Docker repository path component (lower-case, digits, inner . _ -), no '/'.
NAME_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
NAME_MAX = 64
#: Names a user image may not take: the built-in service images and the Containernet UE.
RESERVED = frozenset(images.RECIPES) | {images.UE_RECIPE.name}
LABEL = "mec.user-image"


@dataclass(frozen=True)
class Added:
    """What ``add`` did."""

    ref: str  # NAME:TAG
    origin: str  # "dockerfile" or "archive"
    source: str
    image_id: str
    digest: str  # the manifest digest in the registry
    compressed_bytes: int | None
    replaced: bool  # True when it replaced an earlier image of the same NAME:TAG


@dataclass(frozen=True)
class ImageRow:
    """One line of ``mec image ls``."""

    ref: str
    origin: str  # "built-in", "dockerfile" or "archive"
    source: str | None
    published: bool  # the registry storage holds its tag and every layer blob
    compressed_bytes: int | None  # its layer blobs in the registry; None if not published
    uncompressed_bytes: int | None  # the engine's image Size; None if not in the engine
    layers: int | None


def parse_name(text: str) -> tuple[str, str]:
    """(NAME, TAG) of 'NAME' or 'NAME:TAG', or ImageError saying what is allowed."""
    name, sep, tag = text.partition(":")
    tag = tag if sep else images.DEFAULT_TAG
    if not NAME_RE.fullmatch(name) or len(name) > NAME_MAX:
        raise ImageError(f"invalid image name {text!r}: NAME is lower-case letters and digits, "
                         f"with single '.', '_' or '-' inside, at most {NAME_MAX} characters, "
                         "no '/'")
    if not TAG_RE.fullmatch(tag):
        raise ImageError(f"invalid image tag in {text!r}: TAG is letters, digits, '_', '.' "
                         "or '-', at most 128 characters, not starting with '.' or '-'")
    return name, tag


def name_from_tags(archive: Path, tags: list[str]) -> tuple[str, str]:
    """NAME:TAG of an archive's single tag (its last path component), or ImageError."""
    if len(tags) != 1:
        what = "no tag" if not tags else f"{len(tags)} tags ({', '.join(tags)})"
        raise ImageError(f"{archive}: the archive's image has {what}: give --name NAME[:TAG]")
    last = tags[0].rsplit("/", 1)[-1]
    try:
        return parse_name(last)
    except ImageError as exc:
        raise ImageError(f"{archive}: its tag {tags[0]!r} gives no usable name ({exc}); "
                         "give --name NAME[:TAG]") from None


def check_clash(name: str, tag: str, source: Source, replace: bool) -> dict | None:
    """Refuse a built-in's name, or another origin's NAME:TAG without REPLACE; returns the
    record of the image being replaced (None when new)."""
    if name in RESERVED:
        raise ImageError(f"{source.path}: {name!r} is a built-in image's name; choose another "
                         "--name")
    old = stamp.user_entries(images.PUBLISHED_STAMP).get(f"{name}:{tag}")
    if old and old.get("source") != str(source.path) and not replace:
        raise ImageError(f"{source.path}: {name}:{tag} already exists, added from "
                         f"{old.get('origin')} {old.get('source')}; use --replace to replace "
                         "it, or another --name")
    return old


def repo_of(name: str) -> str:
    return f"{config.IMAGE_REPO}/{name}"


def add(path: Path, name: str | None = None, replace: bool = False,
        store: RegistryStore | None = None) -> Added:
    """Build or load PATH, then publish it as mec/NAME:TAG (see the module's docstring)."""
    store = store or RegistryStore()
    source = imagesource.source_of(Path(path))
    given = parse_name(name) if name else None
    images.BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=images.BUILD_DIR, prefix="user-") as tmp:
        if source.kind == "archive":
            tags = imagesource.untagged_copy(source.path, Path(tmp) / "untagged.tar")
            img_name, tag = given or name_from_tags(source.path, tags)
            old = check_clash(img_name, tag, source, replace)
            image_id = imagesource.load(source.path, Path(tmp) / "untagged.tar")
        else:
            img_name, tag = given or _name_of_folder(source)
            old = check_clash(img_name, tag, source, replace)
            offered = [k.engine_tag for k in images.known_images(store).values()]
            imagesource.check_bases(source.path, imagesource.engine_has, offered)
            staging_tag = _staging(img_name, tag)
            image_id = imagesource.build(
                source, staging_tag, {LABEL: f"{img_name}:{tag}"},
                images.BUILD_DIR / f"user-{img_name}-{tag}.log")
    return _publish(source, img_name, tag, image_id, old, store)


def _name_of_folder(source: Source) -> tuple[str, str]:
    try:
        return parse_name(source.context.name)
    except ImageError as exc:
        raise ImageError(f"{source.context}: the folder's name is no image name ({exc}); "
                         "give --name NAME[:TAG]") from None


def _staging(name: str, tag: str) -> str:
    return f"{config.IMAGE_REPO}-staging/{name}:{tag}"


def _publish(source: Source, name: str, tag: str, image_id: str, old: dict | None,
             store: RegistryStore) -> Added:
    """Push IMAGE_ID as mec/NAME:TAG, record it, then give it its engine tag."""
    from topologies.registry import RegistryServer

    ref, repo, staging = f"{name}:{tag}", repo_of(name), _staging(name, tag)
    run(["docker", "tag", image_id, staging], timeout=30)
    try:
        with stamp.updating(images.PUBLISHED_STAMP) as record:
            before = _storage_state(store, repo, tag)
            addr = images.local_registry()
            try:
                with RegistryServer(name=f"image-add-{os.getpid()}", addr=addr):
                    images.push(staging, ref, addr)
            except (CommandError, RuntimeError) as exc:
                _roll_back(store, repo, tag, before)
                raise ImageError(f"{source.path}: publishing {ref} failed, nothing was "
                                 f"published: {exc}") from None
            content = store.content(repo, tag)
            assert content is not None, f"{ref} pushed but absent from {store.root}"
            if before["digest"] not in (None, content.manifest_digest):
                _drop_revision(store, repo, before["digest"])
            record[ref] = {"origin": source.kind, "source": str(source.path),
                           "image_id": image_id, "digest": content.manifest_digest,
                           "added": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        _retag(image_id, f"{repo}:{tag}", old)
    finally:
        run(["docker", "rmi", staging], check=False, timeout=60)
    log.info("image %s published (%s, %s layer bytes)", ref, source.origin,
             content.layer_bytes)
    return Added(ref, source.kind, str(source.path), image_id, content.manifest_digest,
                 content.layer_bytes, replaced=bool(old) or before["digest"] is not None)


def _storage_state(store: RegistryStore, repo: str, tag: str) -> dict:
    revisions = store.repo_dir(repo) / "_manifests" / "revisions"
    return {"repo_existed": store.repo_dir(repo).is_dir(),
            "digest": store.tag_digest(repo, tag),
            "revisions": {p.parent.name for p in revisions.glob("*/*/link")},
            "blobs": {p.name for p in (store.v2 / "blobs").glob("*/*/*")}}


def _roll_back(store: RegistryStore, repo: str, tag: str, before: dict) -> None:
    """Undo a failed push: the tag as it was, new revisions and new unused blobs gone."""
    if not before["repo_existed"]:
        shutil.rmtree(store.repo_dir(repo), ignore_errors=True)
    else:
        tag_dir = store.repo_dir(repo) / "_manifests" / "tags" / tag
        if before["digest"]:
            (tag_dir / "current" / "link").write_text(before["digest"])
        else:
            shutil.rmtree(tag_dir, ignore_errors=True)
        for link in (store.repo_dir(repo) / "_manifests" / "revisions").glob("*/*/link"):
            if link.parent.name not in before["revisions"]:
                shutil.rmtree(link.parent, ignore_errors=True)
    new = {p for p in (store.v2 / "blobs").glob("*/*/*") if p.name not in before["blobs"]}
    store.prune({f"{p.parents[1].name}:{p.name}" for p in new})
    shutil.rmtree(store.repo_dir(repo) / "_uploads", ignore_errors=True)


def _drop_revision(store: RegistryStore, repo: str, digest: str) -> None:
    """Forget a replaced manifest of REPO (no tag points to it any more) and its unused blobs."""
    if any(store.tag_digest(repo, t) == digest for t in store.tags(repo)):
        return
    algo, _, hexpart = digest.partition(":")
    shutil.rmtree(store.repo_dir(repo) / "_manifests" / "revisions" / algo / hexpart,
                  ignore_errors=True)
    store.prune({digest, *store.references(digest)})


def _retag(image_id: str, engine_tag: str, old: dict | None) -> None:
    """Give the engine's image its final tag; drop the replaced image if nothing uses it."""
    run(["docker", "tag", image_id, engine_tag], timeout=30)
    old_id = (old or {}).get("image_id")
    if old_id and old_id != image_id:
        imagesource.remove_untagged([old_id])  # kept while any tag (e.g. a built-in's) has it


def list_images(store: RegistryStore | None = None) -> list[ImageRow]:
    """Every built-in image and every user image the record names, with their sizes."""
    store = store or RegistryStore()
    built = images.published()
    rows = [_row(store, n, images.DEFAULT_TAG, "built-in", None, n in built)
            for n in images.RECIPES]
    for ref, entry in sorted(stamp.user_entries(images.PUBLISHED_STAMP).items()):
        name, tag = images.split_ref(ref)
        rows.append(_row(store, name, tag, str(entry.get("origin")), entry.get("source"), True))
    return rows


def _row(store: RegistryStore, name: str, tag: str, origin: str, source: str | None,
         recorded: bool) -> ImageRow:
    content = store.content(repo_of(name), tag) if recorded else None
    engine = run(["docker", "image", "inspect", "--format", "{{.Size}} {{len .RootFS.Layers}}",
                  f"{repo_of(name)}:{tag}"], check=False, timeout=30)
    size, engine_layers = (int(w) for w in engine.stdout.split()) if engine.returncode == 0 \
        else (None, None)
    published = content is not None and not content.missing
    return ImageRow(f"{name}:{tag}", origin, source, published,
                    content.layer_bytes if content else None, size,
                    len(content.layers) if content else engine_layers)


def removable(text: str) -> tuple[str, str]:
    """(NAME, TAG) of a name ``remove`` may take: valid, and not a built-in's."""
    name, tag = parse_name(text)
    if name in RESERVED:
        raise ImageError(f"{name} is a built-in image: `mec image rm` removes only images "
                         "added with `mec image add`")
    return name, tag


def remove(text: str, store: RegistryStore | None = None) -> list[str]:
    """Remove the user image NAME[:TAG] from the registry storage and the build engine;
    returns the blob digests deleted from the storage."""
    store = store or RegistryStore()
    name, tag = removable(text)
    ref = f"{name}:{tag}"
    with stamp.updating(images.PUBLISHED_STAMP) as record:
        entry = record.get(ref)
        if entry is None and store.tag_digest(repo_of(name), tag) is None:
            raise ImageError(f"no user image {ref} (see `mec image ls`)")
        deleted = store.remove_tag(repo_of(name), tag)
        record.pop(ref, None)
    engine = run(["docker", "rmi", f"{repo_of(name)}:{tag}"], check=False, timeout=60)
    if engine.returncode != 0 and "No such image" not in engine.stderr:
        log.warning("image %s left in the build engine: %s", ref, engine.stderr.strip())
    return deleted


def as_dict(row: ImageRow | Added) -> dict:
    return asdict(row)
