"""Complete the TCP/UDP checksum of a frame the Network Manager sends back into a switch.

A packet a host sends over a veth leaves with its transport checksum unfinished
(checksum offload: the field holds only the pseudo-header's sum, the metadata says
"to be completed"). Open vSwitch's userspace datapath carries that metadata along
its own path, but a packet it hands to the controller (packet-in) arrives as bare
bytes, and the same bytes sent back (packet-out) reach the receiver with a wrong
checksum: it drops them. So the app re-injects a held packet only after
:func:`complete` has written its full checksum. Pure functions, no I/O.
"""

from __future__ import annotations

ETH_HEADER = 14
ETH_IPV4 = b"\x08\x00"
#: Offset of the checksum field in the transport header, per IP protocol.
CHECKSUM_AT = {6: 16, 17: 6}  # TCP, UDP


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def complete(frame: bytes) -> bytes:
    """FRAME (Ethernet) with the full TCP or UDP checksum of its IPv4 packet written in.

    Anything else is returned as it is: not IPv4, another protocol, a fragment (its
    checksum covers the whole datagram), a truncated frame, or UDP sent without a
    checksum (field 0). A frame whose checksum was already right is returned unchanged.
    """
    if len(frame) < ETH_HEADER + 20 or frame[12:14] != ETH_IPV4:
        return frame
    ip = ETH_HEADER
    ihl = (frame[ip] & 0x0F) * 4
    proto = frame[ip + 9]
    at = CHECKSUM_AT.get(proto)
    if at is None or ihl < 20 or int.from_bytes(frame[ip + 6:ip + 8], "big") & 0x3FFF:
        return frame
    start, end = ip + ihl, ip + int.from_bytes(frame[ip + 2:ip + 4], "big")
    if end > len(frame) or end - start < at + 2:
        return frame
    if proto == 17 and frame[start + at:start + at + 2] == b"\0\0":
        return frame  # UDP without a checksum
    segment = bytearray(frame[start:end])
    segment[at:at + 2] = b"\0\0"
    pseudo = frame[ip + 12:ip + 20] + bytes((0, proto)) + (end - start).to_bytes(2, "big")
    csum = ~_sum16(pseudo + bytes(segment)) & 0xFFFF
    if proto == 17 and csum == 0:
        csum = 0xFFFF  # UDP sends a computed 0 as all ones
    return frame[:start + at] + csum.to_bytes(2, "big") + frame[start + at + 2:]
