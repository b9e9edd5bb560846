"""The Edge Orchestrator (paper Sec. IV, Fig. 3): Scheduler, Migration & Replica Controller.

* `orchestrator`: `EdgeOrchestrator`, deploying services and taking in events;
* `proactive`, `reactive`, `failover`: what it does on a move or a failure;
* `deployment`: one deployed service's bookkeeping;
* `replicas`: a service's replica roles (one primary, at most one backup);
* `scheduler`: placement policies (where replicas go).

It drives the cloudlets through `mec.edge` and watches the replicas through
`mec.service`; the testbed it runs on comes from `mec.testbed`.
"""

from mec.orchestrator.deployment import (IMAGE_SOURCES, STRATEGIES, Deployment,
                                         OrchestrationError)
from mec.orchestrator.orchestrator import EdgeOrchestrator

__all__ = ["EdgeOrchestrator", "Deployment", "OrchestrationError", "STRATEGIES", "IMAGE_SOURCES"]
