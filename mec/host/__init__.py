"""The machine the testbed runs on.

* `daemons`: Open vSwitch and the build Docker engine, started without systemd;
* `doctor`: every prerequisite checked, with a fix for each failure;
* `clean`: everything this prefix created removed (never `mn -c`, never by program name);
* `smoke`: one cloudlet engine, one service container, one answer.
"""
