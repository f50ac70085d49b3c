# SPDX-License-Identifier: GPL-2.0
"""qwatch's per-listener counters against the kernel's own.

With one listener in a namespace, the namespace's nstat counters count
exactly that listener: over a window, each qwatch counter must move by as
much as its nstat counter. The scenarios run with the kernel's defaults
(syncookies on) and with both vCPUs processing the listener at once, the
flood's senders pinned to different CPUs; a scenario that changes a
default says why.
"""

import os
import signal
import socket
import subprocess
from contextlib import ExitStack

import pytest

from lib import REPO, nft
from lib.cmd import Background, run, scaled, wait_until
from lib.hsp_wire import TCP_ACK, drop_unmarked_resets, raw_sender, tcp_segment
from lib.kernel import nstat_all, ss_listener, ss_listeners_by_cookie, ss_syn_recv
from lib.netns import connected, socket_in
from lib.proto import PROTOCOLS
from lib.qwatch import QWATCH, QwatchStream, free_port, metric_value, parse, scrape
from lib.tcp import connect_many, fastopen_connect, hold_final_acks, tcp_listener

FLOOD_MARK = 45
FLOOD = os.path.join(REPO, "tests", "workload", "syn_flood.py")

# Each qwatch counter and the nstat counter it must equal.
KERNEL_NAMES = {
    "handshakes": "TcpPassiveOpens",
    "listen_overflows": "TcpExtListenOverflows",
    "listen_drops": "TcpExtListenDrops",
    "syn_queue_full_drops": "TcpExtTCPReqQFullDrop",
    "syn_queue_full_cookies": "TcpExtTCPReqQFullDoCookies",
    "syncookies_sent": "TcpExtSyncookiesSent",
    "syncookies_recv": "TcpExtSyncookiesRecv",
    "syncookies_failed": "TcpExtSyncookiesFailed",
    "tfo_children": "TcpExtTCPFastOpenPassive",
}


def kernel_counts(ns):
    values = nstat_all(ns)
    return {field: values.get(name, 0) for field, name in KERNEL_NAMES.items()}


def metric_counts(metrics_port, port):
    """qwatch's counters of the listener on @port, from its /metrics."""
    text = scrape(metrics_port)
    return {field: metric_value(text, f"qwatch_{field}_total", lport=port)
            for field in KERNEL_NAMES}


def assert_counts_equal_kernel(ns, before, read_qwatch, kernel=kernel_counts):
    """With @ns's input frozen: once the kernel's counters (@kernel(@ns))
    stand still across a read of qwatch's, the two must agree on each."""
    seen = {}

    def agree():
        kernel_before = kernel(ns)
        qwatch = read_qwatch()
        if kernel(ns) != kernel_before:
            return False
        seen["kernel"] = {k: v - before[k] for k, v in kernel_before.items()}
        seen["qwatch"] = qwatch
        return qwatch == seen["kernel"]

    def difference():
        return {k: (seen["qwatch"][k], v) for k, v in seen["kernel"].items()
                if seen["qwatch"][k] != v} if seen else "nstat never stood still"

    wait_until(agree, timeout=30, interval=0.2, state=difference,
               what="qwatch's counters to equal nstat's (qwatch, nstat)")
    return seen["kernel"]


@pytest.fixture(params=["kprobe", "fentry"])
def qwatch(netns_pair, request):
    """qwatch on the server's namespace with /metrics, in each attach mode."""
    metrics_port = free_port()
    with QwatchStream("--netns", str(netns_pair.server.inode), "--attach", request.param,
                      "--metrics", f"127.0.0.1:{metrics_port}") as stream:
        stream.metrics_port = metrics_port
        yield stream


def flood_from_both_cpus(pair, port, syns_per_cpu, first_sport=20000, proto="tcp"):
    """Bare SYNs from two senders pinned to different vCPUs, at once."""
    cpus = sorted(os.sched_getaffinity(0))
    assert len(cpus) >= 2, "the flood needs two vCPUs"
    senders = [subprocess.Popen(
        ["ip", "netns", "exec", str(pair.client), "/usr/bin/python3", FLOOD,
         "--src", pair.client_addr, "--dst", pair.server_addr, "--port", str(port),
         "--first-sport", str(first_sport + i * syns_per_cpu), "--count", str(syns_per_cpu),
         "--cpu", str(cpu), "--mark", str(FLOOD_MARK), "--proto", proto])
        for i, cpu in enumerate(cpus[:2])]
    for sender in senders:
        assert sender.wait(scaled(120)) == 0


def drop_events(qwatch, port):
    return [e for e in qwatch.select(lport=port)
            if e["event"] in ("syn_drop", "ack_drop", "overflow")]


def count_connected(clients):
    """How many of @clients' non-blocking connects have completed."""
    return sum(1 for client in clients if connected(client))


def clients_through_cookies(pair, port, backlog, clients, syns_per_cpu, cleanup):
    """Syncookies on (the default): a flood from both CPUs fills the SYN
    queue, so @clients real clients get cookies; their final ACKs are held
    until every one has its SYN-ACK, then data from each of them completes
    the handshake through its cookie, until the children overflow the
    accept queue on the cookie ACK. Returns with the server's input frozen."""
    server, client = pair.server, pair.client
    assert run(["sysctl", "-n", "net.ipv4.tcp_syncookies"], ns=server).stdout.strip() == "1"
    drop_unmarked_resets(client, FLOOD_MARK)
    # Held before the flood, so that the clients connect while the flood's
    # requests (pruned after two timeouts in a full queue) still fill it.
    held = hold_final_acks(client, port)
    flood_from_both_cpus(pair, port, syns_per_cpu)
    conns = connect_many(client, pair.server_addr, port, clients)
    for conn in conns:
        cleanup.callback(conn.close)
    wait_until(lambda: count_connected(conns) == clients, what=f"{clients} clients connected")
    held.delete()
    for conn in conns:
        conn.send(b"x")
    overflows = nstat_all(server).get("TcpExtListenOverflows", 0)
    # A cookie ACK overflows only a full accept queue, and nothing accepts:
    # once every extra client overflowed, the queue is as full as it gets.
    wait_until(lambda: nstat_all(server).get("TcpExtListenOverflows", 0) - overflows
               >= clients - (backlog + 1), what="every extra client to overflow")
    nft.freeze_input(server)


def test_syncookie_flood__counters_equal_nstat_with_clients_through_cookies(netns_pair, qwatch):
    server = netns_pair.server
    before = kernel_counts(server)
    backlog, clients = 16, 40
    with ExitStack() as cleanup:
        listener, port = tcp_listener(server, netns_pair.server_addr, backlog)
        cleanup.callback(listener.close)
        clients_through_cookies(netns_pair, port, backlog, clients, 300, cleanup)

        counted = assert_counts_equal_kernel(
            server, before, lambda: metric_counts(qwatch.metrics_port, port))
        # Every path this test is about was taken.
        assert counted["syncookies_sent"] > 0 and counted["syncookies_recv"] > 0
        assert counted["listen_overflows"] > 0 and counted["syn_queue_full_cookies"] > 0
        # Every child that entered the accept queue was seen entering it,
        # cookie children included (nothing accepts them).
        recv_q = ss_listener(server, port)[0]
        assert recv_q == backlog + 1
        qwatch.wait_for(lambda q: len(q.select(event="ack_complete", lport=port)) == recv_q,
                        what=f"{recv_q} ack_complete events",
                        state=lambda q: len(q.select(event="ack_complete", lport=port)))
        paths = {e["path"] for e in qwatch.select(event="ack_complete", lport=port)}
        assert "syncookie" in paths
        wait_until(lambda: metric_value(scrape(qwatch.metrics_port), "qwatch_accept_queue_length",
                                        lport=port) == recv_q, what="the accept queue as ss has it")


def test_syn_flood_cookies_off__syn_queue_full_drops_equal_nstat(netns_pair, qwatch):
    """Syncookies off isolates TCPReqQFullDrop: SYNs beyond the full SYN
    queue are dropped, from both CPUs at once; each drop event carries the
    counter that counted it."""
    server, client = netns_pair.server, netns_pair.client
    run(["sysctl", "-qw", "net.ipv4.tcp_syncookies=0"], ns=server)
    drop_unmarked_resets(client, FLOOD_MARK)
    before = kernel_counts(server)
    with ExitStack() as cleanup:
        listener, port = tcp_listener(server, netns_pair.server_addr, 16)
        cleanup.callback(listener.close)
        flood_from_both_cpus(netns_pair, port, 300)
        nft.freeze_input(server)

        counted = assert_counts_equal_kernel(
            server, before, lambda: metric_counts(qwatch.metrics_port, port))
        assert counted["syn_queue_full_drops"] > 0
        assert counted["syncookies_sent"] == counted["listen_overflows"] == 0
        lost = qwatch.latest(event="lost_events")
        if not lost:
            full = lambda q: [e for e in q.select(event="syn_drop", lport=port)
                              if e["cause"] == "syn_queue_full_drops"]
            qwatch.wait_for(lambda q: len(full(q)) == counted["syn_queue_full_drops"],
                            what="a syn_drop event per TCPReqQFullDrop",
                            state=lambda q: len(full(q)))
        assert not qwatch.select(event="overflow", lport=port)


@pytest.mark.parametrize("proto", PROTOCOLS, ids=lambda p: p.name)
def test_same_scenario_tcp_and_hsp__counters_equal_the_kernels(netns_pair, hsp_module, qwatch,
                                                                proto):
    """Syncookies off (HSP has none). A flood from both CPUs fills the SYN
    queue (it takes backlog + 1 requests: the kernel's test is qlen >
    backlog) and meets it full; once the client's resets clear the flood's
    requests, clients fill the accept queue and more of them overflow it.
    HSP counts its drops in the namespace's counters as TCP does, its
    handshakes in /proc/net/hsp_stat.

    The flood's requests stand for held final ACKs: real clients held in a
    full SYN queue are pruned after two timeouts ("reserve half of room for
    young embrions"), so whether they complete would depend on how fast the
    flood is sent."""
    server, client = netns_pair.server, netns_pair.client
    run(["sysctl", "-qw", "net.ipv4.tcp_syncookies=0"], ns=server)
    # HSP's handshakes are in /proc/net/hsp_stat, TCP's in nstat.
    kernel = lambda ns: {**kernel_counts(ns), "handshakes": proto.passive_opens(ns)}
    before = kernel(server)
    segments_before = proto.segments_in(server)
    backlog = 4
    syns_per_cpu = 150
    with ExitStack() as cleanup:
        listener, port = proto.listen(server, netns_pair.server_addr, backlog)
        cleanup.callback(listener.close)

        def connect(count):
            conns = []
            for _ in range(count):
                conn = proto.socket(client)
                cleanup.callback(conn.close)
                conn.setblocking(False)
                conn.connect_ex((netns_pair.server_addr, port))
                conns.append(conn)
            return conns

        def moved(name):
            return kernel(server)[name] - before[name]

        resets_dropped = drop_unmarked_resets(client, FLOOD_MARK)
        flood_from_both_cpus(netns_pair, port, syns_per_cpu, proto=proto.name)
        wait_until(lambda: proto.segments_in(server) - segments_before >= 2 * syns_per_cpu,
                   what="the flood to reach the listener")
        assert proto.queues(server, port)["syn_queue"] >= backlog + 1
        resets_dropped.delete()
        # Each request's next SYN-ACK now meets the client's reset.
        wait_until(lambda: proto.queues(server, port)["syn_queue"] == 0,
                   what="the flood's requests reset", state=lambda: proto.queues(server, port))
        first = connect(backlog + 1)
        # Every client connected and no request left: each final ACK has
        # made a child (or overflowed); how many is read below, not waited for.
        wait_until(lambda: all(connected(c) for c in first)
                   and proto.queues(server, port)["syn_queue"] == 0,
                   what="the first clients' handshakes done",
                   state=lambda: (moved("handshakes"), proto.queues(server, port)))
        connect(3)
        wait_until(lambda: moved("listen_overflows") >= 3, what="clients overflowing")
        nft.freeze_input(server)

        counted = assert_counts_equal_kernel(
            server, before, lambda: metric_counts(qwatch.metrics_port, port), kernel)
        assert counted["syn_queue_full_drops"] > 0
        assert counted["handshakes"] == backlog + 1


def test_fastopen__tfo_children_equal_nstat(netns_pair, qwatch):
    """TFO is off for servers by default (tcp_fastopen=1): turned on in the
    server's namespace only. Children created at the SYN enter the accept
    queue at once."""
    server, client = netns_pair.server, netns_pair.client
    run(["sysctl", "-qw", "net.ipv4.tcp_fastopen=3"], ns=server)
    before = kernel_counts(server)
    connections = 6
    with ExitStack() as cleanup:
        listener, port = tcp_listener(server, netns_pair.server_addr, 16)
        cleanup.callback(listener.close)
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
        for _ in range(connections):
            conn = socket_in(client, socket.AF_INET, socket.SOCK_STREAM)
            cleanup.callback(conn.close)
            # The first gets a cookie, the others send data in their SYN.
            fastopen_connect(conn, (netns_pair.server_addr, port), b"hello")
            wait_until(lambda: connected(conn), what="a TFO connect")
        wait_until(lambda: ss_listener(server, port)[0] == connections,
                   what=f"{connections} children queued")
        nft.freeze_input(server)

        counted = assert_counts_equal_kernel(
            server, before, lambda: metric_counts(qwatch.metrics_port, port))
        assert counted["tfo_children"] == connections - 1
        fastopen = lambda q: q.select(event="ack_complete", lport=port, path="fastopen")
        qwatch.wait_for(lambda q: len(fastopen(q)) == counted["tfo_children"],
                        what="an ack_complete at fastopen per TCPFastOpenPassive",
                        state=lambda q: len(fastopen(q)))


def test_defer_accept__bare_acks_are_no_listen_drops(netns_pair, qwatch):
    """TCP_DEFER_ACCEPT drops the bare final ACK and keeps the request:
    the listener's sk_drops grows, the kernel's ListenDrops does not, and
    neither may qwatch's listen_drops."""
    server, client = netns_pair.server, netns_pair.client
    before = kernel_counts(server)
    clients = 4
    with ExitStack() as cleanup:
        listener, port = tcp_listener(server, netns_pair.server_addr, 16)
        cleanup.callback(listener.close)
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 30)
        conns = connect_many(client, netns_pair.server_addr, port, clients)
        for conn in conns:
            cleanup.callback(conn.close)
        wait_until(lambda: ss_listener(server, port)[2] >= clients,
                   what="the bare ACKs in the listener's sk_drops")
        for conn in conns:
            conn.send(b"data")
        wait_until(lambda: ss_listener(server, port)[0] == clients,
                   what="children once data came")
        nft.freeze_input(server)

        counted = assert_counts_equal_kernel(
            server, before, lambda: metric_counts(qwatch.metrics_port, port))
        assert counted["listen_drops"] == 0 and counted["handshakes"] == clients
        assert not drop_events(qwatch, port)


def test_syn_retransmits_at_live_requests__no_drops(netns_pair, qwatch):
    """A client that never sees the SYN-ACK retransmits its SYN to a live
    request: the kernel answers it again and counts no drop."""
    server, client = netns_pair.server, netns_pair.client
    before = kernel_counts(server)
    clients = 3
    with ExitStack() as cleanup:
        listener, port = tcp_listener(server, netns_pair.server_addr, 16)
        cleanup.callback(listener.close)
        nft.input_rule(client, f"tcp sport {port} tcp flags & (syn | ack) == syn | ack drop")
        retrans_before = nstat_all(client).get("TcpExtTCPSynRetrans", 0)
        conns = connect_many(client, netns_pair.server_addr, port, clients)
        for conn in conns:
            cleanup.callback(conn.close)
        wait_until(lambda: nstat_all(client).get("TcpExtTCPSynRetrans", 0) - retrans_before
                   >= clients, timeout=60, what="every client's SYN retransmitted")
        nft.freeze_input(server)

        counted = assert_counts_equal_kernel(
            server, before, lambda: metric_counts(qwatch.metrics_port, port))
        assert counted["listen_drops"] == 0
        assert not drop_events(qwatch, port)


class OnceOverAnInterval:
    """`qwatch --once --json ARGS 3600` (counting only: no event stream, no
    latencies), ready once it is attached; stop() ends the interval with
    SIGINT and returns the listener objects it printed."""

    def __init__(self, cleanup, *args):
        read_fd, write_fd = os.pipe()
        self.proc = subprocess.Popen([QWATCH, "--once", "--json", *args,
                                      "--ready-fd", str(write_fd), "3600"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     pass_fds=(write_fd,))
        cleanup.callback(lambda: self.proc.poll() is None and self.proc.kill())
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as ready:
            assert ready.read(1), f"qwatch --once never became ready: {self.proc.stderr.read()}"

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=scaled(60))
        assert self.proc.returncode == 0, err
        return [parse(line) for line in out.splitlines()]


@pytest.mark.parametrize("attach", ["kprobe", "fentry"])
def test_once_over_an_interval__json_counters_equal_nstat(netns_pair, attach):
    """`qwatch --once --json INTERVAL`, ended early by SIGINT: the listener
    objects carry what was counted meanwhile, under the documented names."""
    server = netns_pair.server
    with ExitStack() as cleanup:
        once = OnceOverAnInterval(cleanup, "--attach", attach, "--netns", str(server.inode))
        before = kernel_counts(server)
        listener, port = tcp_listener(server, netns_pair.server_addr, 8)
        cleanup.callback(listener.close)
        clients_through_cookies(netns_pair, port, 8, 12, 100, cleanup)
        wait_until(lambda: kernel_counts(server) == kernel_counts(server), what="nstat still")
        after = kernel_counts(server)

        [row] = [row for row in once.stop() if row["lport"] == port]
        assert {k: row[k] for k in KERNEL_NAMES} == {k: after[k] - before[k] for k in KERNEL_NAMES}
        assert row["syncookies_recv"] > 0 and row["accept_queue"] == ss_listener(server, port)[0]


@pytest.mark.parametrize("listening", ["before", "after"])
@pytest.mark.parametrize("attach", ["kprobe", "fentry"])
def test_counting_only__accepts_are_what_left_the_accept_queue(netns_pair, attach, listening):
    """Counting only, no probe sees accept() return: the accepts are the
    children that left the accept queue. A listener that already held
    children when qwatch started (their accepts count, their handshakes
    not), or one that listened after: accepts equal the accept() calls the
    test made, handshakes TcpPassiveOpens, the accept queue ss's."""
    server, client, addr = netns_pair.server, netns_pair.client, netns_pair.server_addr
    early, late, accepted = 3, 5, 4
    with ExitStack() as cleanup:
        def connect(count):
            for conn in connect_many(client, addr, port, count):
                cleanup.callback(conn.close)

        def queued(count):
            wait_until(lambda: ss_listener(server, port)[0] == count,
                       what=f"{count} children in the accept queue")

        if listening == "before":
            listener, port = tcp_listener(server, addr, 16)
            cleanup.callback(listener.close)
            connect(early)
            queued(early)
        once = OnceOverAnInterval(cleanup, "--attach", attach, "--netns", str(server.inode))
        before = kernel_counts(server)
        if listening == "after":
            listener, port = tcp_listener(server, addr, 16)
            cleanup.callback(listener.close)
        connect(late)
        held = (early if listening == "before" else 0) + late
        queued(held)
        listener.settimeout(scaled(30))
        for _ in range(accepted):
            cleanup.callback(listener.accept()[0].close)
        queued(held - accepted)
        wait_until(lambda: kernel_counts(server) == kernel_counts(server), what="nstat still")
        handshakes = kernel_counts(server)["handshakes"] - before["handshakes"]

        [row] = [row for row in once.stop() if row["lport"] == port]
        assert handshakes == late
        assert (row["accepts"], row["handshakes"], row["accept_queue"]) == \
            (accepted, handshakes, ss_listener(server, port)[0])


@pytest.mark.parametrize("attach", ["kprobe", "fentry"])
def test_counting_only__acks_of_the_wrong_number_are_no_children(netns_pair, attach):
    """Final ACKs acknowledging another number than the SYN-ACK's make
    tcp_check_req() return the listener itself, which its caller resets:
    no child. Counting only, the window around it must not take that for a
    queued child: qwatch's counters equal nstat's, no handshake, no accept,
    and the requests stay in the SYN queue (ss)."""
    server, client = netns_pair.server, netns_pair.client
    src, dst = netns_pair.client_addr, netns_pair.server_addr
    requests, bad_acks = 3, 4
    with ExitStack() as cleanup:
        listener, port = tcp_listener(server, dst, 8)
        cleanup.callback(listener.close)
        drop_unmarked_resets(client, FLOOD_MARK)
        sender = raw_sender(client, socket.IPPROTO_TCP, FLOOD_MARK)
        cleanup.callback(sender.close)
        once = OnceOverAnInterval(cleanup, "--attach", attach, "--netns", str(server.inode))
        before = kernel_counts(server)
        resets_before = nstat_all(server).get("TcpOutRsts", 0)
        sports = range(40000, 40000 + requests)
        for sport in sports:
            sender.sendto(tcp_segment(src, dst, sport, port, sport), (dst, 0))
        wait_until(lambda: ss_syn_recv(server, port) == requests, what=f"{requests} requests")
        for _ in range(bad_acks):
            for sport in sports:
                sender.sendto(tcp_segment(src, dst, sport, port, sport + 1, ack_seq=12345,
                                          flags=TCP_ACK), (dst, 0))
        wait_until(lambda: nstat_all(server).get("TcpOutRsts", 0) - resets_before
                   >= requests * bad_acks, what="a reset for every wrong ACK")
        wait_until(lambda: kernel_counts(server) == kernel_counts(server), what="nstat still")
        after = kernel_counts(server)

        [row] = [row for row in once.stop() if row["lport"] == port]
        assert {k: row[k] for k in KERNEL_NAMES} == {k: after[k] - before[k] for k in KERNEL_NAMES}
        assert (row["handshakes"], row["accepts"]) == (0, 0)
        assert ss_syn_recv(server, port) == requests


def test_reuseport_group__one_row_and_series_per_listener(netns_pair):
    """Four processes listening on one port with SO_REUSEPORT: four rows,
    four series, each equal to its own ss line (matched by socket cookie)."""
    server, client = netns_pair.server, netns_pair.client
    group = 4
    program = (
        "import os, socket, sys\n"
        "s = socket.socket()\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n"
        f"s.bind(('{netns_pair.server_addr}', int(sys.argv[1])))\n"
        "s.listen(64)\n"
        "print(s.getsockname()[1], flush=True)\n"
        "sys.stdin.read()\n")
    with ExitStack() as cleanup:
        processes, port = [], 0
        for _ in range(group):
            proc = subprocess.Popen(["ip", "netns", "exec", str(server), "/usr/bin/python3",
                                     "-c", program, str(port)], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)
            cleanup.callback(proc.wait)
            cleanup.callback(proc.stdin.close)
            port = int(proc.stdout.readline())
            processes.append(proc)
        conns = connect_many(client, netns_pair.server_addr, port, 24)
        for conn in conns:
            cleanup.callback(conn.close)
        wait_until(lambda: sum(q for q, _ in ss_listeners_by_cookie(server, port).values()) == 24,
                   what="24 children across the group")
        ss = ss_listeners_by_cookie(server, port)
        assert len(ss) == group

        rows = [parse(line) for line in run([QWATCH, "--once", "--json", "--netns",
                                             str(server.inode)]).stdout.splitlines()]
        rows = [r for r in rows if r["lport"] == port]
        assert {r["cookie"]: (r["accept_queue"], r["accept_max"]) for r in rows} == ss
        assert sorted(r["pid"] for r in rows) == sorted(p.pid for p in processes)

        metrics_port = free_port()
        with QwatchStream("--netns", str(server.inode), "--metrics",
                          f"127.0.0.1:{metrics_port}"):
            text = scrape(metrics_port)
        series = [line for line in text.splitlines()
                  if line.startswith("qwatch_accept_queue_length{") and f'lport="{port}"' in line]
        by_cookie = {int(line.split('cookie="')[1].split('"')[0]): int(line.rsplit(" ", 1)[1])
                     for line in series}
        assert len(series) == group and by_cookie == {c: q for c, (q, _) in ss.items()}


@pytest.mark.parametrize("attach", ["kprobe", "fentry"])
def test_port_filter__another_listeners_drops_in_the_namespace_are_not_the_watched_ones(
        netns_pair, attach):
    """Two listeners in one namespace, qwatch watching one (--port, no
    events): the other's SYNs and final ACKs overflow its accept queue
    while the watched one's clients connect in between, on the same CPUs.
    The namespace's counters move for both; the watched listener's must
    be its own: its children (ss: its accept queue) and its drops (ss: its
    sk_drops, 0)."""
    server, client, addr = netns_pair.server, netns_pair.client, netns_pair.server_addr
    before = kernel_counts(server)
    rounds, per_round = 6, 2
    metrics_port = free_port()
    with ExitStack() as cleanup:
        watched, watched_port = tcp_listener(server, addr, 64)
        cleanup.callback(watched.close)
        other, other_port = tcp_listener(server, addr, 1)
        cleanup.callback(other.close)
        cleanup.enter_context(Background(
            [QWATCH, "--quiet", "--metrics", f"127.0.0.1:{metrics_port}", "--attach", attach,
             "--netns", str(server.inode), "--port", str(watched_port),
             "--ready-fd", "{ready_fd}"], stdout=subprocess.DEVNULL))
        for _ in range(rounds):
            for port in (other_port, watched_port):
                for conn in connect_many(client, addr, port, per_round):
                    cleanup.callback(conn.close)
        children = rounds * per_round
        wait_until(lambda: ss_listener(server, watched_port)[0] == children,
                   what=f"{children} children of the watched listener")
        wait_until(lambda: kernel_counts(server)["listen_overflows"] - before["listen_overflows"]
                   >= children - 2, what="the other listener's clients overflowing")
        nft.freeze_input(server)

        own = {field: 0 for field in KERNEL_NAMES}
        own["handshakes"] = children
        own["listen_drops"] = ss_listener(server, watched_port)[2]
        assert own["listen_drops"] == 0
        moved = {k: v - before[k] for k, v in kernel_counts(server).items()}
        assert moved["listen_drops"] > 0 and moved["handshakes"] > children, moved
        wait_until(lambda: metric_counts(metrics_port, watched_port) == own, timeout=30,
                   what="the watched listener's counters to be its own (qwatch, its own)",
                   state=lambda: (metric_counts(metrics_port, watched_port), own))
