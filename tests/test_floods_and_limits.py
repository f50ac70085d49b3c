# SPDX-License-Identifier: GPL-2.0
"""SYN floods and listen() backlogs: HSP must hold the same limits as TCP.

Syncookies are off in the server namespace (HSP has none), so both
protocols answer a flood the same way: the SYN queue fills to its limit and
further SYNs are dropped.
"""

import collections
import contextlib
import json
import os

import pytest

from lib import REPO
from lib.cmd import iterations, one_cpu, run, scaled
from lib.hsp_wire import drop_unmarked_resets, raw_sender
from lib.kernel import KernelLog, SlabPeak
from lib.netns import NetNSPair, backlog_drained
from lib.proto import HSP, PROTOCOLS, TCP
from lib.qwatch import QwatchStream

FLOOD_MARK = 43
FLOOD_SYNS = iterations(2000)


@pytest.mark.parametrize("backlog", [0, -1, 1, 5, 1 << 20])
def test_listen_backlog__clamped_as_for_tcp(netns_pair, hsp_module, backlog):
    limits = {}
    for proto in PROTOCOLS:
        listener, port = proto.listen(netns_pair.server, netns_pair.server_addr, backlog)
        limits[proto.name] = proto.accept_max(netns_pair.server, port)
        listener.close()
    assert limits["hsp"] == limits["tcp"]


def flood(proto, pair, port, backlog):
    """FLOOD_SYNS SYNs from distinct source ports of the client address,
    and the number the server took in: a burst this size overflows the
    veth backlog, so that is the kernel's count, not FLOOD_SYNS."""
    # Nothing but the flood reaches the server's protocol (the client's
    # resets are dropped), so every segment it took in is a SYN.
    before = proto.segments_in(pair.server)
    sender = raw_sender(pair.client, proto.number(), FLOOD_MARK)
    build = lambda sport: proto.syn(pair.client_addr, pair.server_addr, sport, port, sport)
    # From one CPU the flood is taken in order, one SYN at a time, for
    # both protocols alike. Only the sending: qwatch and its reader keep
    # both CPUs (a JSON object a few ms under emulation, 4000 of them).
    with one_cpu():
        for sport in range(10000, 10000 + FLOOD_SYNS):
            sender.sendto(build(sport), (pair.server_addr, 0))
        backlog_drained(pair.client)
    sender.close()
    taken_in = proto.segments_in(pair.server) - before
    assert backlog < taken_in <= FLOOD_SYNS
    return taken_in


def report_flood_memory(peak_requests, object_size):
    """For the closing note and Documentation: build/reports/hsp-flood.json."""
    reports = os.path.join(REPO, "build", "reports")
    os.makedirs(reports, exist_ok=True)
    with open(os.path.join(reports, "hsp-flood.json"), "w") as f:
        json.dump({"syns": FLOOD_SYNS, "peak_request_socks": peak_requests,
                   "request_sock_bytes": object_size,
                   "peak_request_kib": round(peak_requests * object_size / 1024, 1)}, f)


def flood_accounting(proto, ns, events):
    """qwatch's events by kind against the kernel's counters, for a timeout."""
    kinds = collections.Counter(e["event"] for e in events)
    return f"qwatch {dict(kinds)}, kernel {proto.syn_accounting(ns)}"


def syn_flood_outcome(proto, qwatch, backlog):
    with NetNSPair() as pair, contextlib.ExitStack() as cleanup:
        # Two SYN-ACK retries: the flood's requests expire after 1 + 2 + 4 s
        # and the real client below gets through soon after.
        run(["sysctl", "-qw", "net.ipv4.tcp_syncookies=0",
             "net.ipv4.tcp_synack_retries=2"], ns=pair.server)
        drop_unmarked_resets(pair.client, FLOOD_MARK)
        log = KernelLog()
        cleanup.callback(log.close)
        listener, port = proto.listen(pair.server, pair.server_addr, backlog)
        cleanup.enter_context(listener)

        requests_memory = None
        if proto is HSP:
            requests_memory = cleanup.enter_context(SlabPeak("request_sock_hsp"))
        taken_in = flood(proto, pair, port, backlog)
        events = lambda: qwatch.select(netns=pair.server.inode, lport=port, proto=proto.name)
        syn_events = lambda: [e for e in events() if e["event"] in ("syn_recv", "syn_drop")]
        qwatch.wait_for(lambda q: len(syn_events()) == taken_in, timeout=120,
                        what=f"{proto.name}: one syn_recv or syn_drop per SYN "
                             f"({taken_in} taken in)",
                        state=lambda q: flood_accounting(proto, pair.server, events()))
        if requests_memory:
            peak_requests = requests_memory.stop() - requests_memory.baseline
            report_flood_memory(peak_requests, requests_memory.object_size)
            # Memory is bounded by the SYN queue's limit, not the flood.
            assert peak_requests <= backlog + 1
        peak = max(e["syn_queue"] for e in events())
        # (How many requests entered in all is no measure: it depends on how
        # many expired during the flood, i.e. on how long the flood took.)

        # Once the flood's requests expire, a real client retrying its SYN
        # gets through.
        client = cleanup.enter_context(proto.socket(pair.client))
        client.settimeout(scaled(60))
        client.connect((pair.server_addr, port))
        cleanup.enter_context(listener.accept()[0])
        warnings = [line for line in log.read_new() if "SYN flooding" in line]
        return {"peak_syn_queue": peak, "flood_warnings": len(warnings)}


def test_syn_flood__the_syn_queue_holds_its_limit_as_tcp_does(hsp_module):
    backlog = 64
    with QwatchStream() as qwatch:
        outcome = {proto.name: syn_flood_outcome(proto, qwatch, backlog) for proto in (TCP, HSP)}
    assert outcome["hsp"] == outcome["tcp"], outcome
    # The SYN queue takes backlog + 1 requests at most; one warning per listener.
    assert outcome["tcp"]["peak_syn_queue"] <= backlog + 1
    assert outcome["tcp"]["flood_warnings"] == 1
