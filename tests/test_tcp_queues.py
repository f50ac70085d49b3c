# SPDX-License-Identifier: GPL-2.0
"""qwatch's view of TCP listen queues against the kernel's own accounts.

Every number qwatch reports is checked against a second source: ss (inet_diag)
for the queues and sk_drops, nstat for the per-netns SNMP counters.
"""

import pytest

from lib import nft
from lib.cmd import run, wait_until
from lib.kernel import nstat, ss_listener, ss_syn_recv
from lib.netns import connected
from lib.qwatch import QwatchStream, once
from lib.tcp import ConnectLoop, connect_many, hold_final_acks, tcp_listener


def listeners_now(ns, port):
    """qwatch --once's listeners on @port in @ns (ports repeat across namespaces)."""
    return [entry for entry in once("--netns", str(ns.inode)) if entry["lport"] == port]


@pytest.fixture(params=["kprobe", "fentry"])
def qwatch(netns_pair, request):
    """qwatch on the server's namespace, through kprobes or BPF trampolines."""
    with QwatchStream("--netns", str(netns_pair.server.inode), "--attach", request.param) as stream:
        yield stream


def test_listen_and_close__events_carry_the_backlog(netns_pair, qwatch):
    ns = netns_pair.server
    listener, port = tcp_listener(ns, netns_pair.server_addr, 7)
    listen = qwatch.wait_for(lambda q: q.latest(event="listen", lport=port), what="listen")
    recv_q, send_q, _ = ss_listener(ns, port)
    assert (listen["accept_queue"], listen["accept_max"]) == (recv_q, send_q)
    assert listen["netns"] == ns.inode and listen["laddr"] == netns_pair.server_addr

    listener.close()
    qwatch.wait_for(lambda q: q.latest(event="close", lport=port), what="close")
    assert not listeners_now(netns_pair.server, port)


def test_accept_queue__matches_ss_and_overflows_match_nstat(netns_pair, qwatch):
    ns, backlog, clients = netns_pair.server, 3, 8
    overflows_before = nstat(ns, "TcpExtListenOverflows")
    listener, port = tcp_listener(ns, netns_pair.server_addr, backlog)
    conns = connect_many(netns_pair.client, netns_pair.server_addr, port, clients)

    # A final ACK or SYN overflows only a full accept queue, and nothing
    # accepts: once every extra client overflowed, the queue is as full as
    # it gets. (This kernel admits backlog + 1 children: sk_acceptq_is_full
    # uses >.)
    wait_until(lambda: nstat(ns, "TcpExtListenOverflows") - overflows_before
               >= clients - (backlog + 1), what="every extra client to overflow")
    nft.freeze_input(ns)

    # A segment already past the firewall may still count: compare afresh.
    overflows = lambda: nstat(ns, "TcpExtListenOverflows") - overflows_before
    qwatch.wait_for(lambda q: len(q.select(event="overflow", lport=port)) == overflows(),
                    what="as many overflow events as nstat ListenOverflows")
    recv_q, send_q, drops = ss_listener(ns, port)
    latest = qwatch.latest(lport=port)
    assert latest["accept_queue"] == recv_q == backlog + 1
    assert latest["accept_max"] == send_q == backlog

    [now] = listeners_now(netns_pair.server, port)
    assert (now["accept_queue"], now["accept_max"], now["drops"]) == (recv_q, send_q, drops)
    for conn in conns:
        conn.close()
    listener.close()


def test_syn_queue__matches_ss_syn_recv_while_final_acks_are_dropped(netns_pair, qwatch):
    server, client, pending = netns_pair.server, netns_pair.client, 5
    listener, port = tcp_listener(server, netns_pair.server_addr, 16)
    held = hold_final_acks(client, port)
    retrans_before = nstat(server, "TcpExtTCPSynRetrans")
    conns = connect_many(client, netns_pair.server_addr, port, pending)

    # A client is connected once it got its SYN-ACK and sent the final ACK
    # (dropped): its request is in the SYN queue by then.
    wait_until(lambda: all(connected(c) for c in conns), what=f"{pending} clients connected")
    requests = ss_syn_recv(server, port)
    latest = qwatch.wait_for(
        lambda q: len(q.select(event="syn_recv", lport=port)) == requests and q.latest(lport=port),
        what=f"{requests} syn_recv events")
    assert latest["syn_queue"] == requests == pending
    assert latest["accept_queue"] == ss_listener(server, port)[0] == 0
    [now] = listeners_now(netns_pair.server, port)
    assert now["syn_queue"] == pending

    # The server retransmits SYN-ACKs for the requests whose ACK never came.
    qwatch.wait_for(
        lambda q: (len(q.select(event="synack_retransmit", lport=port))
                   == nstat(server, "TcpExtTCPSynRetrans") - retrans_before > 0),
        timeout=60, what="synack_retransmit events matching TCPSynRetrans")

    # Let the ACKs through: each request moves to the accept queue.
    held.delete()
    qwatch.wait_for(lambda q: len(q.select(event="ack_complete", lport=port)) == pending,
                    timeout=60, what="every request to complete")
    wait_until(lambda: ss_syn_recv(server, port) == 0, what="an empty SYN queue per ss")
    latest = qwatch.latest(lport=port)
    assert latest["syn_queue"] == 0
    assert latest["accept_queue"] == ss_listener(server, port)[0] == pending
    for conn in conns:
        conn.close()
    listener.close()


def test_accept__drains_the_accept_queue_event_by_event(netns_pair, qwatch):
    server, completed = netns_pair.server, 4
    listener, port = tcp_listener(server, netns_pair.server_addr, 8)
    conns = connect_many(netns_pair.client, netns_pair.server_addr, port, completed)
    wait_until(lambda: ss_listener(server, port)[0] == completed, what="completed handshakes")
    qwatch.wait_for(lambda q: (q.latest(lport=port) or {}).get("accept_queue") == completed,
                    what="qwatch to see the full accept queue")

    for accepted in range(1, completed + 1):
        child, peer = listener.accept()
        event = qwatch.wait_for(
            lambda q: (q.select(event="accept", lport=port)[accepted - 1:accepted] or [None])[0],
            what=f"accept event {accepted}")
        assert event["accept_queue"] == ss_listener(server, port)[0] == completed - accepted
        assert (event["raddr"], event["rport"]) == peer
        child.close()
    for conn in conns:
        conn.close()
    listener.close()


def test_once__prints_listeners_only_while_transitions_flow(netns_pair, one_cpu):
    # One CPU for the load and for qwatch, whose attaching rewrites the very
    # functions the load runs: under emulation (TCG) a vCPU executing code
    # that another vCPU patches can spin at the patch site for good.
    server = netns_pair.server
    listener, port = tcp_listener(server, netns_pair.server_addr, 16)
    listener.settimeout(5)
    with ConnectLoop(netns_pair.client, listener) as load:
        for _ in range(5):
            opens_before = nstat(server, "TcpPassiveOpens")
            objects = once("--netns", str(server.inode))
            # Handshakes completed while qwatch attached, listed and drained.
            assert nstat(server, "TcpPassiveOpens") > opens_before
            assert [o for o in objects if "event" in o] == []
            [now] = [o for o in objects if o["lport"] == port]
            assert now["accept_max"] == ss_listener(server, port)[1] == 16
    assert not load.errors
    listener.close()


def test_table__plain_text_when_stdout_is_not_a_terminal(netns_pair):
    server = netns_pair.server
    listener, port = tcp_listener(server, netns_pair.server_addr, 5)
    conns = connect_many(netns_pair.client, netns_pair.server_addr, port, 2)
    wait_until(lambda: ss_listener(server, port)[0] == 2, what="two completed handshakes")

    out = run(["build/qwatch", "--netns", server.name, "0.2", "2"]).stdout
    assert "\033[" not in out
    rows = [line.split() for line in out.splitlines() if f":{port} " in line + " "]
    assert len(rows) == 2, out
    recv_q, send_q, _ = ss_listener(server, port)
    for row in rows:
        # NETNS PROTO LOCAL SYN-Q(cur/max, bar) PEAK ACCEPT-Q(cur/max, bar) PEAK ...
        assert row[0] == server.name and row[1] == "tcp"
        assert row[6] == f"{recv_q}/{send_q}"
    for conn in conns:
        conn.close()
    listener.close()
