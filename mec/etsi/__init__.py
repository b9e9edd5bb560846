"""The ETSI MEC APIs served by the testbed (layer 3, beside `mec.testbed` and `mec.view`).

* `location` / `location_api`: GS MEC 013 Location API v2 (zones = sites, access points =
  the sites' switches, users = UEs), fed by the Network Manager's location events;
* `mobility` / `mobility_api`: GS MEC 021 Application Mobility Service v1 (registrations,
  subscriptions, adjacent instances), fed by the orchestrator's event log;
* `notify`: callbacks to subscribers, retried with a bound, from the host or from the
  emulated cloud node's namespace;
* `schema`: the JSON schemas written from the specifications' data types (`schemas/`);
* `platform`: `MecPlatform`, the server on its two listeners (docs/etsi-mec.md).
"""
