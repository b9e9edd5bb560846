"""What every part of the testbed shares; it imports nothing else of the project.

* `config`: the prefix and the names derived from it, folders, ports, run records;
* `proc`: subprocesses with timeouts, pid records that `mec clean` trusts;
* `netns`: a thread that runs calls inside a network namespace;
* `events`: the event log (JSON lines, timed spans) every component writes to;
* `stats`: percentiles and the mean with its Student-t 95% interval.
"""
