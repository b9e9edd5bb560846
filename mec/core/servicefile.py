"""Service files: what a micro-service is, how to reach it and how to check it (YAML).

A service file names a published image (a built-in one or one added with
``mec image add``) and says how the testbed runs and measures it::

    name: echo                   # required: [a-z][a-z0-9-]{0,30}; names the instances
    image: echo:1.0              # required: a published image, NAME or NAME:TAG
    port: 7000                   # required: the TCP/UDP port the service listens on
    protocol: tcp                # http (default) | tcp | udp
    probe: {payload: "ping\\n", reply: echo}   # what the user's probe sends (below)
    health: {connect: true}      # how the Service Manager checks a replica (below)
    command: [/bin/busybox, tcpsvd, 0, "7000", cat]   # optional: replaces the image's CMD
    env: {GREETING: hello}       # optional: extra environment (strings)
    cpus: 0.5                    # optional: CPU limit and reservation per instance
    memory_mb: 128               # optional: memory limit and reservation (>= 6)
    data: /srv/state             # optional: the path inside the container holding state
    sla_ms: 30                   # optional: the latency bound the results judge against
    names_instance: false        # optional: the reply's first token names the instance

``probe`` and ``health`` are :class:`Exchange` s: for ``http`` ``{method, path,
expect_status}`` (defaults GET, /, 200); for ``tcp`` and ``udp`` ``{payload |
payload_hex, reply}`` where ``reply`` is ``any`` (any bytes back) or ``echo`` (the
request's bytes back); a ``tcp`` health check may be ``{connect: true}`` (a
completed connection is enough). ``health`` defaults to the probe.

Every instance gets ``MEC_INSTANCE`` (its name) and ``MEC_PORT`` in its
environment. Which replica answered is taken from the network (the Network
Manager's connection ledger); ``names_instance: true`` (the built-in images)
adds the body check on top.

:func:`load` validates a file against :data:`SCHEMA` (jsonschema) and then the
rules between fields, and raises :class:`ServiceFileError` with one line per
problem of the form ``FILE: ENTRY: problem (what is allowed)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Collection, Optional

import jsonschema
import yaml

PROTOCOLS = ("http", "tcp", "udp")
REPLIES = ("any", "echo")
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
NAME_RE = r"^[a-z][a-z0-9-]{0,30}$"
IMAGE_RE = r"^[a-z0-9][a-z0-9._-]{0,62}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"
ENV_KEY_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
BUILTIN_DIR = Path(__file__).resolve().parent / "services"
MIN_MEMORY_MB = 6  # Docker refuses a memory limit under 6 MB

_EXCHANGE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "method": {"enum": list(METHODS)},
        "path": {"type": "string", "pattern": "^/", "maxLength": 2000},
        "expect_status": {"type": "integer", "minimum": 100, "maximum": 599},
        "payload": {"type": "string", "maxLength": 65000},
        "payload_hex": {"type": "string", "pattern": "^([0-9a-fA-F]{2})*$", "maxLength": 130000},
        "reply": {"enum": list(REPLIES)},
        "connect": {"type": "boolean"},
    },
}

#: The JSON schema of a service file (field types and ranges; the rules between
#: fields are checked by :func:`from_dict`).
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "image", "port"],
    "properties": {
        "name": {"type": "string", "pattern": NAME_RE},
        "description": {"type": "string"},
        "image": {"type": "string", "pattern": IMAGE_RE},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "protocol": {"enum": list(PROTOCOLS)},
        "probe": _EXCHANGE,
        "health": _EXCHANGE,
        "command": {"type": "array", "minItems": 1, "items": {"type": ["string", "number"]}},
        "env": {"type": "object", "propertyNames": {"pattern": ENV_KEY_RE},
                "additionalProperties": {"type": ["string", "number", "boolean"]}},
        "cpus": {"type": "number", "exclusiveMinimum": 0, "maximum": 256},
        "memory_mb": {"type": "integer", "minimum": MIN_MEMORY_MB, "maximum": 1048576},
        "data": {"type": "string", "pattern": "^/.", "maxLength": 1000},
        "sla_ms": {"type": "number", "exclusiveMinimum": 0, "maximum": 600000},
        "names_instance": {"type": "boolean"},
    },
}

#: What each key of an exchange means, per protocol (for the "allowed" part of errors).
EXCHANGE_KEYS = {"http": ("method", "path", "expect_status"),
                 "tcp": ("payload", "payload_hex", "reply", "connect"),
                 "udp": ("payload", "payload_hex", "reply")}


class ServiceFileError(ValueError):
    """A service file is invalid; ``.errors`` lists every problem, one line each."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("\n".join(errors))


@dataclass(frozen=True)
class Exchange:
    """One request and what counts as its answer (a probe request or a health check)."""

    protocol: str = "http"
    method: str = "GET"
    path: str = "/"
    expect_status: int = 200
    payload: bytes = b""
    reply: str = "any"  # tcp/udp: "any" bytes back, or the request's bytes "echo"ed
    connect: bool = False  # tcp: a completed connection is the answer

    def describe(self) -> str:
        if self.protocol == "http":
            return f"HTTP {self.method} {self.path} -> {self.expect_status}"
        if self.connect:
            return "TCP connect"
        return f"{self.protocol.upper()} {self.payload!r} -> {self.reply}"


@dataclass(frozen=True)
class ServiceDef:
    """A service as its file describes it (see the module docstring)."""

    name: str
    image: str
    port: int
    protocol: str = "http"
    probe: Exchange = field(default_factory=Exchange)
    health: Exchange = field(default_factory=Exchange)
    command: Optional[tuple[str, ...]] = None
    env: dict[str, str] = field(default_factory=dict)
    cpus: Optional[float] = None
    memory_mb: Optional[int] = None
    data: Optional[str] = None
    sla_ms: Optional[float] = None
    names_instance: bool = False
    description: str = ""
    path: Optional[Path] = None  # the file it was read from

    @property
    def transport(self) -> str:
        """The transport protocol the network steers (http runs over tcp)."""
        return "udp" if self.protocol == "udp" else "tcp"

    def with_image(self, image: str) -> "ServiceDef":
        return replace(self, image=image)


# ---------------------------------------------------------------------- loading
def load(path: Path | str, known_images: Optional[Collection[str]] = None) -> ServiceDef:
    """Read and validate a service file. KNOWN_IMAGES (published image names, with or
    without ``:latest``), when given, must contain the file's image."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ServiceFileError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except yaml.YAMLError as exc:
        raise ServiceFileError([f"{path}: not valid YAML: {exc}"]) from None
    return from_dict(data, source=str(path), known_images=known_images, path=path)


def from_dict(data: Any, source: str = "<service>",
              known_images: Optional[Collection[str]] = None,
              path: Optional[Path] = None) -> ServiceDef:
    """A :class:`ServiceDef` from parsed YAML; every problem is reported at once."""
    if not isinstance(data, dict):
        raise ServiceFileError([f"{source}: the file must be a mapping of keys "
                                f"(name, image, port, ...), not {type(data).__name__}"])
    errors = [f"{source}: {_where(e)}: {_message(e)}"
              for e in sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data),
                              key=lambda e: list(map(str, e.absolute_path)))]
    if errors:
        raise ServiceFileError(errors)
    protocol = data.get("protocol", "http")
    problems: list[str] = []
    probe = _exchange(data.get("probe") or {}, protocol, "probe", problems)
    health = (_exchange(data["health"], protocol, "health", problems) if "health" in data
              else probe)
    if probe.connect:
        problems.append("probe.connect: a probe needs a request and a reply "
                        "(connect is for health checks only)")
    image = data["image"]
    if known_images is not None and not _known(image, known_images):
        shown = ", ".join(sorted(known_images)) or "none"
        problems.append(f"image: {image!r} is not a published image (published: {shown}; "
                        "add yours with `mec image add DIR --name NAME`)")
    if data.get("names_instance") and protocol != "http":
        problems.append("names_instance: only for http services (the first token of the "
                        "body names the instance)")
    if problems:
        raise ServiceFileError([f"{source}: {p}" for p in problems])
    return ServiceDef(
        name=data["name"], image=image, port=data["port"], protocol=protocol, probe=probe,
        health=health,
        command=tuple(str(c) for c in data["command"]) if "command" in data else None,
        env={k: _env_value(v) for k, v in (data.get("env") or {}).items()},
        cpus=data.get("cpus"), memory_mb=data.get("memory_mb"), data=data.get("data"),
        sla_ms=data.get("sla_ms"), names_instance=bool(data.get("names_instance", False)),
        description=data.get("description", ""), path=path)


def _exchange(raw: dict[str, Any], protocol: str, entry: str, problems: list[str]) -> Exchange:
    allowed = EXCHANGE_KEYS[protocol]
    for key in raw:
        if key not in allowed:
            problems.append(f"{entry}.{key}: not a key of a {protocol} {entry} "
                            f"(allowed: {', '.join(allowed)})")
    if "payload" in raw and "payload_hex" in raw:
        problems.append(f"{entry}: payload and payload_hex both given (choose one)")
    payload = (bytes.fromhex(raw["payload_hex"]) if "payload_hex" in raw
               else str(raw.get("payload", "")).encode())
    connect = bool(raw.get("connect", False))
    if protocol != "http" and not payload and not connect:
        problems.append(f"{entry}: a {protocol} {entry} needs a payload (or payload_hex) to "
                        "send" + (", or connect: true" if protocol == "tcp" else ""))
    return Exchange(protocol=protocol, method=raw.get("method", "GET"), path=raw.get("path", "/"),
                    expect_status=raw.get("expect_status", 200), payload=payload,
                    reply=raw.get("reply", "any"), connect=connect)


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _known(image: str, known: Collection[str]) -> bool:
    """IMAGE (``NAME`` meaning ``NAME:latest``) is among KNOWN (either spelling)."""
    tagged = lambda ref: ref if ":" in ref else f"{ref}:latest"  # noqa: E731
    return tagged(image) in {tagged(k) for k in known}


def _where(error: jsonschema.ValidationError) -> str:
    parts = ""
    for p in error.absolute_path:
        parts += f"[{p}]" if isinstance(p, int) else (f".{p}" if parts else str(p))
    return parts or "(top level)"


def _message(error: jsonschema.ValidationError) -> str:
    """A jsonschema error said in the file's terms, with what is allowed."""
    v = error.validator
    if v == "additionalProperties":
        allowed = ", ".join(error.schema.get("properties", {}))
        extra = ", ".join(sorted(set(error.instance) - set(error.schema.get("properties", {}))))
        return f"unknown key(s) {extra} (allowed: {allowed})"
    if v == "required":
        return f"{error.message} (required keys: {', '.join(error.validator_value)})"
    if v == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"{error.instance!r} is not allowed (allowed: {allowed})"
    if v == "pattern":
        what = {NAME_RE: "lower-case letters, digits and '-', starting with a letter, "
                         "at most 31 characters",
                IMAGE_RE: "NAME or NAME:TAG of a published image",
                ENV_KEY_RE: "letters, digits and '_', not starting with a digit",
                "^/": "a path starting with /", "^/.": "an absolute path inside the container",
                "^([0-9a-fA-F]{2})*$": "pairs of hexadecimal digits"}.get(error.validator_value,
                                                                          error.validator_value)
        return f"{error.instance!r} is not valid ({what})"
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{error.instance!r} is out of range ({v} {error.validator_value})"
    if v == "type":
        return f"{error.instance!r} is not of type {error.validator_value}"
    return error.message


# ---------------------------------------------------------------------- built-ins
def builtin_path(name: str) -> Path:
    return BUILTIN_DIR / f"{name}.yaml"


def builtin_names() -> list[str]:
    """The service files shipped with the project (the paper's images)."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def builtin(name: str) -> ServiceDef:
    """The built-in service file NAME (``busybox``, ``debian``, ``httpd``)."""
    path = builtin_path(name)
    if not path.exists():
        raise ServiceFileError([f"no built-in service {name!r} "
                                f"(built-in: {', '.join(builtin_names())})"])
    return load(path)


def for_image(image: str) -> ServiceDef:
    """The built-in service running IMAGE (the paper's images), for callers that name
    only an image; any other image gets the built-in contract (mec-service on 8080)."""
    names = builtin_names()
    base = builtin(image if image in names else names[0])
    return base if base.image == image else base.with_image(image)


def resolve(spec: Optional[str | Path], default: str) -> ServiceDef:
    """A ``--service`` value: a built-in's name or a file path; None -> built-in DEFAULT."""
    if spec is None:
        return builtin(default)
    if str(spec) in builtin_names() and not Path(spec).exists():
        return builtin(str(spec))
    return load(spec)

