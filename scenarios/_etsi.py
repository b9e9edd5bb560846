"""The handover scenario's ``--etsi`` option: the ETSI MEC platform for the run, and its numbers.

With ``--etsi`` a run starts `mec.etsi.platform.MecPlatform` (MEC 013 Location API, MEC 021
Application Mobility Service) beside the orchestrator, every service instance gets
``MEC_PLATFORM`` (the platform's address on the emulated network), and each move's row
gets, from the platform's events (``etsi.notify``, ``etsi.context_transfer``):

* ``notify_triggered_s`` / ``notify_completed_s``: from the UE's attach at the new access
  point to the moment the application acknowledged the ``INTERHOST_MOVEOUT_TRIGGERED`` /
  ``INTERHOST_MOVEOUT_COMPLETED`` notification (2xx to the platform's POST);
* ``context_transfer_s``: from the acknowledged notification to the application's
  ``USER_CONTEXT_TRANSFER_COMPLETED`` (it moved the user's context itself);
* for an application with a per-user counter at ``GET /counter`` (examples/mec-app): the
  user's counter read from the UE before the move and after it (``counter_before``,
  ``counter_after``), the requests surely counted in between (``counter_requests``: probe
  replies sent after the first read and answered before the second) and ``counter_lost``
  = requests - (after - before): the counts the user lost (0: the context continued
  across the move; the whole earlier count when it stayed behind). What the serving
  instance says it did (its ``GET /state``) is kept as ``app-state-LABEL.json``.

A number not measured is missing (None), never a placeholder.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

MOBILITY = "MobilityProcedureNotification"
TRIGGERED, COMPLETED = "INTERHOST_MOVEOUT_TRIGGERED", "INTERHOST_MOVEOUT_COMPLETED"
METRICS = ("notify_triggered_s", "notify_completed_s", "context_transfer_s",
           "counter_before", "counter_after", "counter_requests", "counter_lost")
#: what the printed summary shows of them
TABLE = ("notify_triggered_s", "notify_completed_s", "context_transfer_s", "counter_lost")
#: the longest wait after a move for the application's context transfer to be reported
CONTEXT_WAIT_S = 10.0


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--etsi", action="store_true",
                        help="run the ETSI MEC platform (MEC 013 location, MEC 021 application "
                             "mobility) for the run: instances get MEC_PLATFORM; rows add "
                             "notification delays and context-transfer time (docs/etsi-mec.md)")


@contextlib.contextmanager
def platform(enabled: bool, tb: Any, orch: Any, events: Any) -> Iterator[Optional[Any]]:
    """The MEC platform for the run (None when not ENABLED); MEC_PLATFORM set for instances
    the orchestrator starts from here on."""
    if not enabled:
        yield None
        return
    from mec.etsi.platform import MecPlatform

    with MecPlatform(tb, orch, events) as mec:
        orch.extra_env["MEC_PLATFORM"] = mec.emulated_url
        yield mec


@dataclass
class CounterRead:
    """One read of the user's counter from the UE (its monotonic start and end)."""

    value: Optional[int]
    t_start: float
    t_end: float


class UserCounter:
    """Reads the user's counter (``GET /counter`` -> ``INSTANCE COUNT``) from the UE's
    namespace through the service's virtual IP, i.e. from the instance serving the user."""

    def __init__(self, netns_path: str, vip: str, port: int, timeout: float = 2.0):
        from mec.core.netns import NamespaceThread

        self.vip, self.port, self.timeout = vip, port, timeout
        self.worker = NamespaceThread(netns_path, name="counter-read")

    def read(self) -> CounterRead:
        from mec.core.check import ask
        from mec.core.servicefile import Exchange

        t0 = time.monotonic()
        answer = self.worker.call(ask, self.vip, self.port, Exchange(path="/counter"),
                                  self.timeout, timeout=self.timeout + 5)
        words = answer.body.decode("utf-8", errors="replace").split() if answer.ok else []
        value = int(words[1]) if len(words) >= 2 and words[1].isdigit() else None
        return CounterRead(value, t0, time.monotonic())

    def save_state(self, path: Any) -> bool:
        """Keep what the serving instance says it did (``GET /state``, JSON: its
        notifications, transfers, Location API answers) in PATH; False if it says nothing."""
        import json

        from mec.core.check import ask
        from mec.core.servicefile import Exchange

        answer = self.worker.call(ask, self.vip, self.port, Exchange(path="/state"),
                                  self.timeout, timeout=self.timeout + 5)
        try:
            state = json.loads(answer.body) if answer.ok else None
        except ValueError:
            state = None
        if state is None:
            return False
        path.write_text(json.dumps(state, indent=1))
        return True

    def close(self) -> None:
        self.worker.close()


def wait_context(events: Any, since: float, timeout: float = CONTEXT_WAIT_S,
                 quiet_s: float = 2.0) -> bool:
    """Wait until an ``etsi.context_transfer`` event after SINCE (monotonic) is logged;
    give up after QUIET_S when no application acknowledged a mobility notification since
    SINCE (nobody subscribed: no context will move), else after TIMEOUT."""
    t0 = time.monotonic()
    while time.monotonic() < t0 + timeout:
        if any(e.t >= since for e in events.events("etsi.context_transfer")):
            return True
        if time.monotonic() > t0 + quiet_s and not any(
                e.t >= since and e.get("type") == MOBILITY and e.get("ok")
                for e in events.events("etsi.notify")):
            return False
        time.sleep(0.05)
    return False


def move_numbers(events: Sequence[Any], t_attached: float, records: Sequence[Any],
                 before: Optional[CounterRead], after: Optional[CounterRead]
                 ) -> dict[str, Any]:
    """The ETSI numbers of one move from the events of its window and the counter reads."""
    acked = {status: min((e["t_acked"] for e in events if e.kind == "etsi.notify"
                          and e.get("type") == MOBILITY and e.get("status") == status
                          and e.get("ok") and e.get("t_acked") is not None), default=None)
             for status in (TRIGGERED, COMPLETED)}
    transfer = next((e for e in events if e.kind == "etsi.context_transfer"
                     and e.get("t_notified") is not None
                     and e.get("t_completed") is not None), None)
    out: dict[str, Any] = {
        "notify_triggered_s": _since(acked[TRIGGERED], t_attached),
        "notify_completed_s": _since(acked[COMPLETED], t_attached),
        "context_transfer_s": (transfer["t_completed"] - transfer["t_notified"])
        if transfer is not None else None,
        "counter_before": before.value if before else None,
        "counter_after": after.value if after else None,
        "counter_requests": None, "counter_lost": None}
    if before and after and before.value is not None and after.value is not None:
        counted = sum(1 for r in records if r.ok and r.t_send >= before.t_end
                      and r.t_reply is not None and r.t_reply <= after.t_start)
        out["counter_requests"] = counted
        out["counter_lost"] = max(0, counted - (after.value - before.value))
    return out


def _since(t: Optional[float], t0: float) -> Optional[float]:
    return None if t is None else t - t0
