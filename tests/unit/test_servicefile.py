"""Service files: the built-ins load, every bad entry is named with what is allowed."""

from __future__ import annotations

import socket
import socketserver
import threading
from pathlib import Path

import pytest

from mec.core import servicefile
from mec.core.check import ask
from mec.core.servicefile import Exchange, ServiceFileError

GOOD = """\
name: echo
image: echo:1.0
port: 7000
protocol: tcp
probe: {payload: "ping\\n", reply: echo}
health: {connect: true}
command: [/bin/busybox, tcpsvd, 0, 7000, cat]
env: {GREETING: hello, N: 3}
cpus: 0.5
memory_mb: 64
data: /srv/state
sla_ms: 20
"""


def test_builtins_are_the_papers_three_images_over_http():
    assert servicefile.builtin_names() == ["busybox", "debian", "httpd"]
    for name in servicefile.builtin_names():
        svc = servicefile.builtin(name)
        assert (svc.image, svc.port, svc.protocol, svc.names_instance) == (name, 8080, "http", True)
        assert svc.probe == Exchange("http", "GET", "/", 200)


def test_a_good_file_reads_whole(tmp_path: Path):
    path = tmp_path / "echo.yaml"
    path.write_text(GOOD)
    svc = servicefile.load(path, known_images={"echo:1.0"})
    assert svc.probe == Exchange("tcp", payload=b"ping\n", reply="echo")
    assert svc.health.connect and svc.health.protocol == "tcp"
    assert svc.command == ("/bin/busybox", "tcpsvd", "0", "7000", "cat")
    assert svc.env == {"GREETING": "hello", "N": "3"}
    assert (svc.cpus, svc.memory_mb, svc.data, svc.sla_ms, svc.transport) == \
        (0.5, 64, "/srv/state", 20, "tcp")
    assert svc.path == path


@pytest.mark.parametrize("patch, expected", [
    ({"protocol": "sctp"}, "protocol: 'sctp' is not allowed (allowed: http, tcp, udp)"),
    ({"port": 70000}, "port: 70000 is out of range (maximum 65535)"),
    ({"name": "Echo!"}, "name: 'Echo!' is not valid (lower-case letters"),
    ({"memory_mb": 2}, "memory_mb: 2 is out of range (minimum 6)"),
    ({"data": "relative/dir"}, "data: 'relative/dir' is not valid (an absolute path"),
    ({"probe": {"payload": "x", "method": "GET"}},
     "probe.method: not a key of a tcp probe (allowed: payload, payload_hex, reply, connect)"),
    ({"probe": {"reply": "echo"}}, "probe: a tcp probe needs a payload"),
    ({"probe": {"payload": "x", "reply": "maybe"}},
     "probe.reply: 'maybe' is not allowed (allowed: any, echo)"),
    ({"env": {"1BAD": "x"}}, "env: '1BAD' is not valid (letters, digits and '_'"),
    ({"colour": "red"}, "(top level): unknown key(s) colour (allowed: name, description, image"),
    ({"names_instance": True}, "names_instance: only for http services"),
])
def test_a_bad_entry_is_named_with_what_is_allowed(tmp_path: Path, patch, expected):
    import yaml

    data = {**yaml.safe_load(GOOD), **patch}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ServiceFileError) as err:
        servicefile.load(path)
    assert any(line.startswith(f"{path}: ") and expected in line for line in err.value.errors), \
        err.value.errors


def test_every_problem_is_reported_at_once(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nport: 0\nprotocol: udp\n")
    with pytest.raises(ServiceFileError) as err:
        servicefile.load(path)
    text = str(err.value)
    assert "'image' is a required property" in text and "port: 0 is out of range" in text


def test_an_image_not_published_is_refused_with_the_published_ones(tmp_path: Path):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD)
    with pytest.raises(ServiceFileError, match=r"image: 'echo:1.0' is not a published image "
                                               r"\(published: busybox:latest"):
        servicefile.load(path, known_images={"busybox:latest"})
    assert servicefile.load(path, known_images={"echo:1.0"}).image == "echo:1.0"
    path.write_text(GOOD.replace("echo:1.0", "echo"))
    assert servicefile.load(path, known_images={"echo:latest"}).image == "echo"


def test_unreadable_and_non_yaml_files_say_so(tmp_path: Path):
    with pytest.raises(ServiceFileError, match="cannot read"):
        servicefile.load(tmp_path / "missing.yaml")
    (tmp_path / "x.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ServiceFileError, match="not valid YAML"):
        servicefile.load(tmp_path / "x.yaml")
    (tmp_path / "y.yaml").write_text("- a list\n")
    with pytest.raises(ServiceFileError, match="must be a mapping"):
        servicefile.load(tmp_path / "y.yaml")


# ---------------------------------------------------------------------- exchanges
class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        data = self.request.recv(4096)
        self.request.sendall(data.upper() if self.server.shout else data)


@pytest.fixture
def tcp_echo():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.shout = False
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_tcp_exchanges_judge_echo_any_and_connect(tcp_echo):
    port = tcp_echo.server_address[1]
    assert ask("127.0.0.1", port, Exchange("tcp", payload=b"ping", reply="echo"), 2).ok
    assert ask("127.0.0.1", port, Exchange("tcp", connect=True), 2).ok
    tcp_echo.shout = True
    wrong = ask("127.0.0.1", port, Exchange("tcp", payload=b"ping", reply="echo"), 2)
    assert not wrong.ok and "does not answer" in wrong.error
    assert ask("127.0.0.1", port, Exchange("tcp", payload=b"ping", reply="any"), 2).ok


def test_udp_exchange_and_a_silent_port():
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))

    def serve():
        data, addr = srv.recvfrom(4096)
        srv.sendto(data, addr)

    threading.Thread(target=serve, daemon=True).start()
    port = srv.getsockname()[1]
    assert ask("127.0.0.1", port, Exchange("udp", payload=b"hi", reply="echo"), 2).ok
    silent = ask("127.0.0.1", port, Exchange("udp", payload=b"hi"), 0.2)
    assert not silent.ok and "timeout" in silent.error.lower()
    srv.close()


def test_http_exchange_checks_the_status():
    import http.server

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            code = 200 if self.path == "/" else 404
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"svc-c1\nhello\n")

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    good = ask("127.0.0.1", port, Exchange(), 2)
    assert good.ok and good.first_token == "svc-c1"
    bad = ask("127.0.0.1", port, Exchange(path="/missing"), 2)
    assert not bad.ok and bad.status == 404 and "expected 200" in bad.error
    srv.shutdown()
    srv.server_close()
