"""The live view in a real browser: `mec run handover --view` under headless Chromium.

The scenario runs on a real testbed (proactive, busybox, two moves of u1); the test
loads the printed address in Debian's chromium, reads the page's DOM every 50 ms over
the DevTools protocol and checks, for every move in the run's event log, that the page
showed the UE at its new access point within 1 s of ``move.attached``, and the new
primary marked and the Network Manager's steering to it within 1 s of the ``roles``
event that made it primary (how long the orchestrator took is the testbed's, printed). Screenshots are saved in the run's
folder (under pytest's tmp_path: ``TMP/handover/TIMESTAMP/view-*.png``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from browser import Browser, chromium
from mec.core import config
from mec.core.events import read as read_events

REPO = Path(__file__).resolve().parents[2]
LIMIT_S = 1.0
OBSERVE = """JSON.stringify({
  site: (document.querySelector('.ue[data-ue="u1"]') || {dataset: {}}).dataset.site || null,
  primary: (document.querySelector('.replica.primary[data-service="svc"]') || {dataset: {}}).dataset.cloudlet || null,
  steered: (document.querySelector('tr.serving[data-ue="u1"] td[data-replica]') || {dataset: {}}).dataset.replica || null,
  strip: (document.querySelector('.strip[data-probe="proactive"] .label') || {}).textContent || null})"""


def _lines(proc: subprocess.Popen, out: list[str]) -> None:
    for line in proc.stdout:
        out.append(line)


@pytest.mark.integration
@pytest.mark.skipif(chromium() is None, reason="Debian's chromium is not installed (scripts/setup.sh)")
def test_handover_seen_live_in_chromium(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), MEC_PREFIX=config.PREFIX)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mec.cli.main", "run", "handover", "--strategy", "proactive",
         "--quick", "--reps", "2", "--dwell", "3", "--view", "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=open(tmp_path / "stderr.txt", "w"), text=True, env=env,
        cwd=REPO)
    out: list[str] = []
    threading.Thread(target=_lines, args=(proc, out), daemon=True).start()
    observed: list[tuple[float, dict]] = []  # (wall clock, what the page showed)
    shots: list[Path] = []
    try:
        url = _wait_for_address(proc, out, timeout=300)
        with Browser(url, tmp_path) as browser:
            last_shot = None
            while proc.poll() is None:
                try:
                    seen = json.loads(browser.evaluate(OBSERVE))
                except Exception:  # noqa: BLE001 - the page goes away when the run ends
                    break
                observed.append((time.time(), seen))
                key = (seen["site"], seen["primary"], seen["steered"])
                if key != last_shot and seen["primary"] and seen["steered"] == seen["primary"]:
                    shots.append(browser.screenshot(tmp_path / f"view-{len(shots) + 1}.png"))
                    last_shot = key
                time.sleep(0.05)
        assert proc.wait(timeout=300) == 0, (tmp_path / "stderr.txt").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)
    (run,) = [p for p in (tmp_path / "handover").iterdir() if p.is_dir()]
    for shot in shots:
        shot.rename(run / shot.name)
    events = read_events(run / "events-proactive.jsonl")
    moves = [e for e in events if e.kind == "move.attached"]
    assert [m["to_site"] for m in moves] == ["s2", "s3"]
    delays = []
    for move in moves:
        primary = "c" + move["to_site"][1:]  # paper.yaml: cloudlet cN at site sN
        promoted = next(e for e in events if e.kind == "roles" and e.t >= move.t
                        and e["roles"].get(primary) == "primary")
        shown = _first(observed, move.wall, lambda s: s["site"] == move["to_site"])
        # the page's lag behind the testbed: from the roles event that made PRIMARY the
        # primary (the orchestrator's own handling time is not the view's)
        marked = _first(observed, promoted.wall, lambda s: s["primary"] == primary)
        steered = _first(observed, promoted.wall, lambda s: s["steered"] == primary)
        delays.append({"to": move["to_site"], "ue_shown_s": shown, "promoted_after_attach_s":
                       promoted.t - move.t, "primary_marked_s": marked,
                       "steering_shown_s": steered})
        assert shown is not None and shown < LIMIT_S, f"UE at {move['to_site']}: {delays}"
        assert marked is not None and marked < LIMIT_S, f"primary {primary}: {delays}"
        assert steered is not None and steered < LIMIT_S, f"steering to {primary}: {delays}"
    print(f"\nview lag per move: {delays}\nscreenshots: {[str(run / s.name) for s in shots]}")
    assert len(shots) >= 3  # before the moves, after each
    strips = [s["strip"] for _, s in observed if s["strip"]]
    assert strips and " replies" in strips[-1] and not strips[-1].startswith("probe proactive: "
                                                                              "last 20 s: 0 ")


def _wait_for_address(proc: subprocess.Popen, out: list[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in out:
            if line.startswith("view: http://127.0.0.1:"):
                return line.split()[1]
        assert proc.poll() is None, f"the run ended before its view: {''.join(out)}"
        time.sleep(0.1)
    raise AssertionError(f"no view address printed within {timeout} s: {''.join(out)}")


def _first(observed: list[tuple[float, dict]], since: float, shown) -> float | None:
    """Seconds from SINCE to the first observation at or after it where SHOWN holds."""
    for wall, seen in observed:
        if wall >= since and shown(seen):
            return wall - since
    return None
