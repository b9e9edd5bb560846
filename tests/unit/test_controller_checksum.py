"""Unit tests (no root) for controller.checksum: a re-injected frame carries its full checksum."""

from __future__ import annotations

import pytest

from controller import checksum
from controller.compat import ethernet, packet

ipv4 = pytest.importorskip("os_ken.lib.packet.ipv4")
tcp = pytest.importorskip("os_ken.lib.packet.tcp")
udp = pytest.importorskip("os_ken.lib.packet.udp")


def frame(l4, payload: bytes = b"") -> bytes:
    """An Ethernet/IPv4 frame whose checksums os-ken's packet library computed."""
    p = packet.Packet()
    p.add_protocol(ethernet.ethernet(dst="02:00:00:00:00:02", src="02:00:00:00:00:01",
                                     ethertype=0x0800))
    proto = 6 if isinstance(l4, tcp.tcp) else 17
    p.add_protocol(ipv4.ipv4(src="10.0.2.1", dst="10.0.100.2", proto=proto))
    p.add_protocol(l4)
    if payload:
        p.add_protocol(payload)
    p.serialize()
    return bytes(p.data)


def with_checksum(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + 2:]


TCP_SUM, UDP_SUM = 14 + 20 + 16, 14 + 20 + 6


@pytest.mark.parametrize("payload", [b"", b"GET / HTTP/1.0\r\n\r\n", b"odd"])
def test_a_partial_tcp_checksum_is_completed(payload):
    good = frame(tcp.tcp(src_port=40105, dst_port=8080, seq=7, bits=tcp.TCP_SYN,
                         window_size=42340), payload)
    # what a veth with checksum offload leaves: a different (unfinished) value
    partial = with_checksum(good, TCP_SUM, b"\x7a\x31")
    assert partial != good
    assert checksum.complete(partial) == good
    assert checksum.complete(good) == good


def test_a_udp_checksum_is_completed_and_a_udp_datagram_without_one_is_left_alone():
    good = frame(udp.udp(src_port=5000, dst_port=8080), b"ping")
    assert checksum.complete(with_checksum(good, UDP_SUM, b"\x12\x34")) == good
    none = with_checksum(good, UDP_SUM, b"\0\0")
    assert checksum.complete(none) == none


def test_frames_it_cannot_or_must_not_touch_are_returned_as_they_are():
    syn = with_checksum(frame(tcp.tcp(src_port=1, dst_port=2, bits=tcp.TCP_SYN)), TCP_SUM,
                        b"\xab\xcd")
    arp_frame = syn[:12] + b"\x08\x06" + syn[14:]
    fragment = syn[:14 + 6] + b"\x20\x00" + syn[14 + 8:]  # more fragments
    truncated = syn[:14 + 20 + 10]
    for f in (arp_frame, fragment, truncated, b""):
        assert checksum.complete(f) == f
