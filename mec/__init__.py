"""MEC testbed: emulated mobile edge network, edge orchestrator and measurements.

Reproduces and extends Farris et al., "Lightweight Service Replication for
Ultra-Short Latency Applications in Mobile Edge Networks" (ICC 2017). The
subpackages follow the paper's architecture and run in layers (docs/design.md,
"The map"): `cli` on top; `testbed` wiring `topologies` (the emulated network)
and `controller` (the Network Manager); `orchestrator`, `measure`, `host`;
`service`; `edge`; and `core` at the bottom.
"""

__version__ = "0.1.0"
