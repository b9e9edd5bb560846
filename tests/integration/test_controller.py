"""Integration tests of the Network Manager on real userspace OVS switches (root).

Parametrized over both controller lines; the ryu variant carries the ``ryu`` marker.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time

import pytest

from controller import cookies
from controller.client import NetworkManagerError
from controller.cookies import FlowKind
from controller.model import parse_service
from controller.process import ControllerProcess
from controller.state import NetworkState
from controller.testnet import SiteNet, slow_body
from mec.core import config

pytestmark = pytest.mark.integration

VIP = "10.77.200.1"
URL = f"http://{VIP}:8080/"
LINES = ["os-ken", pytest.param("ryu", marks=pytest.mark.ryu)]
PORTS = {"os-ken": (6663, 8193), "ryu": (6664, 8194)}


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (OVS, namespaces)")


@pytest.fixture
def ctl_net(request, tmp_path):
    """(controller, client, testnet) on a 3-site line with service 'web' -> replica ra."""
    _need_root()
    line = request.param
    ofp, rest = PORTS[line]
    ring = "ring" in request.function.__name__  # ring tests get the 6-site ring
    ctl = ControllerProcess(line=line, ofp_port=ofp, rest_port=rest, run_id="this-run",
                            state_file=str(tmp_path / "state.json"))
    tn = SiteNet(n_sites=6 if ring else 3, ring=ring, ofp_port=ofp,
                 replica_sites={"ra": 4, "rb": 3} if ring else {"ra": 2, "rb": 3})
    try:
        client = ctl.start()
        tn.build()
        ctl.wait_switches(tn.n_sites)
        client.push_topology(**tn.topology())
        client.add_service("web", VIP, 8080, primary=config.name("ra"))
        tn.wait_http()
        yield ctl, client, tn
    finally:
        try:
            tn.stop()
        finally:
            ctl.stop()


def _name(short: str) -> str:
    return config.name(short)


def _our_flows(client, dpid: int, kinds: set[FlowKind], host_id: int) -> list[dict]:
    out = []
    for f in client.flows(dpid):
        c = cookies.decode(f["cookie"])
        if c and c.kind in kinds and c.host == host_id:
            out.append(f)
    return out


@pytest.mark.parametrize("ctl_net", LINES, indirect=True)
def test_ue_reaches_vip_and_is_resteered(ctl_net):
    ctl, client, tn = ctl_net
    assert tn.fetch(URL) == "replica ra"
    r = client.set_primary("web", _name("rb"), ue=_name("ue1"))
    assert r["switches_touched"] == 1 and r["changed"][0]["to"] == _name("rb")
    assert 0 < r["reroute_ms"] < 100
    assert tn.fetch(URL) == "replica rb"
    # the UE only ever sees the VIP: its ARP entry for the VIP is the virtual MAC
    arp = tn.ue().cmd(["ip", "neigh", "show", VIP])
    assert "02:00:0a:4d:c8:01" in arp
    r = client.set_primary("web", _name("ra"))  # whole service back
    assert tn.fetch(URL) == "replica ra"
    steering = {row["ue"]: row["replica"] for row in client.steering()}
    assert steering == {_name("ue1"): _name("ra")}


@pytest.mark.parametrize("ctl_net", LINES, indirect=True)
def test_move_gives_location_event_policy_resteer_and_no_stale_flows(ctl_net):
    ctl, client, tn = ctl_net
    assert tn.fetch(URL) == "replica ra"
    client.set_policy("web", {tn.sw_name(3): _name("rb")})
    since = client.events()[-1]["seq"]
    topo = client.topology()
    ue_id = next(h["id"] for h in topo["hosts"] if h["name"] == _name("ue1"))
    assert _our_flows(client, tn.dpid(1), {FlowKind.ADMIT, FlowKind.STEER_FWD}, ue_id)
    tn.move(3)
    assert tn.fetch(URL) == "replica rb"  # policy re-steered on the location event
    evs = [e for e in client.events(since) if e["type"] == "location"]
    assert len(evs) == 1
    ev = evs[0]
    assert ev["host"] == _name("ue1") and ev["new"]["switch"] == tn.sw_name(3)
    assert ev["old"]["switch"] == tn.sw_name(1)
    assert ev["resteered"] == {"web": _name("rb")}
    assert ev["install_ms"] is not None and ev["install_ms"] < 100
    loc = {row["name"]: row for row in client.locations()}
    assert loc[_name("ue1")]["switch"] == tn.sw_name(3)
    stale = _our_flows(client, tn.dpid(1), {FlowKind.ADMIT, FlowKind.STEER_FWD,
                                            FlowKind.STEER_RET}, ue_id)
    assert stale == []


@pytest.mark.parametrize("ctl_net", LINES, indirect=True)
def test_controller_restart_keeps_steering(ctl_net):
    ctl, client, tn = ctl_net
    client.set_primary("web", _name("rb"), ue=_name("ue1"), drain_s=0)
    assert tn.fetch(URL) == "replica rb"
    ap = tn.dpid(1)
    before = sorted((f["cookie"], str(f["match"])) for f in client.flows(ap))
    # stopped during a drain (back to ra and again to rb): the final flows come back
    client.set_primary("web", _name("ra"), ue=_name("ue1"), drain_s=5)
    client.set_primary("web", _name("rb"), ue=_name("ue1"), drain_s=5)
    assert client.drains()
    ctl.stop()
    client = ctl.start(switches=tn.n_sites)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # re-install is done when the AP holds the same flows
        after = sorted((f["cookie"], str(f["match"])) for f in client.flows(ap))
        if after == before:
            break
        time.sleep(0.1)
    assert after == before
    assert tn.fetch(URL) == "replica rb"
    # switch reconnect: drop the controller connection of the AP, it comes back re-synced
    subprocess.run(["ovs-vsctl", "del-controller", tn.sw_name(1)], check=True)
    subprocess.run(["ovs-vsctl", "set-controller", tn.sw_name(1),
                    f"tcp:127.0.0.1:{ctl.ofp_port}"], check=True)
    client.wait_ready(timeout=10, switches=tn.n_sites)
    assert tn.fetch(URL) == "replica rb"


@pytest.mark.parametrize("ctl_net", LINES, indirect=True)
def test_ring_forwards_without_loops(ctl_net):
    ctl, client, tn = ctl_net
    assert tn.fetch(URL) == "replica ra"  # ra sits opposite the UE on the 6-ring
    ue = tn.ue()
    out = ue.cmd(["busybox", "ping", "-c", "3", "-W", "1", "10.77.1.2"])
    assert " 0% packet loss" in out, out
    # a broadcast storm would show up as huge counters on inter-switch links
    total = 0
    for i in range(1, tn.n_sites + 1):
        for f in client.flows(tn.dpid(i)):
            c = cookies.decode(f["cookie"])
            if c and c.kind == FlowKind.LINK:
                total += f["packet_count"]
    assert total < 500


@pytest.mark.parametrize("ctl_net", LINES, indirect=True)
def test_rest_rejects_bad_input(ctl_net):
    ctl, client, tn = ctl_net
    import requests

    base = ctl.url
    cases = [
        ("PUT", "/mec/topology", b"{not json", 400),
        ("PUT", "/mec/topology", b'{"switches": [{"name": "x", "dpid": "zz"}]}', 400),
        ("PUT", "/mec/topology", b'{"hosts": [{"name": "h", "ip": "1.2.3.4", "mac": "02:00:00:00:00:09", "dpid": 99, "port": 1}]}', 400),
        ("POST", "/mec/services", b'{"name": "s", "vip": "300.1.1.1", "port": 80}', 400),
        ("POST", "/mec/services", b'{"name": "s", "vip": "10.9.9.9", "port": "80"}', 400),
        ("PUT", "/mec/services/nope/primary", b'{"replica": "mcra"}', 404),
        ("PUT", "/mec/services/web/primary", b'{"replica": "ghost"}', 404),
        ("PUT", "/mec/services/web/primary", b'{"replica": 5}', 400),
        ("PUT", "/mec/services/web/primary", b'[]', 400),
        ("GET", "/mec/events?since=abc", b"", 400),
        ("GET", "/stats/flow/12345", b"", 404),
        ("GET", "/nowhere", b"", 404),
        ("DELETE", "/mec/topology", b"", 405),
    ]
    for method, path, body, status in cases:
        r = requests.request(method, base + path, data=body, timeout=5)
        assert r.status_code == status, (method, path, r.text)
        assert isinstance(r.json().get("error"), str) and r.json()["error"]
    with pytest.raises(NetworkManagerError) as e:
        client.set_primary("web", _name("ue1"))  # a UE is no replica
    assert e.value.status == 400
    assert tn.fetch(URL) == "replica ra"  # still alive and steering


def _slow_fetch(tn):
    """Start a slow GET /slow from the UE; returns the curl process (stdout = body)."""
    proc = tn.ue().popen(["curl", "-s", "-m", "8", URL + "slow"], stdout=subprocess.PIPE,
                         text=True)
    deadline = time.monotonic() + 3
    while f"{VIP}:8080" not in tn.ue().cmd(["ss", "-Htn", "state", "established"]):
        if time.monotonic() > deadline:  # the response is now being sent by ra
            proc.kill()
            raise AssertionError("slow request never connected")
        time.sleep(0.02)
    time.sleep(0.2)
    return proc


def _steer_flows(client, tn, ue_id):
    kinds = {FlowKind.STEER_FWD, FlowKind.STEER_RET, FlowKind.STEER_SYN, FlowKind.STEER_PIN}
    return [(cookies.decode(f["cookie"]), f) for f in _our_flows(client, tn.dpid(1), kinds, ue_id)]


@pytest.mark.parametrize("ctl_net", LINES, indirect=True)
def test_resteer_drains_established_connections(ctl_net):
    ctl, client, tn = ctl_net
    ids = {h["name"]: h["id"] for h in client.topology()["hosts"]}
    ue_id, ra, rb = ids[_name("ue1")], ids[_name("ra")], ids[_name("rb")]
    slow = _slow_fetch(tn)  # a response from ra in flight
    r = client.set_primary("web", _name("rb"), ue=_name("ue1"), drain_s=2.5)
    assert r["changed"][0]["drain_s"] == 2.5 and 0 < r["reroute_ms"] < 100
    assert tn.fetch(URL) == "replica rb"  # a new connection goes to rb at once
    flows = _steer_flows(client, tn, ue_id)
    syn = sorted(f["match"]["tcp_flags"] for c, f in flows
                 if c.kind == FlowKind.STEER_SYN and c.replica == rb)
    assert syn == ["18/18", "2/18"]  # UE's SYN (ACK clear) -> rb; rb's SYN-ACK learns a pin
    assert any(c.kind == FlowKind.STEER_PIN and c.replica == rb for c, f in flows)
    assert {c.replica for c, f in flows if c.kind == FlowKind.STEER_RET} == {ra, rb}
    assert [d["ue"] for d in client.drains()] == [_name("ue1")]
    body, _ = slow.communicate(timeout=10)
    assert body == slow_body("ra")  # the established connection finished on ra
    deadline = time.monotonic() + 5
    while client.drains() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.drains() == []
    time.sleep(0.1)  # the drain end's flow mods are confirmed by a Barrier right after
    flows = _steer_flows(client, tn, ue_id)
    assert sorted((c.kind, c.replica) for c, f in flows) == [
        (FlowKind.STEER_FWD, rb), (FlowKind.STEER_RET, rb)]
    ev = [e for e in client.events() if e["type"] == "drain_end"]
    assert ev and ev[-1]["released"] == [_name("ra")]
    assert tn.fetch(URL) == "replica rb"


@pytest.mark.parametrize("ctl_net", LINES, indirect=True)
def test_resteer_without_drain_switches_all_packets(ctl_net):
    ctl, client, tn = ctl_net
    ids = {h["name"]: h["id"] for h in client.topology()["hosts"]}
    ue_id, rb = ids[_name("ue1")], ids[_name("rb")]
    slow = _slow_fetch(tn)
    client.set_primary("web", _name("rb"), ue=_name("ue1"), drain_s=0)
    flows = _steer_flows(client, tn, ue_id)
    assert sorted((c.kind, c.replica) for c, f in flows) == [
        (FlowKind.STEER_FWD, rb), (FlowKind.STEER_RET, rb)]
    assert client.drains() == []
    body, _ = slow.communicate(timeout=10)
    assert body != slow_body("ra")  # today's behaviour: the connection to ra is cut
    assert tn.fetch(URL) == "replica rb"


@pytest.mark.parametrize("ctl_net", LINES, indirect=True)
def test_drain_ends_consistently_on_resteer_move_and_reconnect(ctl_net):
    ctl, client, tn = ctl_net
    ids = {h["name"]: h["id"] for h in client.topology()["hosts"]}
    ue_id, ra, rb = ids[_name("ue1")], ids[_name("ra")], ids[_name("rb")]
    # a re-steer back during a drain, then one without drain: final flows at once
    client.set_primary("web", _name("rb"), ue=_name("ue1"), drain_s=5)
    client.set_primary("web", _name("ra"), ue=_name("ue1"), drain_s=5)
    assert {c.replica for c, f in _steer_flows(client, tn, ue_id)  # the UE's SYNs -> ra
            if c.kind == FlowKind.STEER_SYN and f["match"]["tcp_flags"] == "2/18"} == {ra}
    client.set_primary("web", _name("rb"), ue=_name("ue1"), drain_s=0)
    assert sorted((c.kind, c.replica) for c, f in _steer_flows(client, tn, ue_id)) == [
        (FlowKind.STEER_FWD, rb), (FlowKind.STEER_RET, rb)]
    assert client.drains() == []
    # a switch reconnect during a drain re-installs the final flows
    client.set_primary("web", _name("ra"), ue=_name("ue1"), drain_s=5)
    subprocess.run(["ovs-vsctl", "del-controller", tn.sw_name(1)], check=True)
    subprocess.run(["ovs-vsctl", "set-controller", tn.sw_name(1),
                    f"tcp:127.0.0.1:{ctl.ofp_port}"], check=True)
    client.wait_ready(timeout=10, switches=tn.n_sites)
    deadline = time.monotonic() + 15
    flows = None
    while time.monotonic() < deadline:
        try:  # the old connection may still be seen as up for a moment
            flows = sorted((c.kind, c.replica) for c, f in _steer_flows(client, tn, ue_id))
        except NetworkManagerError:
            continue
        if flows == [(FlowKind.STEER_FWD, ra), (FlowKind.STEER_RET, ra)]:
            break
        time.sleep(0.1)
    assert flows == [(FlowKind.STEER_FWD, ra), (FlowKind.STEER_RET, ra)]
    assert client.drains() == [] and tn.fetch(URL) == "replica ra"
    # a move during a drain: nothing left at the old AP, the new AP steers to the current one
    client.set_primary("web", _name("rb"), ue=_name("ue1"), drain_s=5)
    tn.move(3)
    assert tn.fetch(URL) == "replica rb"
    assert _steer_flows(client, tn, ue_id) == []  # old AP
    at_new = [cookies.decode(f["cookie"]) for f in client.flows(tn.dpid(3))]
    assert sorted((c.kind, c.replica) for c in at_new if c and c.host == ue_id
                  and c.kind in (FlowKind.STEER_FWD, FlowKind.STEER_RET, FlowKind.STEER_SYN,
                                 FlowKind.STEER_PIN)) == [
        (FlowKind.STEER_FWD, rb), (FlowKind.STEER_RET, rb)]
    assert client.drains() == []


@pytest.mark.parametrize("line", LINES)
def test_state_of_another_run_is_not_loaded_but_a_restart_reloads(line, tmp_path):
    _need_root()
    ofp, rest = PORTS[line]
    path = tmp_path / "nm-state.json"
    old = NetworkState(run_id="previous-run")  # what a crashed run left behind
    old.add_service(parse_service({"name": "stale", "vip": "10.77.250.1", "port": 8080}))
    old.save(path)
    ctl = ControllerProcess(line=line, ofp_port=ofp, rest_port=rest, run_id="this-run",
                            state_file=str(path))
    try:
        client = ctl.start()
        assert client.services() == []  # nothing of the previous run
        client.add_service("web", VIP, 8080)
        deadline = time.monotonic() + 5  # the state is saved in the background
        while json.loads(path.read_text()).get("run") != "this-run":
            assert time.monotonic() < deadline, "state never saved for this run"
            time.sleep(0.05)
        ctl.stop()
        client = ctl.start()  # a restart within the run reloads its state
        assert [s["name"] for s in client.services()] == ["web"]
    finally:
        ctl.stop()
        ctl.remove_state()
    assert not path.exists()


class OpenFlowTap:
    """A TCP relay between one switch and the controller that can go deaf.

    ``hold()`` drops what the switch sends on the connections open at that moment
    (its Barrier replies among it) while the controller's messages still reach the
    switch: a switch that applies flow mods but never confirms them. Connections
    made after ``hold()`` (the switch reconnecting) are relayed in full.
    """

    def __init__(self, ctl_port: int) -> None:
        self.ctl_port = ctl_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._gen = 0
        self._held_upto = -1
        self.dropped = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self) -> None:
        self._held_upto = self._gen

    def close(self) -> None:
        self.server.close()

    def _accept(self) -> None:
        while True:
            try:
                sw, _ = self.server.accept()
            except OSError:
                return
            self._gen += 1
            ctl = socket.create_connection(("127.0.0.1", self.ctl_port))
            gen = self._gen
            threading.Thread(target=self._pipe, args=(sw, ctl, gen), daemon=True).start()
            threading.Thread(target=self._pipe, args=(ctl, sw, None), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, gen: int | None) -> None:
        try:
            while data := src.recv(65536):
                if gen is not None and gen <= self._held_upto:
                    self.dropped += len(data)
                    continue
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def _connections(client) -> int:
    return len([e for e in client.events() if e["type"] == "switch_connected"])


@pytest.mark.parametrize("ctl_net", LINES, indirect=True)
def test_unconfirmed_resteer_is_rolled_back_in_state_and_flows(ctl_net):
    ctl, client, tn = ctl_net
    ids = {h["name"]: h["id"] for h in client.topology()["hosts"]}
    ue_id, ra = ids[_name("ue1")], ids[_name("ra")]
    tap = OpenFlowTap(ctl.ofp_port)
    try:
        n = _connections(client)
        subprocess.run(["ovs-vsctl", "set-controller", tn.sw_name(1),
                        f"tcp:127.0.0.1:{tap.port}"], check=True, timeout=10)
        deadline = time.monotonic() + 15
        while _connections(client) == n or len(client.health()["switches_connected"]) < 3:
            assert time.monotonic() < deadline, "the AP never connected through the tap"
            time.sleep(0.1)
        assert tn.fetch(URL) == "replica ra"
        n = _connections(client)
        tap.hold()  # s1 applies what it gets but confirms nothing
        t0 = time.monotonic()
        with pytest.raises(NetworkManagerError) as e:
            client.set_primary("web", _name("rb"), ue=_name("ue1"), drain_s=0)
        assert e.value.status == 504 and "rolled back" in e.value.message
        assert 4 < time.monotonic() - t0 < 8 and tap.dropped > 0
        # the state is as before the request ...
        assert {r["ue"]: r["replica"] for r in client.steering()} == {_name("ue1"): _name("ra")}
        failed = [ev for ev in client.events() if ev["type"] == "reroute_failed"]
        assert failed and failed[-1]["rolled_back"] and failed[-1]["silent"] == [tn.sw_name(1)]
        # ... and so is the switch, which got the re-steer's flow mods: it was disconnected,
        # reconnects and is re-synced from the state
        deadline = time.monotonic() + 20
        while _connections(client) == n:
            assert time.monotonic() < deadline, "the silent AP never reconnected"
            time.sleep(0.1)
        deadline = time.monotonic() + 10
        while True:
            try:
                flows = sorted((c.kind, c.replica) for c, f in _steer_flows(client, tn, ue_id))
            except NetworkManagerError:
                flows = None
            if flows == [(FlowKind.STEER_FWD, ra), (FlowKind.STEER_RET, ra)] \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert flows == [(FlowKind.STEER_FWD, ra), (FlowKind.STEER_RET, ra)]
        assert tn.fetch(URL) == "replica ra"
        # and the next re-steer works as usual
        assert client.set_primary("web", _name("rb"), ue=_name("ue1"), drain_s=0)["changed"]
        assert tn.fetch(URL) == "replica rb"
    finally:
        subprocess.run(["ovs-vsctl", "set-controller", tn.sw_name(1),
                        f"tcp:127.0.0.1:{ctl.ofp_port}"], check=False, timeout=10)
        tap.close()


#: A client in the UE's namespace: new connections to the VIP back to back for ``secs``
#: seconds, one JSON line each: when it started connecting, its source port, the body.
_OPENER = r'''
import json, socket, sys, time
vip, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.time() + secs
while time.time() < end:
    t = time.time()
    body, lport, opened = "", None, None
    try:
        with socket.create_connection((vip, port), timeout=2) as s:
            opened = time.time()
            lport = s.getsockname()[1]
            s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        body = data.split(b"\r\n\r\n", 1)[-1].decode().strip()
    except OSError as e:
        body = "error " + type(e).__name__
    print(json.dumps({"t": t, "opened": opened, "port": lport, "body": body}), flush=True)
'''


@pytest.mark.parametrize("ctl_net", LINES, indirect=True)
def test_new_connections_right_after_resteers_inside_a_drain_reach_the_target(ctl_net):
    """Every connection opened after a re-steer was confirmed (its reply came) is answered
    by that re-steer's target, also in the first milliseconds and while re-steers follow
    each other inside one drain. OVS confirms a Barrier when its flow tables hold the
    change; the datapath's cached flows follow later (revalidation), so a connection
    opening must never be forwarded by a cached flow that other connections made.

    A connection counts for a re-steer when its opening lies between that confirmation and
    the next request: from before its connect call to the connect's return (the SYN and
    the SYN-ACK passed the access point in between). One still opening when the next
    request went out (its SYN may have left after it, by milliseconds on a loaded machine)
    is not checked. A connection on a source port that an earlier connection of this run
    used (the kernel hands out a freed port again now and then) may still meet that
    connection's cached flows in that window (docs/flows.md, drain): those are counted
    apart, not checked."""
    ctl, client, tn = ctl_net
    ue, k = _name("ue1"), 24
    opener = tn.ue().popen(["/usr/bin/python3", "-c", _OPENER, VIP, "8080", "6"],
                           stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # connections to ra flowing
        steers = []  # [confirmed at, next request at, target]
        for i in range(k):
            short = "rb" if i % 2 == 0 else "ra"
            t_req = time.time()
            client.set_primary("web", _name(short), ue=ue, drain_s=5)
            if steers:
                steers[-1][1] = t_req
            steers.append([time.time(), None, f"replica {short}"])
            time.sleep(0.15)
        steers[-1][1] = time.time()
        out, _ = opener.communicate(timeout=15)
    finally:
        if opener.poll() is None:
            opener.kill()
    conns = [json.loads(line) for line in out.splitlines()]
    assert client.drains(), "the re-steers were not all inside one drain"
    used: set[int] = set()
    for c in conns:
        c["reused"] = c["port"] in used
        used.add(c["port"])
    checked, early, straddling, reused, wrong, timeouts = 0, 0, 0, [], [], []
    for t_done, t_next, want in steers:
        for c in conns:
            if not t_done <= c["t"] < t_next:  # connect called after the confirmation
                continue
            if c["opened"] is not None and c["opened"] >= t_next:
                straddling += 1  # still opening when the next re-steer was requested
                continue
            if c["reused"]:
                reused.append(c["body"] == want)
                continue
            checked += 1
            early += c["t"] < t_done + 0.02
            if c["body"] == "error TimeoutError":
                timeouts.append(c)
            elif c["body"] != want:  # another replica, or reset by one
                wrong.append((want, round(1000 * (c["t"] - t_done), 1), c))
    # enough connections were checked, some in the first 20 ms after a confirmation
    assert checked >= 2 * k and early >= k // 3, (checked, early, len(conns))
    assert wrong == [], (f"{len(wrong)} of {checked} new connections (and {reused.count(False)} "
                         f"of {len(reused)} on a reused port; {straddling} opening across a "
                         f"request not checked) [target, ms after confirmation, connection]: "
                         f"{wrong[:5]}")
    # no answer within 2 s is another failure (seen when the shared ovs-vswitchd stalls for
    # a second or more on a loaded machine: 'Unreasonably long ... poll interval'): rare
    assert len(timeouts) <= checked // 200, f"{len(timeouts)} of {checked} timed out: {timeouts}"
