"""A watchdog over the testbed's processes: a death is reported within a second, with its name.

Each watched `Component` is one process the testbed depends on (the Network
Manager, a delay line, a cloudlet's Docker engine, the cloud registry, a user
probe) given as a liveness check. One thread polls every check each
``period_s`` (0.2 s: a death is seen within that, plus the check's own time).
A death is recorded as a `Death` (what, when it was seen, how), logged, written
to the event log (``component.died``) and passed to the listeners. Where the
component can be brought back (``restart``), the watchdog restarts it, times the
recovery from the moment it saw the death to the restart's return
(``component.recovered``), and keeps watching it; a failed restart is recorded
too (``component.recovery_failed``). A restart runs on its own thread, so the
other components stay watched meanwhile. Listeners are called when a death is
seen and again when its recovery ended (well or not).

A run with a death that was not recovered is not valid: its numbers were made
with a part missing. `Watchdog.verdict()` says so for the results.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)

#: How often every component is checked (s).
PERIOD_S = 0.2


@dataclass
class Component:
    """One process the testbed depends on."""

    name: str  # e.g. "network-manager", "delay line s1-s2 a->b", "engine mecc1"
    kind: str  # controller | delay-line | engine | registry | probe
    alive: Callable[[], bool]
    #: what is known of the death (exit code, log file), asked once it died
    detail: Callable[[], str] = lambda: ""
    #: brings the component back (blocking); None: it cannot be recovered
    restart: Optional[Callable[[], None]] = None


@dataclass
class Death:
    """A component that died while watched."""

    name: str
    kind: str
    t_detected: float  # time.monotonic() when the watchdog saw it
    detail: str = ""
    recovered: bool = False
    recovery_s: Optional[float] = None  # from detection to the restart's return
    recovery_error: Optional[str] = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Watchdog:
    """Polls every watched component; see the module docstring."""

    period_s: float = PERIOD_S
    events: Any = None  # an EventLog (emit(kind, **fields)), or None
    listeners: list[Callable[[Death], None]] = field(default_factory=list)
    deaths: list[Death] = field(default_factory=list, init=False)
    _components: dict[str, Component] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thread: Optional[threading.Thread] = field(default=None, init=False, repr=False)

    # ------------------------------------------------------------------ what is watched
    def watch(self, component: Component) -> None:
        with self._lock:
            self._components[component.name] = component

    def unwatch(self, name: str) -> None:
        """Stop watching NAME (before stopping it on purpose)."""
        with self._lock:
            self._components.pop(name, None)

    def watched(self) -> list[str]:
        with self._lock:
            return sorted(self._components)

    # ------------------------------------------------------------------ the loop
    def start(self) -> "Watchdog":
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10 + self.period_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.check_once()

    def check_once(self) -> list[Death]:
        """Check every component once; returns the deaths seen now."""
        with self._lock:
            components = list(self._components.values())
        seen = []
        for comp in components:
            try:
                ok = comp.alive()
            except Exception as exc:  # noqa: BLE001 - a broken check is a finding too
                ok, why = False, f"liveness check failed: {type(exc).__name__}: {exc}"
            else:
                why = ""
            if ok or self._stop.is_set():
                continue
            seen.append(self._died(comp, why))
        return seen

    def _died(self, comp: Component, why: str) -> Death:
        with self._lock:
            self._components.pop(comp.name, None)
        death = Death(comp.name, comp.kind, time.monotonic(), why or _safe(comp.detail))
        self.deaths.append(death)
        log.error("%s (%s) died: %s", comp.name, comp.kind, death.detail or "no detail")
        self._emit("component.died", name=comp.name, component=comp.kind, detail=death.detail)
        for listener in list(self.listeners):
            _call(listener, death)
        if comp.restart is not None:  # on its own thread: the others stay watched meanwhile
            threading.Thread(target=self._recover, args=(comp, death), daemon=True,
                             name=f"restart {comp.name}").start()
        return death

    def _recover(self, comp: Component, death: Death) -> None:
        try:
            comp.restart()
        except Exception as exc:  # noqa: BLE001 - reported, the run is then invalid
            death.recovery_error = f"{type(exc).__name__}: {exc}"
            log.error("%s: restart failed: %s", comp.name, death.recovery_error)
            self._emit("component.recovery_failed", name=comp.name, component=comp.kind,
                       error=death.recovery_error)
            for listener in list(self.listeners):
                _call(listener, death)
            return
        death.recovered = True
        death.recovery_s = time.monotonic() - death.t_detected
        log.warning("%s restarted %.2f s after its death was seen", comp.name, death.recovery_s)
        self._emit("component.recovered", name=comp.name, component=comp.kind,
                   recovery_s=death.recovery_s)
        self.watch(comp)
        for listener in list(self.listeners):
            _call(listener, death)

    def _emit(self, kind: str, **fields: Any) -> None:
        if self.events is not None:
            try:
                self.events.emit(kind, **fields)
            except Exception as exc:  # noqa: BLE001 - a closed log must not stop the watch
                log.debug("watchdog: event %s not written: %s", kind, exc)

    # ------------------------------------------------------------------ verdict
    def verdict(self) -> dict[str, Any]:
        """``{"valid": bool, "deaths": [...]}``: valid unless a death was not recovered."""
        deaths = [d.as_dict() for d in self.deaths]
        return {"valid": all(d["recovered"] for d in deaths), "deaths": deaths}

    def __enter__(self) -> "Watchdog":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def process_component(name: str, kind: str, popen_of: Callable[[], Any],
                      log_file: Any = None,
                      restart: Optional[Callable[[], None]] = None) -> Component:
    """A Component for a child process: alive while ``popen_of()`` runs.

    POPEN_OF returns the current `subprocess.Popen` (or None when there is none:
    then it counts as dead), so a restarted process is followed too.
    """
    def alive() -> bool:
        proc = popen_of()
        return proc is not None and proc.poll() is None

    def detail() -> str:
        proc = popen_of()
        code = None if proc is None else proc.poll()
        text = "no process" if proc is None else (
            f"pid {proc.pid} exited with {code}" if code is not None else f"pid {proc.pid}")
        return text + (f"; log {log_file}" if log_file else "")

    return Component(name, kind, alive, detail, restart)


def _safe(fn: Callable[[], str]) -> str:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001
        return f"(no detail: {exc})"


def _call(listener: Callable[[Death], None], death: Death) -> None:
    try:
        listener(death)
    except Exception:  # noqa: BLE001 - a listener must not stop the watch
        log.exception("watchdog listener failed")
