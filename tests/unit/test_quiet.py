"""topologies.quiet never touches the machine's own namespace (its settings are everyone's)."""

import os

from topologies.quiet import disable_ipv6_namespaces, disable_ipv6_ports


def test_the_callers_own_namespace_is_skipped():
    before = open("/proc/sys/net/ipv6/conf/all/disable_ipv6").read()
    assert disable_ipv6_namespaces([f"/proc/{os.getpid()}/ns/net"]) == 0
    assert open("/proc/sys/net/ipv6/conf/all/disable_ipv6").read() == before


def test_ports_that_do_not_exist_are_not_counted():
    assert disable_ipv6_ports(["no-such-port-x"]) == 0
