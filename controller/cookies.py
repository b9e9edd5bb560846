"""Flow cookies: every flow the Network Manager installs says what it is for.

A 64-bit OpenFlow cookie is laid out as::

    63..48  magic 0x6D65 ("me"): marks the project's flows (cookie mask below)
    47..40  kind (FlowKind)
    39..28  host id   (the UE for steering flows, the destination for forwarding)
    27..16  service id
    15..4   replica id (host id of the replica)
     3..0   reserved (0)

Ids are small integers the app assigns to host and service names (0 = none),
published by the REST API so that ``mec flows`` can turn a cookie back into
(kind, UE, service, replica).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

MAGIC: int = 0x6D65
MAGIC_SHIFT: int = 48
#: Match all the project's flows: ``cookie=MAGIC<<48, cookie_mask=PROJECT_MASK``.
PROJECT_MASK: int = 0xFFFF << MAGIC_SHIFT
PROJECT_COOKIE: int = MAGIC << MAGIC_SHIFT
#: Mask that matches magic + kind + all ids exactly (one logical flow).
EXACT_MASK: int = 0xFFFFFFFFFFFFFFFF
#: Mask that matches magic + kind + host + service, any replica.
ANY_REPLICA_MASK: int = 0xFFFFFFFFFFFF0000
#: Mask that matches magic + kind + host: one host's flows of one kind.
HOST_MASK: int = 0xFFFFFFFFF0000000
MAX_ID: int = 0xFFF


class FlowKind(enum.IntEnum):
    """What a flow does; printed by ``mec flows``."""

    BASE = 1        # table-miss / ARP to controller / default drop
    ADMIT = 2       # table 0: a known host at its access-point port -> table 1
    LINK = 3        # table 0: traffic from an inter-switch link -> table 1
    FWD = 4         # table 1: forward by eth_dst towards a host
    STEER_FWD = 5   # table 1 at the UE's AP: VIP -> replica rewrite
    STEER_RET = 6   # table 1 at the UE's AP: replica -> VIP rewrite on the way back
    STEER_SYN = 7   # table 1 at the UE's AP during a drain: new connections (SYN) -> new replica
    STEER_PIN = 8   # table 1, learned from a SYN during a drain: one connection -> new replica
    LEDGER = 9      # table 2 at the UE's AP, learned from a replica's reply: who opened a connection
    PREP = 10       # tables 0, 1, 3 at a UE's candidate APs: its flows there before it attaches


@dataclass(frozen=True)
class Cookie:
    """A decoded cookie."""

    kind: FlowKind
    host: int = 0
    service: int = 0
    replica: int = 0

    def encode(self) -> int:
        return encode(self.kind, self.host, self.service, self.replica)


def _check_id(name: str, value: int) -> int:
    if not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise ValueError(f"cookie {name} id {value!r} out of range 0..{MAX_ID}")
    return value


def encode(kind: FlowKind, host: int = 0, service: int = 0, replica: int = 0) -> int:
    """Pack a flow's kind and ids into a 64-bit cookie."""
    kind = FlowKind(kind)
    return (
        (MAGIC << MAGIC_SHIFT)
        | (int(kind) << 40)
        | (_check_id("host", host) << 28)
        | (_check_id("service", service) << 16)
        | (_check_id("replica", replica) << 4)
    )


def is_ours(cookie: int) -> bool:
    """True when a cookie was made by :func:`encode`."""
    return (cookie >> MAGIC_SHIFT) & 0xFFFF == MAGIC


def decode(cookie: int) -> Cookie | None:
    """Unpack a cookie; None when it is not one of the project's."""
    if not is_ours(cookie):
        return None
    try:
        kind = FlowKind((cookie >> 40) & 0xFF)
    except ValueError:
        return None
    return Cookie(kind, (cookie >> 28) & MAX_ID, (cookie >> 16) & MAX_ID, (cookie >> 4) & MAX_ID)
