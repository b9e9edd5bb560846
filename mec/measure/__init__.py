"""Measuring at the user and keeping the numbers.

* `probe`: the user probe, a fixed-rate open-loop HTTP, TCP or UDP client run on a UE;
* `target`: what the probe asks and what counts as a reply; `exchange`: one request on the wire;
* `probelog`: its per-request log (CSV);
* `metrics`: interruption, latency, SLA and replica numbers from probe logs;
* `results`: a run's folder (config, raw CSV, summary with 95% CI, environment);
* `plots`: the figures; `report`: runs compared side by side;
* `progress`: the per-repetition lines a long run prints, and Ctrl-C handling.
"""
