"""Benchmarks (`mec bench NAME`): measured numbers, a table or JSON.

* `links`: shaped-link fidelity (rate, RTT, loss) and an image pull over a link;
* `reroute`: the Network Manager's re-steer latency and rate, location events;
* `probe`: the user probe's highest sustained request rate (loopback).
"""
