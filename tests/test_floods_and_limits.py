# SPDX-License-Identifier: GPL-2.0
"""SYN floods and listen() backlogs: HSP must hold the same limits as TCP.

Syncookies are off in the server namespace (HSP has none), so both
protocols answer a flood the same way: the SYN queue fills to its limit and
further SYNs are dropped.
"""

import socket

import pytest

from lib import hsp
from lib.cmd import run, wait_until
from lib.hsp_wire import drop_unmarked_resets, raw_sender, segment, tcp_syn
from lib.kernel import KernelLog, ss_listener
from lib.netns import NetNSPair, socket_in
from lib.qwatch import QwatchStream

FLOOD_MARK = 43
FLOOD_SYNS = 2000


def make_socket(proto, ns):
    if proto == "hsp":
        return hsp.hsp_socket(ns)
    return socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)


def accept_max(proto, ns, port):
    if proto == "hsp":
        return hsp.proc_listener(ns, port)["accept_max"]
    return ss_listener(ns, port)[1]


@pytest.mark.parametrize("backlog", [0, -1, 1, 5, 1 << 20])
def test_listen_backlog__clamped_as_for_tcp(netns_pair, hsp_module, backlog):
    limits = {}
    for proto in ("tcp", "hsp"):
        listener = make_socket(proto, netns_pair.server)
        listener.bind((netns_pair.server_addr, 0))
        listener.listen(backlog)
        limits[proto] = accept_max(proto, netns_pair.server, listener.getsockname()[1])
        listener.close()
    assert limits["hsp"] == limits["tcp"]


def flood(proto, pair, port):
    """FLOOD_SYNS SYNs from distinct source ports of the client address."""
    if proto == "hsp":
        sender = raw_sender(pair.client, hsp.IPPROTO_HSP, FLOOD_MARK)
        build = lambda sport: segment(pair.client_addr, pair.server_addr, sport, port, seq=sport)
    else:
        sender = raw_sender(pair.client, socket.IPPROTO_TCP, FLOOD_MARK)
        build = lambda sport: tcp_syn(pair.client_addr, pair.server_addr, sport, port, sport)
    for sport in range(10000, 10000 + FLOOD_SYNS):
        sender.sendto(build(sport), (pair.server_addr, 0))
    sender.close()


def syn_flood_outcome(proto, qwatch, backlog):
    with NetNSPair() as pair:
        # Two SYN-ACK retries: the flood's requests expire after 1 + 2 + 4 s,
        # well after the whole flood is in even under emulation.
        run(["sysctl", "-qw", "net.ipv4.tcp_syncookies=0",
             "net.ipv4.tcp_synack_retries=2"], ns=pair.server)
        drop_unmarked_resets(pair.client, FLOOD_MARK)
        log = KernelLog()
        listener = make_socket(proto, pair.server)
        listener.bind((pair.server_addr, 0))
        listener.listen(backlog)
        port = listener.getsockname()[1]

        flood(proto, pair, port)
        events = lambda: qwatch.select(netns=pair.server.inode, lport=port)
        syn_events = lambda: [e for e in events() if e["event"] in ("syn_recv", "syn_drop")]
        qwatch.wait_for(lambda q: len(syn_events()) == FLOOD_SYNS, timeout=120,
                        what=f"{proto}: one syn_recv or syn_drop per SYN")
        peak = max(e["syn_queue"] for e in events())
        queued = len([e for e in syn_events() if e["event"] == "syn_recv"])

        # Once the flood's requests expire, a real client retrying its SYN
        # gets through.
        client = make_socket(proto, pair.client)
        client.settimeout(60)
        client.connect((pair.server_addr, port))
        child, _ = listener.accept()
        warnings = [line for line in log.read_new() if "SYN flooding" in line]
        log.close()
        for sock in (child, client, listener):
            sock.close()
        return {"peak_syn_queue": peak, "queued": queued, "flood_warnings": len(warnings)}


def test_syn_flood__the_syn_queue_holds_its_limit_as_tcp_does(hsp_module):
    backlog = 64
    with QwatchStream() as qwatch:
        outcome = {proto: syn_flood_outcome(proto, qwatch, backlog) for proto in ("tcp", "hsp")}
    assert outcome["hsp"] == outcome["tcp"], outcome
    # The SYN queue takes backlog + 1 requests at most; one warning per listener.
    assert outcome["tcp"]["peak_syn_queue"] <= backlog + 1
    assert outcome["tcp"]["flood_warnings"] == 1
