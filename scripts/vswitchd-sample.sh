#!/bin/bash
# What ovs-vswitchd does while networks idle, every 5 s (COUNT windows, default 6):
# its CPU (utime+stime of all its threads, % of one core), bridges (and how many are
# not PREFIX's: MEC_PREFIX, default "mec"), ports, main-loop wake-ups per second
# (coverage poll_create_node / ports: each wake-up polls every port), packets received
# per second by all ports, OpenFlow messages received, port stats queries, netlink
# link changes and bridge reconfigurations per second (ovs-appctl coverage/show,
# 5-second rates). A window with others > 0 or rx > 0 is not quiet.
# Usage: sudo scripts/vswitchd-sample.sh [COUNT]
set -euo pipefail
PID=$(cat /var/run/openvswitch/ovs-vswitchd.pid)
PREFIX=${MEC_PREFIX:-mec}
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
for _ in $(seq "${1:-6}"); do
  c0=$(ticks); sleep 5; c1=$(ticks)
  bridges=$(ovs-vsctl --timeout=10 list-br | wc -l)
  others=$(ovs-vsctl --timeout=10 list-br | grep -vc "^${PREFIX}-" || true)
  ports=$(ovs-vsctl --timeout=10 --columns=_uuid list Interface | grep -c _uuid)
  ovs-appctl --timeout=10 coverage/show | awk -v c0="$c0" -v c1="$c1" -v hz="$(getconf CLK_TCK)" \
      -v nb="$bridges" -v o="$others" -v np="$ports" '
    { r[$1] = $2 + 0 }
    END { printf "cpu%%=%.1f bridges=%d(others %d) ports=%d wakeups/s=%.0f rx/s=%.0f of_rx/s=%.1f stats/s=%.1f nln/s=%.1f reconf/s=%.1f\n",
          100 * (c1 - c0) / hz / 5, nb, o, np, r["poll_create_node"] / np, r["netdev_received"],
          r["ofproto_recv_openflow"], r["netdev_get_stats"], r["nln_changed"], r["bridge_reconfigure"] }'
done
