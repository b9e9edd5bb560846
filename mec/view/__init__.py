"""The live web view: a page on 127.0.0.1 that shows the testbed as it runs, or a run replayed.

``feed.py`` is the time-stamped stream the page is drawn from, ``layout.py`` places
the sites, ``scene.py`` describes a topology for the page, ``live.py`` follows a
running testbed (event log, Network Manager, engines, probe logs), ``replay.py``
reads a finished run's folder, ``server.py`` serves the page and pushes the stream
(server-sent events); ``static/`` is the page itself (plain SVG and JavaScript).
It sits beside `mec.testbed`: it reads a testbed it is handed, never starts one.
"""
