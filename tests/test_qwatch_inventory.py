# SPDX-License-Identifier: GPL-2.0
"""Listeners no process's file table points to: each shown once, with the
right queues, and not reset when a resync's snapshot cannot see it."""

import array
import socket
from contextlib import ExitStack

import pytest

from lib.cmd import wait_until
from lib.kernel import ss_listener
from lib.netns import socket_in
from lib.qwatch import QwatchStream, free_port, metric_value, once, scrape
from lib.tcp import connect_many

IPPROTO_MPTCP = 262
SO_COOKIE = getattr(socket, "SO_COOKIE", 57)


def rows_on(ns, port):
    return [r for r in once("--netns", str(ns.inode)) if r["lport"] == port]


def metric_series(metrics_port, name, port):
    return [line for line in scrape(metrics_port).splitlines()
            if line.startswith(name + "{") and f'lport="{port}"' in line]


def listen_watched(cleanup, pair, listener, backlog):
    """@listener listening in pair.server, closed by @cleanup, and a qwatch
    --json stream resyncing every 0.2 s with /metrics: (port, stream,
    metrics port)."""
    cleanup.callback(listener.close)
    listener.bind((pair.server_addr, 0))
    listener.listen(backlog)
    metrics_port = free_port()
    qwatch = cleanup.enter_context(QwatchStream(
        "--netns", str(pair.server.inode), "-i", "0.2", "--metrics", f"127.0.0.1:{metrics_port}"))
    return listener.getsockname()[1], qwatch, metrics_port


def test_mptcp_listener__one_row_with_its_subflow_listeners_queues(netns_pair):
    """An MPTCP socket's queues are those of a TCP listener the kernel
    made for it, which no fd points to: qwatch shows one row, mptcp, with
    that listener's queues as ss shows them."""
    server, client = netns_pair.server, netns_pair.client
    try:
        listener = socket_in(server, socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    except OSError as e:
        pytest.skip(f"this kernel has no MPTCP: {e}")
    with ExitStack() as cleanup:
        port, qwatch, metrics_port = listen_watched(cleanup, netns_pair, listener, 4)
        conns = connect_many(client, netns_pair.server_addr, port, 8)
        for conn in conns:
            cleanup.callback(conn.close)
        wait_until(lambda: ss_listener(server, port)[0] == 5, what="a full accept queue per ss")

        [row] = rows_on(server, port)
        assert row["proto"] == "mptcp"
        assert (row["accept_queue"], row["accept_max"]) == ss_listener(server, port)[:2]
        assert row["cookie"] == int.from_bytes(
            listener.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8), "little")
        # One series, which keeps counting across resyncs (every 0.2 s).
        wait_until(lambda: metric_value(scrape(metrics_port), "qwatch_handshakes_total",
                                        lport=port) == 5, what="5 handshakes counted")
        [series] = metric_series(metrics_port, "qwatch_accept_queue_length", port)
        assert 'proto="mptcp"' in series and series.endswith(" 5")
        ids = {e["id"] for e in qwatch.select(lport=port)}
        assert len(ids) == 1


def test_listener_in_flight_over_scm_rights__kept_across_resyncs(netns_pair):
    """A listener whose only reference is an SCM_RIGHTS message in flight is
    in no file table: resyncs must keep it, its id and its counters."""
    server, client = netns_pair.server, netns_pair.client
    with ExitStack() as cleanup:
        listener = socket_in(server, socket.AF_INET, socket.SOCK_STREAM)
        port, qwatch, metrics_port = listen_watched(cleanup, netns_pair, listener, 8)
        snapshot = qwatch.wait_for(lambda q: q.latest(event="snapshot", lport=port),
                                   what="the listener's snapshot")

        sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        cleanup.callback(sender.close)
        cleanup.callback(receiver.close)
        sender.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                 array.array("i", [listener.fileno()]))])
        listener.close()
        # No snapshot can find it now (a fresh qwatch does not), and a few
        # of the stream's resyncs go by while it is in no file table.
        assert not rows_on(server, port)
        snapshots = metric_value(scrape(metrics_port), "qwatch_snapshots_total")
        wait_until(lambda: metric_value(scrape(metrics_port), "qwatch_snapshots_total")
                   >= snapshots + 3, what="three resyncs")
        conns = connect_many(client, netns_pair.server_addr, port, 3)
        for conn in conns:
            cleanup.callback(conn.close)
        wait_until(lambda: ss_listener(server, port)[0] == 3, what="3 children per ss")
        wait_until(lambda: metric_value(scrape(metrics_port), "qwatch_handshakes_total",
                                        lport=port) == 3, what="3 handshakes counted")
        [series] = metric_series(metrics_port, "qwatch_accept_queue_length", port)
        assert series.endswith(" 3")
        assert {e["id"] for e in qwatch.select(lport=port)} == {snapshot["id"]}

        # Received back, closed for good: then it is gone.
        _, fds, _, _ = socket.recv_fds(receiver, 16, 1)
        for fd in fds:
            socket.socket(fileno=fd).close()
        qwatch.wait_for(lambda q: q.latest(event="close", lport=port), what="the close")
        wait_until(lambda: not metric_series(metrics_port, "qwatch_accept_queue_length", port),
                   what="the series gone")
