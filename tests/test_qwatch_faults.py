# SPDX-License-Identifier: GPL-2.0
"""qwatch under its own faults: a reader too slow for its ring buffer."""

import signal
import socket

from lib.cmd import run, wait_until
from lib.hsp_wire import drop_unmarked_resets, raw_sender, tcp_syn
from lib.kernel import nstat, ss_syn_recv
from lib.netns import backlog_drained, socket_in
from lib.qwatch import QwatchStream, free_port, metric_value, scrape

FLOOD_MARK = 44
FLOOD_SYNS = 2000


def test_ring_buffer_overflow__counted_then_exact_again(netns_pair, one_cpu):
    server, client = netns_pair.server, netns_pair.client
    # Cookies off isolates the SYN queue: every SYN that reaches the listener
    # is then either queued (syn_recv) or dropped (syn_drop), one event each.
    run(["sysctl", "-qw", "net.ipv4.tcp_syncookies=0"], ns=server)
    drop_unmarked_resets(client, FLOOD_MARK)
    listener = socket_in(server, socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((netns_pair.server_addr, 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    sender = raw_sender(client, socket.IPPROTO_TCP, FLOOD_MARK)

    def syn(sport):
        sender.sendto(tcp_syn(netns_pair.client_addr, netns_pair.server_addr, sport, port, sport),
                      (netns_pair.server_addr, 0))

    metrics_port = free_port()
    with QwatchStream("--ring-buffer", "4", "--netns", str(server.inode), "-i", "0.2",
                      "--metrics", f"127.0.0.1:{metrics_port}") as qwatch:
        in_segs_before = nstat(server, "TcpInSegs")
        timeouts_before = nstat(server, "TcpExtTCPTimeouts")
        # A stopped reader drains nothing: 2000 SYNs' events cannot fit in
        # 4 KiB. A burst this size also overflows the veth backlog: the
        # oracle is what the kernel took in, never what was sent.
        qwatch.proc.send_signal(signal.SIGSTOP)
        for sport in range(10000, 10000 + FLOOD_SYNS):
            syn(sport)
        backlog_drained(client)
        qwatch.proc.send_signal(signal.SIGCONT)
        # Nothing but the flood reaches the server (the client's resets are
        # dropped), and each of its SYNs that TCP took in met the listener.
        reached = nstat(server, "TcpInSegs") - in_segs_before
        assert 64 < reached <= FLOOD_SYNS

        def syn_events():
            return len([e for e in qwatch.select(lport=port)
                        if e["event"] in ("syn_recv", "syn_drop")])

        def lost():
            return metric_value(scrape(metrics_port), "qwatch_lost_events_total")

        # Every SYN the listener saw is an event delivered or one counted lost.
        qwatch.wait_for(lambda q: syn_events() + lost() >= reached,
                        what=f"{reached} SYN events delivered or counted lost")
        lost_total = lost()
        assert lost_total > 0
        # Besides SYN events, only the request timer's (one synack_retransmit
        # or expire per TCPTimeouts) can have been lost, and none was counted
        # twice.
        timer_runs = nstat(server, "TcpExtTCPTimeouts") - timeouts_before
        assert syn_events() + lost_total <= reached + timer_runs
        # The JSON stream says so too, in a line of its own.
        qwatch.wait_for(lambda q: (q.latest(event="lost_events") or {}).get("total", 0)
                        >= lost_total, what=f"a lost_events line with a total of {lost_total}")

        # With no event since, the periodic resync alone makes the numbers
        # the kernel's again.
        wait_until(lambda: metric_value(scrape(metrics_port), "qwatch_syn_queue_length",
                                        lport=port) == ss_syn_recv(server, port),
                   what="the resync to restore the SYN queue length")

        # Once the flood's requests have expired (no timer left to race), the
        # next request's event carries the kernel's absolute values again.
        wait_until(lambda: ss_syn_recv(server, port) == 0, timeout=90,
                   what="the flood's requests to expire")
        sport = 10000 + FLOOD_SYNS
        syn(sport)
        event = qwatch.wait_for(lambda q: q.latest(event="syn_recv", lport=port, rport=sport),
                                what="the next request's syn_recv event")
        assert event["syn_queue"] == ss_syn_recv(server, port) == 1
    sender.close()
    listener.close()
