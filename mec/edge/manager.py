"""The Edge Manager (paper Sec. IV): one per cloudlet, deploys and stops service containers.

An :class:`EdgeManager` wraps the Docker SDK client of the cloudlet's own engine
(:class:`topologies.engine.DockerEngine`) and knows the cloudlet's capacity
(``cpus``/``memory_mb``, ``None`` = unlimited). It

* runs service instances (``network_mode="host"``: an instance answers at the
  cloudlet's address) with resource limits, labels and ``MEC_INSTANCE``/``MEC_PORT``
  environment, after an admission check against the reservations of the
  containers already running there (:class:`CapacityError` when they do not fit);
* measures readiness by asking the service what its service file says (HTTP,
  TCP or UDP: `mec.core.check`) from inside the cloudlet's network namespace
  (no sleeps);
* reports its state (:class:`CloudletStatus`: instances, free resources, cached
  images, up/down);
* manages its image cache: timed pulls with the layer sizes the registry
  declares beside the bytes counted on the cloudlet's interface, removal (so
  "not cached here" is a real state), and the paper's Fig. 5 path of image
  transfer between edges: ``docker save | gzip`` to an archive
  (:meth:`EdgeManager.export_image`), a transfer over the emulated network
  (:func:`mec.edge.transfer.transfer_file`), and ``docker load``
  (:meth:`EdgeManager.load_image`), each phase timed separately.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import docker.errors

from mec.core import config
from mec.core.check import ask
from mec.core.netns import NamespaceThread, WireCounter
from mec.core.servicefile import Exchange, ServiceDef

log = logging.getLogger(__name__)

#: Labels every container the Edge Manager starts carries.
LABEL_SERVICE, LABEL_INSTANCE, LABEL_ROLE = "mec.service", "mec.instance", "mec.role"
#: Where a storage-dependent service's data volume is mounted inside its container.
DATA_MOUNT = "/srv/data"
#: Container states that hold (or are about to hold) a reservation on the cloudlet.
ACTIVE_STATES = frozenset({"created", "running", "restarting", "paused"})
INSTANCE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
MB = 1024 * 1024


class CapacityError(RuntimeError):
    """The cloudlet lacks the free CPU or memory an instance asks for."""


class ImageNotCachedError(RuntimeError):
    """A deploy asked for an image the cloudlet's engine does not have."""


def container_name(instance: str) -> str:
    """Docker container name of INSTANCE (carries the project prefix)."""
    return config.name(instance)


@dataclass
class Instance:
    """A service instance (one container) on a cloudlet."""

    name: str
    cloudlet: str
    container: str
    image: str
    ip: str
    port: int
    service: str = ""
    role: str = ""
    cpus: Optional[float] = None
    memory_mb: Optional[int] = None
    state: str = "created"
    container_id: str = ""
    launch_s: Optional[float] = None  # create + start, measured by deploy()

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}/"

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


@dataclass
class CloudletStatus:
    """A snapshot of one cloudlet: what runs there, what is free, what is cached."""

    name: str
    up: bool
    instances: list[Instance] = field(default_factory=list)
    cpus: Optional[float] = None  # capacity, None = unlimited
    memory_mb: Optional[int] = None
    cpus_reserved: float = 0.0
    memory_reserved_mb: float = 0.0
    images: list[str] = field(default_factory=list)  # repo tags in the engine's cache
    error: str = ""

    @property
    def cpus_free(self) -> Optional[float]:
        return None if self.cpus is None else max(0.0, self.cpus - self.cpus_reserved)

    @property
    def memory_free_mb(self) -> Optional[float]:
        return None if self.memory_mb is None else max(0.0, self.memory_mb - self.memory_reserved_mb)

    @property
    def running(self) -> list[Instance]:
        return [i for i in self.instances if i.state == "running"]


@dataclass
class PullResult:
    """A timed pull: what the registry declared and what crossed the cloudlet's link.

    ``declared_bytes``: the compressed sizes of the layers fetched, as the engine's
    progress messages (or, failing those, the registry manifest) declare them; 0 if
    every layer was cached. ``wire_bytes``: rx + tx bytes counted on the cloudlet
    namespace's interfaces from the pull request to its end (headers, ACKs,
    retransmissions, manifest and token requests included, and any other traffic of
    the cloudlet in that window: see :class:`mec.core.netns.WireCounter`); None when
    the Edge Manager has no namespace to count in. ``download_s``: from the request
    to the last layer's "Download complete" (None if nothing was downloaded);
    ``seconds`` includes unpacking.
    """

    ref: str
    seconds: float
    declared_bytes: int
    image_size: int  # uncompressed size as reported by the engine
    layers_downloaded: int
    layers_cached: int
    wire_bytes: Optional[int] = None
    download_s: Optional[float] = None

    @property
    def bytes(self) -> int:
        """The declared compressed bytes (the field's old name, kept for readers of it)."""
        return self.declared_bytes


@dataclass
class ReadyResult:
    """Time from the call to the first good answer, and what answered (the instance name
    the body gave, or the check that was answered)."""

    seconds: float
    answer: str


@dataclass
class ExportResult:
    """``docker save | gzip`` of one image into an archive."""

    path: Path
    bytes: int
    seconds: float

    def __iter__(self):  # allows ``path, nbytes, secs = export_image(...)``
        return iter((self.path, self.bytes, self.seconds))


def instance_from_attrs(attrs: Mapping[str, Any], cloudlet: str, ip: str) -> Optional[Instance]:
    """An Instance from a container's inspect data, or None if the container is not ours."""
    cfg = attrs.get("Config") or {}
    labels = cfg.get("Labels") or {}
    if LABEL_INSTANCE not in labels:
        return None
    host = attrs.get("HostConfig") or {}
    nano = host.get("NanoCpus") or 0
    mem = host.get("Memory") or 0
    env = dict(e.split("=", 1) for e in (cfg.get("Env") or []) if "=" in e)
    try:
        port = int(env.get("MEC_PORT", config.SERVICE_PORT))
    except ValueError:
        port = config.SERVICE_PORT
    return Instance(
        name=labels[LABEL_INSTANCE],
        cloudlet=cloudlet,
        container=(attrs.get("Name") or "").lstrip("/"),
        image=cfg.get("Image", ""),
        ip=ip,
        port=port,
        service=labels.get(LABEL_SERVICE, ""),
        role=labels.get(LABEL_ROLE, ""),
        cpus=nano / 1e9 if nano else None,
        memory_mb=mem // MB if mem else None,
        state=(attrs.get("State") or {}).get("Status", "unknown"),
        container_id=attrs.get("Id", ""),
    )


def reservations(instances: list[Instance]) -> tuple[float, float]:
    """(cpus, memory MB) reserved by the active instances (no limit = reserves nothing)."""
    active = [i for i in instances if i.active]
    return (sum(i.cpus or 0.0 for i in active), float(sum(i.memory_mb or 0 for i in active)))


def admission_error(capacity_cpus: Optional[float], capacity_mb: Optional[int],
                    reserved_cpus: float, reserved_mb: float,
                    cpus: Optional[float], memory_mb: Optional[int]) -> Optional[str]:
    """Why a request of CPUS/MEMORY_MB does not fit, or None when it does.

    A capacity of None is unlimited; a request of None asks for no reservation
    (the container then runs without that limit).
    """
    problems = []
    eps = 1e-9
    if capacity_cpus is not None and cpus is not None:
        free = capacity_cpus - reserved_cpus
        if cpus > free + eps:
            problems.append(f"{cpus:g} CPUs requested, {max(free, 0):g} of {capacity_cpus:g} free")
    if capacity_mb is not None and memory_mb is not None:
        free_mb = capacity_mb - reserved_mb
        if memory_mb > free_mb + eps:
            problems.append(f"{memory_mb} MB memory requested, "
                            f"{max(free_mb, 0):g} of {capacity_mb} MB free")
    return "; ".join(problems) or None


def parse_pull_stream(events) -> tuple[int, int, int]:
    """(compressed bytes downloaded, layers downloaded, layers already cached) of a pull.

    EVENTS are the decoded JSON progress messages of ``POST /images/create``:
    per layer id, "Downloading" messages carry ``progressDetail.total`` (the
    compressed blob size); "Already exists" marks a layer that was not fetched.
    Raises RuntimeError on an ``error`` message.
    """
    totals: dict[str, int] = {}
    downloaded: set[str] = set()
    cached: set[str] = set()
    for ev in events:
        if "error" in ev:
            raise RuntimeError(f"pull failed: {ev.get('error')}")
        layer, status = ev.get("id", ""), ev.get("status", "")
        detail = ev.get("progressDetail") or {}
        if status == "Downloading" and detail.get("total"):
            totals[layer] = max(totals.get(layer, 0), int(detail["total"]))
            downloaded.add(layer)
        elif status in ("Download complete", "Pull complete", "Verifying Checksum"):
            downloaded.add(layer)
        elif status == "Already exists":
            cached.add(layer)
    downloaded -= cached
    return sum(totals.get(l, 0) for l in downloaded), len(downloaded), len(cached)


def split_ref(ref: str) -> tuple[str, str]:
    """('HOST:PORT/repo/name', 'tag') of an image reference (tag defaults to latest)."""
    head, _, last = ref.rpartition("/")
    if ":" in last:
        name, tag = last.rsplit(":", 1)
        return (f"{head}/{name}" if head else name), tag
    return ref, "latest"


class EdgeManager:
    """Deploys, inspects and stops service instances on one cloudlet's Docker engine.

    ``client`` is the engine's Docker SDK client; ``netns_path`` the cloudlet's
    network namespace (``/proc/PID/ns/net``) used for HTTP readiness checks and
    manifest look-ups; ``ip`` the cloudlet's address.
    """

    def __init__(self, name: str, client, ip: str, netns_path: Optional[str] = None,
                 cpus: Optional[float] = None, memory_mb: Optional[int] = None,
                 engine=None):
        self.name = name
        self.client = client
        self.ip = ip
        self.netns_path = netns_path
        self.cpus = cpus
        self.memory_mb = memory_mb
        self.engine = engine

    @classmethod
    def for_engine(cls, engine, ip: str, cpus: Optional[float] = None,
                   memory_mb: Optional[int] = None, name: Optional[str] = None) -> "EdgeManager":
        """An Edge Manager over a started :class:`topologies.engine.DockerEngine`."""
        return cls(name or engine.name, engine.client(), ip, engine.netns_path, cpus,
                   memory_mb, engine=engine)

    @classmethod
    def for_cloudlet(cls, cloudlet, engine) -> "EdgeManager":
        """An Edge Manager for a :class:`topologies.model.Cloudlet` served by ENGINE."""
        return cls.for_engine(engine, cloudlet.ip, cloudlet.cpus, cloudlet.memory_mb,
                              name=cloudlet.name)

    def __repr__(self) -> str:
        return f"EdgeManager({self.name!r}, ip={self.ip!r}, cpus={self.cpus}, mem={self.memory_mb})"

    # --- instances -------------------------------------------------------------------

    def _containers(self) -> list:
        return self.client.containers.list(all=True, filters={"label": LABEL_INSTANCE})

    def instances(self) -> list[Instance]:
        """Every instance (any state) this cloudlet's engine holds."""
        out = []
        for c in self._containers():
            inst = instance_from_attrs(c.attrs, self.name, self.ip)
            if inst is not None:
                out.append(inst)
        return out

    def get(self, instance: str) -> Optional[Instance]:
        """The instance named INSTANCE, or None."""
        try:
            c = self.client.containers.get(container_name(instance))
        except docker.errors.NotFound:
            return None
        return instance_from_attrs(c.attrs, self.name, self.ip)

    def check_admission(self, cpus: Optional[float], memory_mb: Optional[int]) -> None:
        """Raise CapacityError if CPUS/MEMORY_MB do not fit next to the active instances."""
        if self.cpus is None and self.memory_mb is None:
            return
        used_cpus, used_mb = reservations(self.instances())
        why = admission_error(self.cpus, self.memory_mb, used_cpus, used_mb, cpus, memory_mb)
        if why:
            raise CapacityError(f"cloudlet {self.name} cannot host the instance: {why}")

    def deploy(self, instance: str, image_ref: str, cpus: Optional[float] = None,
               memory_mb: Optional[int] = None, env: Optional[Mapping[str, str]] = None,
               port: int = config.SERVICE_PORT, volumes: Optional[Mapping[str, Any]] = None,
               service: str = "", role: str = "primary", pull_missing: bool = False,
               command: Optional[Sequence[str]] = None) -> Instance:
        """Run INSTANCE of IMAGE_REF here (host network) and return it once started.

        VOLUMES maps a host directory to a container path (str) or to a docker
        SDK bind spec (``{"bind": path, "mode": "rw"}``). The image must be in
        the cache unless PULL_MISSING (pull first; not included in ``launch_s``).
        COMMAND (an argument list) replaces the image's CMD.
        """
        if not INSTANCE_RE.fullmatch(instance):
            raise ValueError(f"instance name {instance!r}: use letters, digits, '_', '.', '-'")
        if not self.has_image(image_ref):
            if not pull_missing:
                raise ImageNotCachedError(f"image {image_ref} is not cached on cloudlet "
                                          f"{self.name}: pull or load it first")
            self.pull(image_ref)
        self.check_admission(cpus, memory_mb)
        environment = {"MEC_INSTANCE": instance, "MEC_PORT": str(port), **(env or {})}
        binds = {}
        for host_dir, spec in (volumes or {}).items():
            binds[str(host_dir)] = {"bind": spec, "mode": "rw"} if isinstance(spec, str) else spec
        kwargs: dict[str, Any] = dict(
            name=container_name(instance), network_mode="host", environment=environment,
            labels={LABEL_SERVICE: service or instance, LABEL_INSTANCE: instance,
                    LABEL_ROLE: role},
            detach=True, volumes=binds or None,
        )
        if command:
            kwargs["command"] = list(command)
        if cpus is not None:
            kwargs["nano_cpus"] = int(round(cpus * 1e9))
        if memory_mb is not None:
            kwargs["mem_limit"] = f"{int(memory_mb)}m"
        t0 = time.perf_counter()
        container = self.client.containers.create(image_ref, **kwargs)
        try:
            container.start()
        except Exception:
            container.remove(force=True)
            raise
        launch_s = time.perf_counter() - t0
        container.reload()
        inst = instance_from_attrs(container.attrs, self.name, self.ip)
        assert inst is not None
        inst.launch_s = launch_s
        log.info("cloudlet %s: started %s (%s) in %.3f s", self.name, instance, image_ref, launch_s)
        return inst

    def deploy_service(self, instance: str, image_ref: str, service: ServiceDef,
                       env: Optional[Mapping[str, str]] = None,
                       volumes: Optional[Mapping[str, Any]] = None, role: str = "primary",
                       **limits: Optional[float]) -> Instance:
        """Run INSTANCE of IMAGE_REF as SERVICE's file says: its port, command,
        environment (ENV added) and resources (``cpus``/``memory_mb`` in LIMITS override
        the file's)."""
        return self.deploy(instance, image_ref, cpus=limits.get("cpus", service.cpus),
                           memory_mb=limits.get("memory_mb", service.memory_mb),
                           env={**service.env, **(env or {})}, port=service.port,
                           volumes=volumes, service=service.name, role=role,
                           command=service.command)

    def wait_service(self, instance: str, service: ServiceDef,
                     timeout: float = 60.0) -> ReadyResult:
        """Wait until INSTANCE answers SERVICE's health check (and names itself when the
        service's replies do)."""
        return self.wait_ready(instance, timeout=timeout, check=service.health,
                               names_instance=service.names_instance)

    def wait_ready(self, instance: str, timeout: float = 20.0, interval: float = 0.02,
                   path: str = "/", check: Optional[Exchange] = None,
                   names_instance: Optional[bool] = None) -> ReadyResult:
        """Ask the instance CHECK (default: HTTP GET PATH) from inside the cloudlet's
        namespace until it answers; seconds measured from the call.

        NAMES_INSTANCE (default: an HTTP GET of /) also requires the body's first token
        to be the instance's name (the built-in images say it), so an answer from
        another process on the port does not count.
        """
        t0 = time.perf_counter()
        inst = self.get(instance)
        if inst is None:
            raise LookupError(f"no instance {instance} on cloudlet {self.name}")
        check = check or Exchange(path=path)
        if names_instance is None:
            names_instance = check.protocol == "http" and check.path == "/"
        deadline = t0 + timeout
        worker = NamespaceThread(self.netns_path, name=f"ready-{instance}") \
            if self.netns_path else None
        last = ""
        try:
            while True:
                answer = (worker.call(ask, self.ip, inst.port, check, 1.0, timeout=10)
                          if worker else ask(self.ip, inst.port, check, 1.0))
                named = answer.first_token
                if answer.ok and (not names_instance or named == instance):
                    return ReadyResult(time.perf_counter() - t0, named or check.describe())
                last = answer.error or f"answered {named!r}, not {instance!r}"
                if time.perf_counter() >= deadline:
                    state = (self.get(instance) or inst).state
                    raise TimeoutError(f"instance {instance} on {self.name} did not answer "
                                       f"{check.describe()} at {self.ip}:{inst.port} within "
                                       f"{timeout:g} s (container {state}; last: {last})")
                time.sleep(interval)
        finally:
            if worker:
                worker.close()

    def stop(self, instance: str, timeout: int = 2) -> None:
        """Stop INSTANCE's container (kept, so it can be inspected or removed)."""
        self.client.containers.get(container_name(instance)).stop(timeout=timeout)

    def remove(self, instance: str, timeout: float = 30.0, interval: float = 0.05) -> None:
        """Remove INSTANCE's container (killing it first); no error if it is gone.

        Returns once the engine no longer has the container, so its name is free
        for a new one: Docker's force remove answers after the kill and the
        removal, and a removal already under way (409 "already in progress", a
        concurrent remove) is waited for. TimeoutError if it is still there after
        TIMEOUT seconds.
        """
        name = container_name(instance)
        try:
            self.client.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if exc.status_code != 409 or "in progress" not in str(exc):
                raise
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client.containers.get(name)
            except docker.errors.NotFound:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"container {name} on {self.name} still there "
                                   f"{timeout:g} s after its removal")
            time.sleep(interval)

    # --- status ----------------------------------------------------------------------

    def status(self) -> CloudletStatus:
        """Snapshot of this cloudlet; ``up`` is False (with ``error``) if the engine is down."""
        try:
            self.client.ping()
            instances = self.instances()
            images = sorted(t for img in self.client.images.list() for t in (img.tags or []))
        except Exception as exc:  # noqa: BLE001 - a down engine is a status, not a crash
            return CloudletStatus(self.name, up=False, cpus=self.cpus, memory_mb=self.memory_mb,
                                  error=str(exc))
        used_cpus, used_mb = reservations(instances)
        return CloudletStatus(self.name, up=True, instances=instances, cpus=self.cpus,
                              memory_mb=self.memory_mb, cpus_reserved=used_cpus,
                              memory_reserved_mb=used_mb, images=images)

    # --- images ----------------------------------------------------------------------

    def has_image(self, ref: str) -> bool:
        try:
            self.client.images.get(ref)
            return True
        except docker.errors.ImageNotFound:
            return False

    def image_size(self, ref: str) -> int:
        return int(self.client.images.get(ref).attrs.get("Size", 0))

    def remove_image(self, ref: str) -> bool:
        """Drop REF from the cache (its layers too if no other tag uses them); True if it was there."""
        try:
            self.client.images.remove(ref, force=True)
            return True
        except docker.errors.ImageNotFound:
            return False

    def pull(self, ref: str) -> PullResult:
        """Pull REF through the cloudlet's namespace: timed, declared and wire bytes counted."""
        repo, tag = split_ref(ref)
        downloaded: list[float] = []

        def timed(stream):
            for ev in stream:
                if ev.get("status") == "Download complete":
                    downloaded.append(time.perf_counter())
                yield ev

        with WireCounter(self.netns_path) as wire:
            t0 = time.perf_counter()
            stream = self.client.api.pull(repo, tag=tag, stream=True, decode=True)
            nbytes, n_down, n_cached = parse_pull_stream(timed(stream))
            seconds = time.perf_counter() - t0
        if not self.has_image(ref):
            raise RuntimeError(f"pull of {ref} on {self.name} ended without the image")
        if n_down and not nbytes:
            nbytes = self._manifest_layer_bytes(ref) or 0
        result = PullResult(ref, seconds, nbytes, self.image_size(ref), n_down, n_cached,
                            wire_bytes=wire.bytes,
                            download_s=max(downloaded) - t0 if downloaded else None)
        log.info("cloudlet %s: pulled %s in %.3f s (%d bytes declared, %s on the wire)",
                 self.name, ref, seconds, nbytes, wire.bytes)
        return result

    def _manifest_layer_bytes(self, ref: str) -> Optional[int]:
        """Sum of the compressed layer sizes in the registry manifest of REF (fallback)."""
        repo, tag = split_ref(ref)
        host, _, path = repo.partition("/")
        argv = ["curl", "-sf", "-m", "5", "-H",
                "Accept: application/vnd.docker.distribution.manifest.v2+json",
                f"http://{host}/v2/{path}/manifests/{tag}"]
        if self.netns_path:
            argv = ["nsenter", f"--net={self.netns_path}", *argv]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        if proc.returncode != 0:
            return None
        try:
            return sum(int(l["size"]) for l in json.loads(proc.stdout).get("layers", []))
        except (ValueError, KeyError, TypeError):
            return None

    def export_image(self, ref: str, dest_dir: Path | str, compresslevel: int = 6) -> ExportResult:
        """``docker save REF | gzip`` into DEST_DIR/NAME.tar.gz; (path, bytes, seconds)."""
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", ref)
        path = dest_dir / f"{stem}.tar.gz"
        t0 = time.perf_counter()
        image = self.client.images.get(ref)
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb",
                                                    compresslevel=compresslevel, mtime=0) as gz:
            for chunk in image.save(named=True):
                gz.write(chunk)
        seconds = time.perf_counter() - t0
        nbytes = path.stat().st_size
        log.info("cloudlet %s: exported %s to %s (%d bytes) in %.3f s", self.name, ref, path,
                 nbytes, seconds)
        return ExportResult(path, nbytes, seconds)

    def load_image(self, archive: Path | str) -> float:
        """``docker load`` of a (gzip-compressed) image archive; returns the seconds it took."""
        t0 = time.perf_counter()
        with open(archive, "rb") as f:
            for ev in self.client.api.load_image(f):
                if "error" in ev:
                    raise RuntimeError(f"load of {archive} on {self.name} failed: {ev['error']}")
        seconds = time.perf_counter() - t0
        log.info("cloudlet %s: loaded %s in %.3f s", self.name, archive, seconds)
        return seconds


@dataclass
class ImageTransfer:
    """Per-phase timings of moving an image between two edges (paper Fig. 5).

    ``archive_bytes``: the archive's file size (the declared size of what was sent).
    ``wire_bytes``: rx + tx bytes counted on the DESTINATION cloudlet's interfaces
    during the fetch (headers, ACKs, retransmissions and any other traffic of that
    cloudlet in the window: see :class:`mec.core.netns.WireCounter`).
    """

    ref: str
    archive_bytes: int
    export_s: float
    transfer_s: float
    wire_bytes: Optional[int]
    load_s: float

    @property
    def total_s(self) -> float:
        return self.export_s + self.transfer_s + self.load_s


def transfer_image(ref: str, src: EdgeManager, dst: EdgeManager, work_dir: Path | str,
                   keep_archives: bool = False,
                   on_phase: Optional[Callable[[str, float], None]] = None,
                   compresslevel: int = 6) -> ImageTransfer:
    """Export REF on SRC, send the archive over the emulated network to DST, load it there.

    COMPRESSLEVEL is gzip's level for the archive (1 = fastest: httpd exported in
    ~4 s to 95 MB, against ~13 s and 87 MB at 6 with Python's gzip here).
    """
    from mec.edge.transfer import transfer_file

    if not (src.netns_path and dst.netns_path):
        raise ValueError("image transfer needs both cloudlets' network namespaces")
    work_dir = Path(work_dir)
    exp = src.export_image(ref, work_dir / src.name, compresslevel=compresslevel)
    if on_phase:
        on_phase("export", exp.seconds)
    received = None
    try:
        tr = transfer_file(src.netns_path, src.ip, dst.netns_path, exp.path,
                           dest_dir=work_dir / dst.name)
        received = tr.path
        if on_phase:
            on_phase("transfer", tr.seconds)
        load_s = dst.load_image(tr.path)
        if on_phase:
            on_phase("load", load_s)
    finally:
        if not keep_archives:
            exp.path.unlink(missing_ok=True)
            if received is not None:
                Path(received).unlink(missing_ok=True)
    return ImageTransfer(ref, exp.bytes, exp.seconds, tr.seconds, tr.wire_bytes, load_s)
