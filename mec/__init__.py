"""MEC testbed: emulated mobile edge network, edge orchestrator and measurements.

Reproduces and extends Farris et al., "Lightweight Service Replication for
Ultra-Short Latency Applications in Mobile Edge Networks" (ICC 2017).
"""

__version__ = "0.1.0"
