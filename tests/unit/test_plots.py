"""Figures drawn from synthetic data: the files exist and show what they should."""

import numpy as np
import pytest
from matplotlib import colors as mcolors
from matplotlib.image import imread

from mec.measure.plots import PALETTE, startup_figure, timeline, transfer_figure
from mec.measure.probelog import ProbeRecord
from mec.measure.results import summarize_rows


def _has_colour(img: np.ndarray, hex_colour: str, min_pixels: int = 50) -> bool:
    rgb = np.array(mcolors.to_rgb(hex_colour))
    close = np.all(np.abs(img[..., :3] - rgb) < 0.02, axis=-1)
    return int(close.sum()) >= min_pixels


def _startup_groups():
    rows = []
    for image, pull in (("busybox", 0.5), ("debian", 7.0), ("httpd", 15.0)):
        for rep in range(5):
            rows.append({"image": image, "state": "pulled", "total_s": pull + 0.1 * rep})
            rows.append({"image": image, "state": "cached", "total_s": 0.2 + 0.01 * rep})
    return summarize_rows(rows, ("image", "state"), ("total_s",))


def test_startup_figure(tmp_path):
    path = startup_figure(_startup_groups(), tmp_path / "fig4.png")
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = imread(path)
    assert img.shape[1] > 600  # a readable size
    assert _has_colour(img, PALETTE[0]) and _has_colour(img, PALETTE[1])  # both series drawn


def test_startup_figure_only_cached(tmp_path):
    groups = [g for g in _startup_groups() if g["group"]["state"] == "cached"]
    img = imread(startup_figure(groups, tmp_path / "f.png"))
    assert _has_colour(img, PALETTE[0]) and not _has_colour(img, PALETTE[1], min_pixels=1)


def test_transfer_figure_stacks_four_phases(tmp_path):
    rows = []
    for link, tr in (("dc", 8.0), ("mec", 32.0)):
        for rep in range(3):
            phases = {"export_s": 4.0, "transfer_s": tr + rep, "load_s": 5.0, "launch_s": 1.0}
            rows.append({"link": link, **phases, "total_s": sum(phases.values())})
    groups = summarize_rows(rows, ("link",), ("export_s", "transfer_s", "load_s", "launch_s",
                                              "total_s"))
    path = transfer_figure(groups, tmp_path / "fig5.png", link_labels={"dc": "dc\n100 Mbit/s"})
    img = imread(path)
    for colour in PALETTE[:4]:
        assert _has_colour(img, colour)


def test_timeline_colours_replicas_and_marks_failures(tmp_path):
    recs = []
    for i in range(400):
        t = 100.0 + i * 0.01
        if 102.0 <= t < 102.3:
            recs.append(ProbeRecord(i, t, None, "timeout"))
        else:
            replica = "c1" if t < 102.0 else "c2"
            recs.append(ProbeRecord(i, t, t + 0.004, "200", 4.0 if t < 101 else 55.0, replica))
    events = [{"t": 101.0, "kind": "move.attached"}, {"t": 102.3, "kind": "steer"}]
    path = timeline(recs, events, tmp_path / "tl.png", sla_ms=20, title="handover")
    img = imread(path)
    assert _has_colour(img, PALETTE[0], 20) and _has_colour(img, PALETTE[1], 20)
    assert _has_colour(img, "red", 20)  # failed requests


def test_timeline_without_records_still_draws_events(tmp_path):
    path = timeline([], [{"t": 5.0, "kind": "move"}], tmp_path / "empty.png")
    assert path.exists() and path.stat().st_size > 1000
