"""The image registry's storage folder, read and pruned directly on disk.

The emulated cloud's registry (``topologies.registry.RegistryServer``, CNCF
distribution with the filesystem driver and no cache) keeps everything under
``ROOT/docker/registry/v2``: content-addressed blobs in ``blobs/sha256/XX/DIGEST/data``
and, per repository, links to them (``_manifests/tags/TAG/current/link`` names the
manifest a tag points to, ``_manifests/revisions`` every manifest pushed, ``_layers``
the blobs the repository may serve). Reading that layout answers "what does the
registry hold for this tag, and how many bytes" without starting a server; removing a
tag and the blobs no other manifest references is what ``mec image rm`` does.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from mec.core import config

log = logging.getLogger(__name__)

V2 = Path("docker") / "registry" / "v2"


@dataclass(frozen=True)
class TagContent:
    """What the registry holds for one REPO:TAG: its manifest and layer blobs."""

    repo: str
    tag: str
    manifest_digest: str
    layers: tuple[str, ...]  # layer blob digests, in manifest order
    layer_bytes: int | None  # the layer blobs' sizes on disk; None when one is missing
    missing: tuple[str, ...]  # layer blobs the manifest names but the storage lacks


@dataclass(frozen=True)
class RegistryStore:
    """One registry storage folder (default: the project's, ``config.REGISTRY_DIR``)."""

    root: Path = config.REGISTRY_DIR

    @property
    def v2(self) -> Path:
        return self.root / V2

    def repo_dir(self, repo: str) -> Path:
        return self.v2 / "repositories" / repo

    def blob_path(self, digest: str) -> Path:
        algo, _, hexpart = digest.partition(":")
        return self.v2 / "blobs" / algo / hexpart[:2] / hexpart / "data"

    def tag_digest(self, repo: str, tag: str) -> str | None:
        """The manifest digest REPO:TAG points to, or None when the tag is absent."""
        link = self.repo_dir(repo) / "_manifests" / "tags" / tag / "current" / "link"
        try:
            return link.read_text().strip() or None
        except OSError:
            return None

    def tags(self, repo: str) -> list[str]:
        tags_dir = self.repo_dir(repo) / "_manifests" / "tags"
        return sorted(p.name for p in tags_dir.iterdir()) if tags_dir.is_dir() else []

    def manifest(self, digest: str) -> dict | None:
        try:
            return json.loads(self.blob_path(digest).read_bytes())
        except (OSError, ValueError):
            return None

    def references(self, digest: str) -> set[str]:
        """Blobs the manifest DIGEST uses: its config, its layers, the manifests it lists."""
        doc = self.manifest(digest) or {}
        refs = {entry["digest"] for entry in doc.get("layers", []) + doc.get("manifests", [])
                if "digest" in entry}
        if "digest" in doc.get("config", {}):
            refs.add(doc["config"]["digest"])
        return refs

    def content(self, repo: str, tag: str) -> TagContent | None:
        """What REPO:TAG holds, or None when the registry has no such tag (or manifest)."""
        digest = self.tag_digest(repo, tag)
        doc = self.manifest(digest) if digest else None
        if doc is None:
            return None
        layers = tuple(entry["digest"] for entry in doc.get("layers", []))
        missing = tuple(d for d in layers if not self.blob_path(d).is_file())
        size = None if missing else sum(self.blob_path(d).stat().st_size for d in layers)
        return TagContent(repo, tag, digest, layers, size, missing)

    def revisions(self) -> dict[str, set[str]]:
        """Every manifest digest any repository holds -> the repositories holding it."""
        out: dict[str, set[str]] = {}
        repos = self.v2 / "repositories"
        if not repos.is_dir():
            return out
        for link in repos.glob("**/_manifests/revisions/*/*/link"):
            repo = str(link.parents[4].relative_to(repos))
            out.setdefault(link.read_text().strip(), set()).add(repo)
        return out

    def remove_tag(self, repo: str, tag: str) -> list[str]:
        """Remove REPO:TAG; then its manifest when no other tag of REPO points to it, the
        repository when it has no tag left, and every blob of that manifest that no manifest
        left anywhere in the storage uses. Returns the blob digests deleted."""
        digest = self.tag_digest(repo, tag)
        shutil.rmtree(self.repo_dir(repo) / "_manifests" / "tags" / tag, ignore_errors=True)
        if digest is None:
            return []
        others = {self.tag_digest(repo, t) for t in self.tags(repo)}
        if digest in others:
            return []  # another tag of REPO still points to the same manifest
        candidates = {digest, *self.references(digest)}
        algo, _, hexpart = digest.partition(":")
        shutil.rmtree(self.repo_dir(repo) / "_manifests" / "revisions" / algo / hexpart,
                      ignore_errors=True)
        if not self.tags(repo):
            shutil.rmtree(self.repo_dir(repo), ignore_errors=True)
        return self.prune(candidates)

    def prune(self, candidates: set[str]) -> list[str]:
        """Delete the blobs among CANDIDATES that no manifest in the storage uses."""
        in_use: set[str] = set()
        for manifest in self.revisions():
            in_use |= {manifest, *self.references(manifest)}
        deleted = []
        for digest in sorted(candidates - in_use):
            blob_dir = self.blob_path(digest).parent
            if blob_dir.is_dir():
                shutil.rmtree(blob_dir)
                deleted.append(digest)
            algo, _, hexpart = digest.partition(":")
            for link_dir in (self.v2 / "repositories").glob(f"**/_layers/{algo}/{hexpart}"):
                shutil.rmtree(link_dir, ignore_errors=True)  # a repository's link to it
        log.debug("pruned %d blob(s) from %s", len(deleted), self.root)
        return deleted

    def snapshot(self) -> dict[str, int]:
        """Every file of the storage -> its size: compared before/after to prove nothing moved."""
        if not self.root.is_dir():
            return {}
        return {str(p.relative_to(self.root)): p.stat().st_size
                for p in self.root.rglob("*") if p.is_file()}
