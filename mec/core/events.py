"""Timestamped event log of an experiment run.

Every part of the orchestrator reports what happens (a UE attached to an
access point, a replica promoted, a migration phase started or finished) as an
:class:`Event` in one :class:`EventLog`. The log keeps events in memory and
appends each one as a JSON line to a file, so that an experiment can be
analysed after the fact (:func:`read`) and lined up with the user probe's
request log: both use ``time.monotonic()``, which is one clock for every
network namespace on the machine.

A JSON line looks like::

    {"seq": 12, "t": 5123.4567, "wall": 1732712345.12, "kind": "migration.transfer.end",
     "service": "svc", "duration_s": 4.2}

``seq``, ``t``, ``wall`` and ``kind`` are fixed keys; every other key is one of
the event's ``fields``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

log = logging.getLogger(__name__)

#: Keys of a JSON line that are not event fields.
RESERVED_KEYS = frozenset({"seq", "t", "wall", "kind"})


@dataclass(frozen=True)
class Event:
    """One thing that happened: when (monotonic and wall clock), what, details."""

    seq: int
    t: float
    wall: float
    kind: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        """Flat dict: the fixed keys followed by the fields."""
        return {"seq": self.seq, "t": self.t, "wall": self.wall, "kind": self.kind, **self.fields}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Event":
        fields = {k: v for k, v in data.items() if k not in RESERVED_KEYS}
        return cls(
            seq=int(data["seq"]),
            t=float(data["t"]),
            wall=float(data["wall"]),
            kind=str(data["kind"]),
            fields=fields,
        )


Callback = Callable[[Event], None]


@dataclass
class _Subscription:
    callback: Callback
    kinds: tuple[str, ...] | None  # None: every event; else exact kinds or fnmatch patterns

    def wants(self, kind: str) -> bool:
        if self.kinds is None:
            return True
        return any(kind == k or fnmatchcase(kind, k) for k in self.kinds)


class EventLog:
    """Thread-safe, append-only log of events (memory + optional JSON-lines file).

    ``EventLog(path)`` appends to ``path`` (creating parent folders);
    ``EventLog()`` keeps events in memory only. Field values must be JSON
    serialisable; anything else is written with ``str()``.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path: Path | None = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._subs: list[_Subscription] = []
        self._seq = 0
        self._file = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")

    # -- writing -----------------------------------------------------------
    def emit(self, kind: str, **fields: Any) -> Event:
        """Record an event of ``kind`` now, with ``fields``; return it."""
        bad = RESERVED_KEYS.intersection(fields)
        if bad:
            raise ValueError(f"event fields may not be named {sorted(bad)}")
        with self._lock:
            self._seq += 1
            event = Event(self._seq, time.monotonic(), time.time(), kind, dict(fields))
            self._events.append(event)
            if self._file is not None:
                self._file.write(json.dumps(event.to_dict(), default=str) + "\n")
                self._file.flush()
            subs = [s for s in self._subs if s.wants(kind)]
        # Callbacks run outside the lock so that they may emit events themselves.
        for sub in subs:
            try:
                sub.callback(event)
            except Exception:  # a faulty observer must not break the emitter
                log.exception("event subscriber %r failed on %s", sub.callback, kind)
        return event

    @contextmanager
    def span(self, kind: str, **fields: Any) -> Iterator[dict[str, Any]]:
        """Emit ``KIND.start``, run the block, emit ``KIND.end`` with ``duration_s``.

        The duration is measured with ``time.perf_counter`` around the block.
        The block may add fields to the end event through the yielded dict
        (``with log.span("x") as extra: extra["bytes"] = n``). On an exception
        the end event carries ``error`` (``"Type: message"``) and the exception
        propagates.
        """
        self.emit(f"{kind}.start", **fields)
        extra: dict[str, Any] = {}
        start = time.perf_counter()
        try:
            yield extra
        except BaseException as exc:
            duration = time.perf_counter() - start
            self.emit(
                f"{kind}.end",
                **{**fields, **extra, "duration_s": duration, "error": f"{type(exc).__name__}: {exc}"},
            )
            raise
        duration = time.perf_counter() - start
        self.emit(f"{kind}.end", **{**fields, **extra, "duration_s": duration})

    # -- observing ---------------------------------------------------------
    def subscribe(self, callback: Callback, kinds: Iterable[str] | str | None = None) -> Callable[[], None]:
        """Call ``callback(event)`` for every later event whose kind matches.

        ``kinds`` is None (all events), or kinds / shell-style patterns such as
        ``"move.*"``. Returns a function that cancels the subscription.
        """
        if isinstance(kinds, str):
            kinds = (kinds,)
        sub = _Subscription(callback, tuple(kinds) if kinds is not None else None)
        with self._lock:
            self._subs.append(sub)

        def unsubscribe() -> None:
            with self._lock:
                if sub in self._subs:
                    self._subs.remove(sub)

        return unsubscribe

    def events(self, kind: str | None = None) -> list[Event]:
        """Snapshot of the events so far (only those matching ``kind`` if given)."""
        with self._lock:
            events = list(self._events)
        if kind is None:
            return events
        return [e for e in events if e.kind == kind or fnmatchcase(e.kind, kind)]

    def last(self, kind: str) -> Event | None:
        """Most recent event matching ``kind`` (exact or pattern), or None."""
        found = self.events(kind)
        return found[-1] if found else None

    def wait_for(self, kind: str, timeout: float, after_seq: int = 0) -> Event:
        """Block until an event matching ``kind`` with seq > ``after_seq`` exists; return it."""
        found = threading.Event()
        unsubscribe = self.subscribe(lambda e: found.set(), kind)
        try:
            for event in self.events(kind):
                if event.seq > after_seq:
                    return event
            if not found.wait(timeout):
                raise TimeoutError(f"no {kind!r} event within {timeout:g} s")
            return next(e for e in self.events(kind) if e.seq > after_seq)
        finally:
            unsubscribe()

    # -- lifetime ----------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read(path: str | Path) -> list[Event]:
    """Load the events of a JSON-lines log file, in file order.

    A truncated last line (a run killed while writing) is skipped with a warning.
    """
    events: list[Event] = []
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            events.append(Event.from_dict(json.loads(line)))
        except (ValueError, KeyError) as exc:
            if number == len(lines):
                log.warning("%s: skipping truncated last line %d: %s", path, number, exc)
                continue
            raise ValueError(f"{path}:{number}: not an event line: {exc}") from exc
    return events
