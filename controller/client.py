"""Python client of the Network Manager's REST API (used by the orchestrator and tests)."""

from __future__ import annotations

import time
from typing import Any

import requests

from controller.settings import ControllerSettings


class NetworkManagerError(RuntimeError):
    """The controller refused a request (``status`` and its message) or is unreachable."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message if status is None else f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class NetworkManagerClient:
    """Mirror of the REST API; every method returns the decoded JSON answer."""

    def __init__(self, base_url: str = ControllerSettings().url, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        # Benchmarks call from many threads at once: keep a connection for each.
        self.session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=128))

    def _call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        try:
            r = self.session.request(method, self.base_url + path, json=body,
                                     params=params or None, timeout=self.timeout)
        except requests.RequestException as e:
            raise NetworkManagerError(f"controller at {self.base_url} unreachable: {e}") from e
        try:
            doc = r.json()
        except ValueError:
            doc = None
        if r.status_code >= 400:
            msg = doc.get("error") if isinstance(doc, dict) else r.text
            raise NetworkManagerError(str(msg), r.status_code)
        return doc

    # ---------------------------------------------------------------- API
    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def wait_ready(self, timeout: float = 10.0, switches: int = 0) -> dict[str, Any]:
        """Poll until the REST API answers and at least ``switches`` switches are connected."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                h = self.health()
                if len(h["switches_connected"]) >= switches:
                    return h
                last = NetworkManagerError(f"{len(h['switches_connected'])}/{switches} "
                                           "switches connected")
            except NetworkManagerError as e:
                last = e
            time.sleep(0.05)
        raise NetworkManagerError(f"controller not ready after {timeout}s: {last}")

    def switches(self) -> list[dict[str, Any]]:
        return self._call("GET", "/switches")

    def flows(self, dpid: int | str) -> list[dict[str, Any]]:
        doc = self._call("GET", f"/stats/flow/{dpid}")
        return next(iter(doc.values())) if doc else []

    def topology(self) -> dict[str, Any]:
        return self._call("GET", "/mec/topology")

    def push_topology(self, switches: list[dict[str, Any]], links: list[dict[str, Any]],
                      hosts: list[dict[str, Any]]) -> dict[str, Any]:
        return self._call("PUT", "/mec/topology",
                          {"switches": switches, "links": links, "hosts": hosts})

    def services(self) -> list[dict[str, Any]]:
        return self._call("GET", "/mec/services")

    def add_service(self, name: str, vip: str, port: int, vmac: str | None = None,
                    primary: str | None = None, protocol: str = "tcp") -> dict[str, Any]:
        """Add or replace a service reached at ``vip``:``port`` over ``protocol`` (tcp, udp)."""
        body: dict[str, Any] = {"name": name, "vip": vip, "port": port, "protocol": protocol}
        if vmac:
            body["vmac"] = vmac
        if primary:
            body["primary"] = primary
        return self._call("POST", "/mec/services", body)

    def remove_service(self, name: str) -> dict[str, Any]:
        return self._call("DELETE", f"/mec/services/{name}")

    def set_primary(self, service: str, replica: str, ue: str | None = None,
                    drain_s: float | None = None) -> dict[str, Any]:
        """Re-steer; the answer carries ``reroute_ms`` and ``switches_touched``.

        ``drain_s``: how long established connections keep the old replica
        (None = the controller's default, 0 = switch everything at once).
        """
        body: dict[str, Any] = {"replica": replica}
        if ue is not None:
            body["ue"] = ue
        if drain_s is not None:
            body["drain_s"] = drain_s
        return self._call("PUT", f"/mec/services/{service}/primary", body)

    def steering(self) -> list[dict[str, Any]]:
        return self._call("GET", "/mec/steering")

    def replica_of(self, service: str, ue: str) -> str | None:
        """The replica ``ue`` is steered to for ``service`` (None: none)."""
        for row in self.steering():
            if row["service"] == service and row["ue"] == ue:
                return row["replica"]
        return None

    def connections(self, service: str, ue: str | None = None) -> list[dict[str, Any]]:
        """The connection ledger of ``service`` (one UE or all), measured by the switches.

        Entries ``{"ue", "replica", "service", "protocol", "ue_port", "learned_at",
        "switch"}``: ``replica`` (host name) answered the connection or flow from the UE's
        port ``ue_port``; ``learned_at`` (wall clock, s) is when the UE's access point
        ``switch`` (dpid) first saw that; oldest first. See controller.ledger.attribute.
        """
        params = {"ue": ue} if ue is not None else {}
        return self._call("GET", f"/mec/services/{service}/connections", **params)

    def drains(self) -> list[dict[str, Any]]:
        return self._call("GET", "/mec/drains")

    def locations(self) -> list[dict[str, Any]]:
        return self._call("GET", "/mec/locations")

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        return self._call("GET", "/mec/events", since=since)

    def policy(self) -> dict[str, Any]:
        return self._call("GET", "/mec/policy")

    def set_policy(self, service: str, sites: dict[str, str]) -> dict[str, Any]:
        return self._call("PUT", f"/mec/policy/{service}", {"sites": sites})
