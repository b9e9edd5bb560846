"""A finished run's folder as a `Feed`: `mec view results/NAME/TIMESTAMP` replays it.

The folder is what `mec.measure.results.ResultDir` wrote: ``config.json`` (the
topology's text and the arguments, e.g. ``sla_ms``), ``events-LABEL.jsonl`` (one
event log per testbed the run started) and ``probe-LABEL.csv`` (the user probe's
requests). Each event log becomes a ``testbed`` item followed by its events and
the UE sites they imply; each probe log one ``probe`` item per second of
requests. The page folds them up to the time its slider shows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import yaml

from mec.core.events import read as read_events
from mec.measure.probelog import read_csv
from mec.measure.results import CONFIG_FILE
from mec.view.errors import ViewError
from mec.view.feed import Feed
from mec.view.live import event_item
from mec.view.probetail import row_of
from mec.view.scene import topology_doc
from topologies.loader import TopologyError, from_dict
from topologies.model import Topology

#: requests per probe item of a replay (one second at the default 200 requests/s)
ROWS_PER_ITEM = 200


def run_topology(run_dir: Path, config: dict[str, Any]) -> Topology:
    """The topology a run used, from the text or data its config.json kept."""
    topo = config.get("topology") or {}
    data = yaml.safe_load(topo["content"]) if topo.get("content") else topo.get("data")
    if not data:
        raise ViewError(f"{run_dir}: {CONFIG_FILE} does not hold the run's topology")
    try:
        return from_dict(data, source=topo.get("path") or str(run_dir / CONFIG_FILE))
    except TopologyError as exc:
        raise ViewError(f"{run_dir}: the topology in {CONFIG_FILE} is not valid: "
                        f"{'; '.join(exc.errors)}") from None


def load_run(run_dir: Path | str) -> tuple[Feed, dict[str, Any]]:
    """The feed of a finished run and what the page says about it (``meta``)."""
    run_dir = Path(run_dir)
    cfg_file = run_dir / CONFIG_FILE
    if not run_dir.is_dir():
        raise ViewError(f"{run_dir}: no such results folder (a run's folder is "
                        "results/NAME/TIMESTAMP)")
    if not cfg_file.exists():
        raise ViewError(f"{run_dir}: not a run's folder: it has no {CONFIG_FILE} "
                        "(a run's folder is results/NAME/TIMESTAMP)")
    try:
        config = json.loads(cfg_file.read_text())
    except ValueError as exc:
        raise ViewError(f"{cfg_file}: not JSON: {exc}") from None
    logs = sorted(run_dir.glob("events-*.jsonl"))
    probes = sorted(run_dir.glob("probe-*.csv"))
    if not logs and not probes:
        raise ViewError(f"{run_dir}: no event log (events-*.jsonl) and no probe log "
                        "(probe-*.csv) to replay")
    topo = run_topology(run_dir, config)
    sla = (config.get("args") or {}).get("sla_ms")
    items: list[dict[str, Any]] = []
    doc = topology_doc(topo)
    for path in logs:
        items += _testbed_items(path, doc, topo)
    for path in probes:
        items += _probe_items(path, sla)
    items.sort(key=lambda i: (i["t"], i["type"] != "testbed"))
    feed = Feed(max_items=len(items) + 1, max_probe_items=len(items) + 1)
    for item in items:
        feed.add(item.pop("type"), **item)
    meta = {"mode": "replay", "title": f"{config.get('scenario', run_dir.parent.name)} "
                                       f"{run_dir.name}", "path": str(run_dir)}
    return feed, meta


def _testbed_items(path: Path, doc: dict[str, Any], topo: Topology) -> list[dict[str, Any]]:
    events = read_events(path)
    label = path.stem[len("events-"):]
    start = events[0].t if events else 0.0
    sites = {u.name: u.site for u in topo.ues}
    items = [{"type": "testbed", "t": start, "label": label, "topology": doc},
             {"type": "ues", "t": start, "sites": dict(sites)}]
    for event in events:
        items.append({"type": "event", "t": event.t, **event_item(event)})
        if event.kind == "move.attached" and event.get("ue") in sites:
            sites[event["ue"]] = event["to_site"]
            items.append({"type": "ues", "t": event.t, "sites": dict(sites)})
    return items


def _probe_items(path: Path, sla: Optional[float]) -> list[dict[str, Any]]:
    rows = [row_of(r) for r in read_csv(path)]
    label = path.stem[len("probe-"):]
    return [{"type": "probe", "t": chunk[0][0], "probe": label, "sla_ms": sla, "rows": chunk}
            for chunk in (rows[i:i + ROWS_PER_ITEM] for i in range(0, len(rows), ROWS_PER_ITEM))]
