"""The results layer: run folders, raw CSV rows kept as they come, summaries, progress, Ctrl-C."""

import argparse
import csv
import json
import os
import signal
from pathlib import Path

import pytest

from mec.core.stats import summarize
from mec.measure.progress import EXIT_INTERRUPTED, Progress, StopGuard
from mec.measure.results import (ResultDir, SummarySpec, environment, find_runs, format_table, read_rows,
                         summarize_rows)

ROWS = [
    {"rep": 1, "image": "httpd", "state": "pulled", "pull_s": 10.0, "total_s": 10.5},
    {"rep": 1, "image": "httpd", "state": "cached", "pull_s": None, "total_s": 0.5},
    {"rep": 2, "image": "httpd", "state": "pulled", "pull_s": 12.0, "total_s": 12.4},
    {"rep": 2, "image": "httpd", "state": "cached", "pull_s": None, "total_s": 0.3},
    {"rep": 3, "image": "httpd", "state": "pulled", "pull_s": 11.0, "total_s": 11.6},
]
SPEC = SummarySpec("startup", ("image", "state"), ("pull_s", "total_s"))


def test_run_folder_is_results_scenario_timestamp_under_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = ResultDir("startup", stamp="20250101-120000")
    b = ResultDir("startup", stamp="20250101-120000")  # same second: never the same folder
    assert a.path == tmp_path / "results" / "startup" / "20250101-120000"
    assert b.path == tmp_path / "results" / "startup" / "20250101-120000-2"
    c = ResultDir("transfer", base=tmp_path / "elsewhere")
    assert c.path.parent == tmp_path / "elsewhere" / "transfer" and c.path.is_dir()


def test_config_holds_arguments_and_topology_text(tmp_path):
    topo = tmp_path / "t.yaml"
    topo.write_text("name: t\nsites: [{name: s1}]\n")
    rd = ResultDir("startup", base=tmp_path)
    args = argparse.Namespace(reps=5, out=tmp_path, func=print, topology=topo)
    rd.write_config(args, topology_path=topo, images=["busybox"])
    cfg = json.loads((rd.path / "config.json").read_text())
    assert cfg["args"] == {"reps": 5, "out": str(tmp_path), "topology": str(topo)}
    assert cfg["topology"]["content"] == topo.read_text()
    assert cfg["topology"]["path"] == str(topo.resolve())
    assert cfg["images"] == ["busybox"] and cfg["scenario"] == "startup"


def test_rows_are_on_disk_as_soon_as_appended(tmp_path):
    rd = ResultDir("startup", base=tmp_path)
    t = rd.table("startup", ("rep", "image", "state", "pull_s", "total_s"))
    t.append(ROWS[0])
    t.append(ROWS[1])
    # Read while the table is still open: a killed run keeps these rows.
    rows = list(csv.DictReader(open(rd.path / "startup.csv")))
    assert [r["state"] for r in rows] == ["pulled", "cached"]
    assert float(rows[0]["pull_s"]) == 10.0 and rows[1]["pull_s"] == ""
    with pytest.raises(KeyError, match="unknown columns"):
        t.append({"rep": 3, "bogus": 1})
    rd.close()


def test_summary_per_group_skips_empty_cells():
    groups = summarize_rows(ROWS, ("image", "state"), ("pull_s", "total_s"))
    assert [g["group"] for g in groups] == [{"image": "httpd", "state": "pulled"},
                                            {"image": "httpd", "state": "cached"}]
    pulled, cached = groups
    assert pulled["n"] == 3 and pulled["metrics"]["pull_s"] == {
        **summarize([10.0, 12.0, 11.0]), "missing": 0}
    assert pulled["metrics"]["pull_s"]["mean"] == pytest.approx(11.0)
    assert pulled["metrics"]["pull_s"]["ci95_low"] < 11.0 < pulled["metrics"]["pull_s"]["ci95_high"]
    assert cached["metrics"]["pull_s"]["n"] == 0  # pre-cached: no pull
    assert cached["metrics"]["pull_s"]["missing"] == 2  # ... counted, not dropped
    assert cached["metrics"]["total_s"]["median"] == pytest.approx(0.4)
    assert "outcomes" not in pulled  # these rows have no outcome column


MOVES = [
    {"strategy": "reactive", "outcome": "ok", "served_by_new_s": 2.0},
    {"strategy": "reactive", "outcome": "failed", "served_by_new_s": None},
    {"strategy": "reactive", "outcome": "ok", "served_by_new_s": 4.0},
    {"strategy": "reactive", "outcome": "not_served", "served_by_new_s": ""},
    {"strategy": "proactive", "outcome": "ok", "served_by_new_s": 0.03},
]
MOVE_SPEC = SummarySpec("handover", ("strategy",), ("served_by_new_s",))


def test_summary_counts_outcomes_and_missing_values_per_group(tmp_path):
    rea, pro = summarize_rows(MOVES, ("strategy",), ("served_by_new_s",))
    assert rea["outcomes"] == {"ok": 2, "failed": 1, "not_served": 1}
    assert rea["metrics"]["served_by_new_s"]["n"] == 2
    assert rea["metrics"]["served_by_new_s"]["missing"] == 2
    assert pro["outcomes"] == {"ok": 1} and pro["metrics"]["served_by_new_s"]["missing"] == 0
    rd = ResultDir("handover", base=tmp_path)
    t = rd.table("handover", ("strategy", "outcome", "served_by_new_s"))
    for row in MOVES:
        t.append(row)
    s = rd.write_summary([MOVE_SPEC], complete=True)
    assert s["outcomes"] == {"ok": 3, "failed": 1, "not_served": 1} and s["not_ok"] == 2
    text = format_table(s["tables"]["handover"]["groups"], ["served_by_new_s"])
    line = [l for l in text.splitlines() if "reactive" in l and "served_by_new_s" in l][0]
    assert line.split()[2:4] == ["2", "2"]  # n, missing
    assert "failed 1, not_served 1, ok 2" in text


def test_summary_json_complete_and_partial(tmp_path):
    rd = ResultDir("startup", base=tmp_path)
    t = rd.table("startup", ("rep", "image", "state", "pull_s", "total_s"))
    for row in ROWS[:3]:
        t.append(row)
    rd.set_environment({"kernel": "k"})
    partial = rd.write_summary([SPEC], complete=False, reason="interrupted by SIGINT")
    on_disk = json.loads((rd.path / "summary.json").read_text())
    assert on_disk == partial
    assert on_disk["complete"] is False and on_disk["reason"] == "interrupted by SIGINT"
    table = on_disk["tables"]["startup"]
    assert table["rows"] == 3 and table["file"] == "startup.csv"
    pulled = [g for g in table["groups"] if g["group"]["state"] == "pulled"][0]
    assert pulled["metrics"]["total_s"]["n"] == 2
    assert on_disk["environment"] == {"kernel": "k"}
    # The raw CSV gives the same summary again (what `mec report` recomputes).
    assert summarize_rows(read_rows(rd.path / "startup.csv"), SPEC.group_by,
                          SPEC.metrics) == table["groups"]


def test_read_rows_skips_a_row_cut_short(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("rep,image,total_s\n1,httpd,1.5\n2,httpd\n")
    assert read_rows(p) == [{"rep": "1", "image": "httpd", "total_s": "1.5"}]


def test_environment_describes_the_machine():
    env = environment()
    assert env["kernel"] == os.uname().release
    assert env["machine"]["nproc"] == os.cpu_count()
    assert env["machine"]["memory_mb"] > 0
    assert env["versions"]["python"] and env["versions"]["mec"]
    assert "delay_mechanism" in env


def test_find_runs_and_table(tmp_path):
    rd = ResultDir("startup", base=tmp_path)
    t = rd.table("startup", ("rep", "image", "state", "pull_s", "total_s"))
    for row in ROWS:
        t.append(row)
    s = rd.write_summary([SPEC], complete=True)
    assert find_runs([tmp_path]) == [rd.path]
    assert find_runs([rd.path]) == [rd.path]
    with pytest.raises(FileNotFoundError):
        find_runs([tmp_path / "nothing"])
    text = format_table(s["tables"]["startup"]["groups"], ["pull_s", ("total_s", "total", 1.0)])
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["image", "state", "metric"]
    pull_line = [l for l in lines if "pulled" in l and "pull_s" in l][0]
    assert pull_line.split()[3:7] == ["3", "0", "11.000", "11.000"]  # n, missing, median, mean
    cached = [l for l in lines if "cached" in l and "pull_s" in l][0]
    assert cached.split()[3:5] == ["0", "2"]  # nothing measured, two rows without a value


def test_progress_line(capsys):
    p = Progress(30)
    line = p.line(3, "httpd pulled", 17.2, pull=16.9, launch=0.3)
    assert line == "[rep 3/30] httpd pulled: 17.2 s (pull 16.9 s, launch 0.300 s)"
    assert capsys.readouterr().err.strip() == line


def test_stop_guard_first_signal_interrupts_later_ones_do_not(capsys):
    before = signal.getsignal(signal.SIGINT)
    with StopGuard() as guard:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        assert guard.interrupted and guard.signal_name == "SIGINT"
        os.kill(os.getpid(), signal.SIGINT)  # during clean-up: only a note
    assert signal.getsignal(signal.SIGINT) is before
    assert "still cleaning up" in capsys.readouterr().err


def test_execute_keeps_finished_rows_when_interrupted(tmp_path, capsys):
    from scenarios._common import execute

    args = argparse.Namespace(out=tmp_path, json=False)

    def measure(rd, set_testbed):
        t = rd.table("startup", ("rep", "image", "state", "pull_s", "total_s"))
        t.append(ROWS[0])
        t.append(ROWS[1])
        raise KeyboardInterrupt("SIGINT")

    plotted = []

    def plots(path, groups):
        plotted.append(groups)
        return [path / "fig.png"]

    rc = execute("startup", args, [SPEC], measure, plots, {"startup": ["total_s"]})
    assert rc == EXIT_INTERRUPTED
    (run,) = find_runs([tmp_path])
    s = json.loads((run / "summary.json").read_text())
    assert s["complete"] is False and "SIGINT" in s["reason"]
    assert s["tables"]["startup"]["rows"] == 2 and s["plots"] == ["fig.png"]
    assert len(plotted[0]["startup"]) == 2
    out = capsys.readouterr().out
    assert "INCOMPLETE" in out and str(run / "summary.json") in out


def test_execute_reports_a_failure_with_exit_1(tmp_path):
    from scenarios._common import execute

    def measure(rd, set_testbed):
        rd.table("startup", ("rep",))
        raise RuntimeError("engine gone")

    rc = execute("startup", argparse.Namespace(out=tmp_path, json=True), [SPEC], measure,
                 lambda p, g: [], {})
    assert rc == 1
    (run,) = find_runs([tmp_path])
    s = json.loads((run / "summary.json").read_text())
    assert s["reason"] == "failed: RuntimeError: engine gone" and s["plots"] == []


def test_mec_report_cells_carry_n_and_missing_and_the_run_line_says_not_ok(tmp_path):
    from mec.measure.report import comparison_table, run_line

    rd = ResultDir("handover", base=tmp_path)
    t = rd.table("handover", ("strategy", "outcome", "served_by_new_s"))
    for row in MOVES:
        t.append(row)
    s = rd.write_summary([MOVE_SPEC], complete=True)
    text = comparison_table([(1, s)], "handover", ["served_by_new_s"])
    reactive = [l for l in text.splitlines() if l.startswith("reactive")][0]
    assert "3.000 ±" in reactive and "n=2+2?" in reactive  # 2 values, 2 moves without one
    assert "n=1" in [l for l in text.splitlines() if l.startswith("proactive")][0]
    line = run_line(1, rd.path, s)
    assert "2 rows NOT OK" in line and "failed 1" in line and "not_served 1" in line
