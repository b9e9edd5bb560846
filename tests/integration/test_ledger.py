"""Integration test of the connection ledger on real userspace OVS switches (root).

A UE opens TCP connections and sends UDP requests from chosen source ports to
service VIPs; the services are re-steered between two replicas (with and
without a drain) and the UE moves. The replica that really answered each port
is told by the replica's own server process (the HTTP body / the UDP echo names
it); the Network Manager's ledger must name the same replica for each port.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from controller.client import NetworkManagerError
from controller.ledger import attribute
from controller.process import ControllerProcess
from controller.testnet import HTTP_PORT, SiteNet
from mec.core import config

pytestmark = pytest.mark.integration

LINES = ["os-ken", pytest.param("ryu", marks=pytest.mark.ryu)]
PORTS = {"os-ken": (6681, 8211), "ryu": (6682, 8212)}
WEB_VIP, ECHO_VIP, ECHO_PORT = "10.77.200.1", "10.77.200.2", 9000

#: A UDP echo server: answers each datagram with its label (its host name) and the payload.
ECHO_SERVER = '''
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, addr = s.recvfrom(2048)
    s.sendto(sys.argv[3].encode() + b" " + data, addr)
'''

#: One HTTP request per source port: [port, t_send, t_reply or None, the label in the
#: body of the replica's server or None]. Closed with a reset (linger 0) so that the
#: port can be used again at once (no TIME_WAIT).
TCP_CLIENT = '''
import json, socket, struct, sys, time
out = []
for p in map(int, sys.argv[3].split(",")):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.bind(("", p))
    s.settimeout(3)
    t0 = time.time()
    try:
        s.connect((sys.argv[1], int(sys.argv[2])))
        s.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        body = data.split(b"\\r\\n\\r\\n", 1)[1].decode().split()
        out.append([p, t0, time.time(), body[1]])
    except OSError:
        out.append([p, t0, None, None])
    s.close()
print(json.dumps(out))
'''

#: One UDP request per source port: [port, t_send, t_reply or None, answering label or None].
UDP_CLIENT = '''
import json, socket, sys, time
out = []
for p in map(int, sys.argv[3].split(",")):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("", p))
    s.settimeout(2)
    t0 = time.time()
    s.sendto(b"ping %d" % p, (sys.argv[1], int(sys.argv[2])))
    try:
        data, _ = s.recvfrom(2048)
        out.append([p, t0, time.time(), data.split()[0].decode()])
    except socket.timeout:
        out.append([p, t0, None, None])
    s.close()
print(json.dumps(out))
'''


@pytest.fixture
def net(request, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (OVS, namespaces)")
    line = getattr(request, "param", "os-ken")
    ofp_port, rest_port = PORTS[line]
    ctl = ControllerProcess(line=line, ofp_port=ofp_port, rest_port=rest_port,
                            run_id="ledger", state_file=str(tmp_path / "state.json"))
    tn = SiteNet(n_sites=3, ofp_port=ofp_port, replica_sites={"ra": 2, "rb": 3})
    echo: list[subprocess.Popen] = []
    try:
        client = ctl.start()
        tn.build()
        ctl.wait_switches(tn.n_sites)
        client.push_topology(**tn.topology())
        client.add_service("web", WEB_VIP, HTTP_PORT, primary=config.name("ra"))
        client.add_service("echo", ECHO_VIP, ECHO_PORT, primary=config.name("ra"),
                           protocol="udp")
        for short in ("ra", "rb"):
            h = tn.net.get(config.name(short))
            echo.append(h.popen(["/usr/bin/python3", "-c", ECHO_SERVER, h.IP(), str(ECHO_PORT),
                                 h.name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        tn.wait_http()
        yield client, tn
    finally:
        for p in echo:
            p.kill()
            p.wait(5)
        try:
            tn.stop()
        finally:
            ctl.stop()


def _run(tn, code, vip, port, ports):
    """Run a client in the UE: [(port, t_send, t_reply, replica host that answered)]."""
    proc = tn.ue().popen(["/usr/bin/python3", "-c", code, vip, str(port),
                          ",".join(map(str, ports))], stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=30)
    rows = [tuple(r) for r in json.loads(out)]
    assert all(r[3] is not None for r in rows), rows  # every request answered
    return rows


def _tcp(tn, ports):
    return [(p, t0, t1, config.name(label))
            for p, t0, t1, label in _run(tn, TCP_CLIENT, WEB_VIP, HTTP_PORT, ports)]


def _udp(tn, ports):
    return _run(tn, UDP_CLIENT, ECHO_VIP, ECHO_PORT, ports)


def _check(client, service, ue, requests, want_switches):
    entries = client.connections(service, ue=ue)
    got = attribute(entries, [r[:3] for r in requests])
    assert got == [r[3] for r in requests], (requests, entries)
    assert {e["switch"] for e in entries} == want_switches
    assert {e["ue"] for e in entries} == {ue}
    return entries


@pytest.mark.parametrize("net", LINES, indirect=True)
def test_ledger_names_the_replica_that_answered_each_port(net):
    client, tn = net
    ue, ra, rb = config.name("ue1"), config.name("ra"), config.name("rb")
    ap1 = tn.dpid(1)
    reqs = _tcp(tn, [41001, 41002, 41003])
    r = client.set_primary("web", rb, ue=ue, drain_s=3)  # drain: SYNs -> rb, pinned
    assert r["changed"][0]["drain_s"] == 3
    reqs += _tcp(tn, [41004, 41005, 41006])
    client.set_primary("web", ra, ue=ue, drain_s=0)  # back, ends the drain
    reqs += _tcp(tn, [41007, 41004])  # 41004 again: rb answered it before, now ra
    assert [x[3] for x in reqs] == [ra] * 3 + [rb] * 3 + [ra] * 2
    entries = _check(client, "web", ue, reqs, {ap1})
    assert all(e["protocol"] == "tcp" for e in entries)
    assert sorted((e["ue_port"], e["replica"]) for e in entries) == sorted(
        {(p, rep) for p, _, _, rep in reqs})

    # UDP: a re-steer just switches, even when a drain is asked for
    ureqs = _udp(tn, [42001, 42002, 42003])
    r = client.set_primary("echo", rb, ue=ue, drain_s=3)
    assert r["changed"][0]["drain_s"] == 0.0 and client.drains() == []
    ureqs += _udp(tn, [42004, 42005, 42001])
    assert [x[3] for x in ureqs] == [ra] * 3 + [rb] * 3
    uentries = _check(client, "echo", ue, ureqs, {ap1})
    assert all(e["protocol"] == "udp" for e in uentries)
    assert not {e["ue_port"] for e in uentries} & {e["ue_port"] for e in entries}

    # bad requests: a 404 for an unknown service, a 400 for a replica given as the UE
    for service, who, status in (("nope", None, 404), ("web", rb, 400)):
        with pytest.raises(NetworkManagerError) as e:
            client.connections(service, ue=who)
        assert e.value.status == status

    # a move: the old AP keeps its entries, the new AP records the new connections
    tn.move(3)
    deadline = time.monotonic() + 10
    while client.replica_of("web", ue) and \
            next(h for h in client.locations() if h["name"] == ue)["dpid"] != tn.dpid(3):
        assert time.monotonic() < deadline, "the UE's move was not seen"
        tn.ue().cmd(["curl", "-s", "-m", "1", f"http://{WEB_VIP}:{HTTP_PORT}/"])
    reqs += _tcp(tn, [41008])
    _check(client, "web", ue, reqs, {ap1, tn.dpid(3)})
    ureqs += _udp(tn, [42006])
    _check(client, "echo", ue, ureqs, {ap1, tn.dpid(3)})
