"""Unit tests of the probe's reply parsing and command line (no network)."""

from __future__ import annotations

import argparse
import json

from mec.cli import metrics as cli_metrics
from mec.cli import probe as cli_probe
from mec.measure import probe
from mec.measure.probelog import ProbeRecord, write_csv


def test_reply_parsing_statuses_and_replica():
    p = probe.Probe("http://10.0.0.100:8080/x?y=1")
    assert p.host == "10.0.0.100" and p.port == 8080
    assert p._request.startswith(b"GET /x?y=1 HTTP/1.0\r\nHost: 10.0.0.100:8080\r\n")
    assert p._parse(b"HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\nc2-svc\n") == ("200", "c2-svc", True)
    assert p._parse(b"HTTP/1.1 503 Service Unavailable\r\n\r\n") == ("503", None, False)
    assert p._parse(b"") == ("reset", None, False)
    assert p._parse(b"garbage") == ("error", None, False)
    assert probe.Probe("http://h/", replica_parser=probe.regex_parser(r"by=(\w+)"))._parse(
        b"HTTP/1.0 200 OK\r\n\r\nok by=c9\n") == ("200", "c9", True)


def test_cli_subcommands_register(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cli_probe.register(sub)
    cli_metrics.register(sub)
    args = parser.parse_args(["probe", "--url", "http://10.0.0.1:8080/", "--out", "x.csv", "--rate", "300"])
    assert args.func is probe.run_cli and args.rate == 300 and args.timeout == 1.0

    path = tmp_path / "p.csv"
    write_csv(path, [ProbeRecord(i, 1 + i / 100, 1 + i / 100 + 0.002, "200", 2.0, "c1") for i in range(10)])
    args = parser.parse_args(["metrics", str(path), "--sla-ms", "1"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)[str(path)]
    assert out["ok"] == 10 and out["failed"] == 0
    assert abs(out["time_above_sla_s"] - 0.09) < 1e-6
