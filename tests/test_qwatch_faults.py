# SPDX-License-Identifier: GPL-2.0
"""qwatch under its own faults: a reader too slow for its ring buffer."""

import signal
import socket

from lib.cmd import run, wait_until
from lib.hsp_wire import drop_unmarked_resets, raw_sender, tcp_syn
from lib.kernel import ss_syn_recv
from lib.netns import socket_in
from lib.qwatch import QwatchStream, free_port, metric_value, scrape

FLOOD_MARK = 44


def test_ring_buffer_overflow__counted_then_exact_again(netns_pair):
    server, client = netns_pair.server, netns_pair.client
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
        # A stopped reader drains nothing: 2000 SYNs' events cannot fit in 4 KiB.
        qwatch.proc.send_signal(signal.SIGSTOP)
        for sport in range(10000, 12000):
            syn(sport)
        qwatch.proc.send_signal(signal.SIGCONT)
        lost = qwatch.wait_for(lambda q: q.latest(event="lost_events"), what="a lost_events line")
        delivered = len([e for e in qwatch.select(lport=port)
                         if e["event"] in ("syn_recv", "syn_drop")])
        assert lost["total"] > 0 and delivered + lost["total"] >= 2000
        # With no event since, the periodic resync alone makes the numbers
        # the kernel's again.
        wait_until(lambda: metric_value(scrape(metrics_port), "qwatch_syn_queue_length",
                                        lport=port) == ss_syn_recv(server, port),
                   what="the resync to restore the SYN queue length")
        # Counted in the metrics too (more may have been lost since that line).
        assert metric_value(scrape(metrics_port), "qwatch_lost_events_total") >= lost["total"]

        # The next event carries the kernel's absolute values again.
        seen = len(qwatch.select(lport=port))
        syn(12000)
        event = qwatch.wait_for(lambda q: q.select(lport=port)[seen:seen + 1],
                                what="an event after the overflow")[0]
        assert event["syn_queue"] == ss_syn_recv(server, port)
    sender.close()
    listener.close()
