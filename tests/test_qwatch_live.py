# SPDX-License-Identifier: GPL-2.0
"""qwatch as people use it: the first table, filters, IPv6, --events,
--hist latencies against a measured window, accepts it could not see, and
Prometheus scraping --metrics. Every number is checked against ss, /proc or
the kernel's counters."""

import array
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest

from lib import REPO, hsp, nft
from lib.cmd import Background, run, scaled, wait_until
from lib.defer import defer
from lib.kernel import nstat, ss_listener, ss_syn_recv
from lib.netns import connected, socket_in
from lib.proto import PROTOCOLS
from lib.qwatch import QWATCH, QwatchStream, TextStream, free_port, metric_value, once, scrape
from lib.tcp import connect_many, hold_final_acks, tcp_listener

REPORTS = os.path.join(REPO, "build", "reports")


def table_rows(out, port, proto):
    """The rows for @proto's local port @port of qwatch's plain-text tables
    (TCP and HSP ports are separate spaces): NETNS PROTO LOCAL
    SYN-Q(cur/max, bar) PEAK ACCEPT-Q(cur/max, bar) PEAK DROPS SYNACK HS/S
    ACC/S, split into fields."""
    return [line.split() for line in out.splitlines()
            if len(line.split()) > 2 and line.split()[1] == proto
            and line.split()[2].endswith(f":{port}")]


def test_first_table__shows_queues_that_filled_before_qwatch_started(netns_pair, hsp_module):
    """A TCP and an HSP listener, each with requests held in its SYN queue
    and children in its accept queue, all before qwatch starts: its first
    table already has the kernel's numbers."""
    server, client, addr = netns_pair.server, netns_pair.client, netns_pair.server_addr
    tcp, tcp_port = tcp_listener(server, addr, 8)
    done = connect_many(client, addr, tcp_port, 3)
    wait_until(lambda: ss_listener(server, tcp_port)[0] == 3, what="3 TCP children")
    acks_held = hold_final_acks(client, tcp_port)
    held = connect_many(client, addr, tcp_port, 2)
    wait_until(lambda: ss_syn_recv(server, tcp_port) == 2, what="2 TCP requests")

    hsp_listener, hsp_port = hsp.listen(server, addr, 8)
    hsp_clients = [hsp.connect(client, addr, hsp_port) for _ in range(2)]

    out = run([QWATCH, "--netns", server.name, "0.1", "1"]).stdout
    [tcp_row] = table_rows(out, tcp_port, "tcp")
    [hsp_row] = table_rows(out, hsp_port, "hsp")
    recv_q, send_q, _ = ss_listener(server, tcp_port)
    assert tcp_row[3] == f"{ss_syn_recv(server, tcp_port)}/{send_q}"
    assert tcp_row[6] == f"{recv_q}/{send_q}"
    proc = hsp.proc_listener(server, hsp_port)
    assert hsp_row[3] == f"{proc['syn_queue']}/{proc['accept_max']}"
    assert hsp_row[6] == f"{proc['accept_queue']}/{proc['accept_max']}"
    assert "watching tcp, hsp" in out

    acks_held.delete()
    for sock in done + held + hsp_clients + [tcp, hsp_listener]:
        sock.close()


@pytest.mark.parametrize("mode", [[], ["--queues"]], ids=["table", "queues"])
def test_resyncs_longer_than_the_interval__tables_keep_coming(netns_pair, mode):
    """A resync that takes longer than the interval (as 10 000 listeners'
    do at -i 0.25; here every one, at 1 ms): the next is due at once, in
    the modes that stream no events too, where nothing else wakes the
    reader. Each of the 25 tables counted shows the listener ss shows."""
    server, addr = netns_pair.server, netns_pair.server_addr
    listener, port = tcp_listener(server, addr, 8)
    defer(listener.close)
    out = run([QWATCH, "--netns", server.name, "--port", str(port), *mode, "0.001", "25"],
              timeout=60).stdout
    footers = [line for line in out.splitlines() if " lost events, watching " in line]
    assert len(footers) == 25, out[-2000:]
    if not mode:
        recv_q, send_q, _ = ss_listener(server, port)
        rows = table_rows(out, port, "tcp")
        assert len(rows) == 25 and all(row[6] == f"{recv_q}/{send_q}" for row in rows), rows


@pytest.mark.parametrize("attach", ["fentry", "kprobe"])
@pytest.mark.parametrize("proto", PROTOCOLS, ids=str)
def test_table_peaks__queues_filled_and_emptied_between_two_snapshots(netns_pair, hsp_module,
                                                                      proto, attach):
    """The table streams no events: its PEAK columns come from the probes,
    which note each queue's length after every segment they see. A --once
    over a long interval snapshots empty queues at its start and at its
    end; in between the SYN queue holds three requests and then the accept
    queue three children (as ss or /proc/net/hsp says), all gone again
    before the end. Both peaks are what the kernel said at those times."""
    server, client, addr = netns_pair.server, netns_pair.client, netns_pair.server_addr
    listener, port = proto.listen(server, addr, 8)
    queues = lambda: proto.queues(server, port)
    table = TextStream("--once", "--attach", attach, "--netns", server.name,
                       "--port", str(port), "600")
    held = nft.output_rule(client, f"{proto.final_ack_match(port)} drop")
    clients = proto.connect_all(client, addr, port, 3)
    wait_until(lambda: all(connected(sock) for sock in clients), what="every client connected")
    syn_peak = queues()["syn_queue"]
    held.delete()
    # The final ACKs come again with the next SYN-ACK retransmissions.
    wait_until(lambda: queues()["syn_queue"] == 0, timeout=60, what="the requests to complete")
    accept_peak = queues()["accept_queue"]
    children = [listener.accept()[0] for _ in range(accept_peak)]
    emptied = queues()
    assert (emptied["syn_queue"], emptied["accept_queue"]) == (0, 0)

    assert table.stop() == 0
    table.join_reader()
    [row] = table_rows("\n".join(table.lines), port, proto.name)
    # ... SYN-Q cur/max, [bar], PEAK, ACCEPT-Q cur/max, [bar], PEAK ...
    assert (row[3], row[6]) == ("0/8", "0/8")
    assert (int(row[5]), int(row[8])) == (syn_peak, accept_peak) == (3, 3)
    for sock in children + clients:
        sock.close()


@pytest.mark.parametrize("proto", PROTOCOLS, ids=str)
def test_table__a_listener_no_process_holds_gets_its_row_from_its_first_segment(
        netns_pair, hsp_module, proto):
    """A listener whose only reference is in flight in an SCM_RIGHTS
    message before qwatch starts: no file leads the snapshot to it, and the
    table streams no events. Once clients reach it, its row appears (from
    the probes' counters map) with the kernel's queues and no process."""
    server, client, addr = netns_pair.server, netns_pair.client, netns_pair.server_addr
    listener, port = proto.listen(server, addr, 8)
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    defer(sender.close)
    defer(receiver.close)
    sender.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                             array.array("i", [listener.fileno()]))])
    listener.close()
    live = TextStream("--netns", server.name, "--port", str(port), "0.3")
    rows = lambda screen: table_rows("\n".join(screen), port, proto.name)
    wait_until(lambda: live.screens_since(0), timeout=60, what="a first screen")
    assert rows(live.screens_since(0)[0]) == []

    clients = proto.connect_all(client, addr, port, 2)
    wait_until(lambda: proto.queues(server, port)["accept_queue"] == 2, timeout=30,
               what="2 children")
    mark = live.mark()
    wait_until(lambda: len(live.screens_since(mark)) >= 2, timeout=60, what="two more screens")
    [row] = rows(live.screens_since(mark)[1])
    kernel = proto.queues(server, port)
    # NETNS PROTO LOCAL SYN-Q [bar] PEAK ACCEPT-Q [bar] PEAK DROPS SYNACK HS/S ACC/S COOKIES/S PROCESS
    assert (row[3], row[6]) == (f"{kernel['syn_queue']}/{kernel['accept_max']}",
                                f"{kernel['accept_queue']}/{kernel['accept_max']}")
    assert row[-1] == "-"
    live.stop()

    _, fds, _, _ = socket.recv_fds(receiver, 16, 1)
    for fd in fds:
        os.close(fd)
    for sock in clients:
        sock.close()


def test_filters__port_proto_netns_name_and_pid(netns_pair, hsp_module):
    server, addr = netns_pair.server, netns_pair.server_addr
    tcp, tcp_port = tcp_listener(server, addr, 4)
    hsp_listener, hsp_port = hsp.listen(server, addr, 4)
    # A listener held by another process, for --pid.
    holder = Background(["ip", "netns", "exec", server.name, "/usr/bin/python3", "-c",
                         "import os, signal, socket, sys; s = socket.socket();"
                         " s.bind(('10.77.0.1', 0)); s.listen(1); os.write(int(sys.argv[1]), b'.');"
                         " signal.pause()", "{ready_fd}"])
    try:
        listed = lambda *args: {(e["proto"], e["lport"]) for e in once(*args)}
        in_server = listed("--netns", server.name)
        ours = {("tcp", tcp_port), ("hsp", hsp_port)}
        [theirs] = in_server - ours
        assert listed("--netns", str(server.inode)) == in_server
        assert listed("--netns", server.name, "--port", str(tcp_port)) == {("tcp", tcp_port)}
        assert listed("--netns", server.name, "--proto", "hsp") == {("hsp", hsp_port)}
        assert listed("--netns", server.name, "--proto", "tcp") == {("tcp", tcp_port), theirs}
        assert listed("--pid", str(holder.proc.pid)) == {theirs}
        assert listed("--netns", server.name, "--pid", str(os.getpid())) == ours
    finally:
        holder.stop()
        tcp.close()
        hsp_listener.close()


def test_ipv6_and_dual_stack__one_row_per_socket(netns_pair):
    """A dual-stack [::] listener with one IPv4 and one IPv6 client is one
    listener with two children; an IPv6-only listener shows its address."""
    server, client = netns_pair.server, netns_pair.client
    run(["ip", "-6", "addr", "add", "fd77::1/64", "dev", netns_pair.server_dev, "nodad"],
        ns=server)
    run(["ip", "-6", "addr", "add", "fd77::2/64", "dev", netns_pair.client_dev, "nodad"],
        ns=client)
    dual = socket_in(server, socket.AF_INET6, socket.SOCK_STREAM)
    dual.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    dual.bind(("::", 0))
    dual.listen(4)
    port = dual.getsockname()[1]
    v6only, v6_port = tcp_listener(server, "fd77::1", 4, family=socket.AF_INET6)
    clients = (connect_many(client, netns_pair.server_addr, port, 1)
               + connect_many(client, "fd77::1", port, 1, family=socket.AF_INET6))
    wait_until(lambda: ss_listener(server, port)[0] == 2, what="two children, v4 and v6")

    rows = [e for e in once("--netns", server.name) if e["lport"] == port]
    assert len(rows) == 1
    assert (rows[0]["family"], rows[0]["laddr"]) == ("inet6", "::")
    assert rows[0]["accept_queue"] == ss_listener(server, port)[0]
    [v6_row] = [e for e in once("--netns", server.name) if e["lport"] == v6_port]
    assert v6_row["laddr"] == "fd77::1"
    for sock in clients + [dual, v6only]:
        sock.close()


def test_events__one_line_per_transition_with_queues_after_it(netns_pair):
    server, client, addr = netns_pair.server, netns_pair.client, netns_pair.server_addr
    listener, port = tcp_listener(server, addr, 4)
    qwatch = Background([QWATCH, "--events", "--netns", server.name, "--port", str(port),
                         "--ready-fd", "{ready_fd}"])
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(qwatch.proc.stdout), daemon=True)
    reader.start()
    try:
        [conn] = connect_many(client, addr, port, 1)
        wait_until(lambda: ss_listener(server, port)[0] == 1, what="the child")
        child, peer = listener.accept()
        # Every line shows "accept N/M": the accept line is the one whose
        # event is accept.
        wait_until(lambda: any(line.split()[1:2] == ["accept"] for line in lines),
                   what="the accept line")
    finally:
        qwatch.stop()
    reader.join(scaled(10))  # at EOF: every line qwatch printed is in
    kinds = [line.split()[1] for line in lines]
    assert kinds == ["syn_recv", "ack_complete", "accept"], lines
    accept_line = lines[-1]
    assert f"{addr}:{port}" in accept_line and f"peer {peer[0]}:{peer[1]}" in accept_line
    assert "accept 0/4" in accept_line and re.search(r"waited \d+\.\d+ ms", accept_line)
    assert re.search(r"handshake \d+\.\d+ ms", lines[1]) and "accept 1/4" in lines[1]
    for sock in (child, conn, listener):
        sock.close()


def log2_bucket_of(ns):
    us = ns // 1000
    return max(us.bit_length() - 1, 0)


def parse_histograms(out):
    """{title: {bucket index: count}} of bcc-style log2 histograms."""
    histograms, current = {}, None
    for line in out.splitlines():
        if line.startswith(("handshake time", "accept-queue wait")):
            current = histograms.setdefault(line.split(",")[0], {})
            continue
        match = re.match(r"\s*(\d+) -> (\d+)\s*: (\d+)", line)
        if match and current is not None:
            low = int(match.group(1))
            current[low.bit_length() - 1 if low else 0] = int(match.group(3))
    return histograms


def test_hist__latencies_fall_inside_the_measured_window(netns_pair):
    """The final ACK is held back for a while, then the child waits before
    accept(): qwatch's handshake time and accept wait must lie between the
    bounds the test measured around them, in --json and in --hist."""
    server, client, addr = netns_pair.server, netns_pair.client, netns_pair.server_addr
    listener, port = tcp_listener(server, addr, 4)
    hist = Background([QWATCH, "--events", "--hist", "--netns", server.name, "--port", str(port),
                       "--ready-fd", "{ready_fd}"])
    with QwatchStream("--netns", server.name, "--port", str(port)) as stream:
        acks_held = hold_final_acks(client, port)
        before_syn = time.monotonic()
        [conn] = connect_many(client, addr, port, 1)
        wait_until(lambda: ss_syn_recv(server, port) == 1, what="the request")
        request_seen = time.monotonic()
        # The request waits for the next SYN-ACK retransmission after this.
        # Stamped before the release: no final ACK can pass earlier.
        released = time.monotonic()
        acks_held.delete()
        wait_until(lambda: ss_listener(server, port)[0] == 1, timeout=60, what="the child")
        child_seen = time.monotonic()
        stream.wait_for(lambda q: q.latest(event="ack_complete"), what="ack_complete")
        before_accept = time.monotonic()
        child, _ = listener.accept()
        accepted = time.monotonic()
        event = stream.wait_for(lambda q: q.latest(event="accept"), what="accept")
        handshake_ns = stream.latest(event="ack_complete")["latency_ns"]
        wait_ns = event["latency_ns"]
    hist.proc.send_signal(signal.SIGINT)
    out, _ = hist.proc.communicate(timeout=30)

    assert (released - request_seen) * 1e9 <= handshake_ns <= (child_seen - before_syn) * 1e9
    assert (before_accept - child_seen) * 1e9 <= wait_ns <= (accepted - released) * 1e9
    histograms = parse_histograms(out)
    handshake = histograms["handshake time"]
    waited = histograms["accept-queue wait"]
    assert {b: n for b, n in handshake.items() if n} == {log2_bucket_of(handshake_ns): 1}, out
    assert {b: n for b, n in waited.items() if n} == {log2_bucket_of(wait_ns): 1}, out
    for sock in (child, conn, listener):
        sock.close()


def test_accept_blocked_before_qwatch_started__counted(netns_pair):
    """accept() is already asleep when qwatch attaches, so no probe sees it
    return; the resync still counts it (the accept queue is shorter than the
    events explain), and the accept queue is right again."""
    server, addr = netns_pair.server, netns_pair.server_addr
    listener, port = tcp_listener(server, addr, 4)
    accepted = []
    sleeper = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    sleeper.start()
    wait_until(lambda: "inet_csk_accept" in open(f"/proc/{os.getpid()}/task/{sleeper.native_id}"
                                                 "/stack").read(), what="accept() to block")
    metrics_port = free_port()
    with Background([QWATCH, "--metrics", f"127.0.0.1:{metrics_port}", "--netns", server.name,
                     "-i", "0.2", "--ready-fd", "{ready_fd}"], stdout=subprocess.DEVNULL):
        [conn] = connect_many(netns_pair.client, addr, port, 1)
        sleeper.join(30)
        assert accepted
        wait_until(lambda: metric_value(scrape(metrics_port), "qwatch_accepts_total",
                                        lport=port) == 1, what="the accept counted")
        text = scrape(metrics_port)
        assert metric_value(text, "qwatch_handshakes_total", lport=port) == 1
        assert metric_value(text, "qwatch_accept_queue_length", lport=port) == \
            ss_listener(server, port)[0] == 0
    accepted[0][0].close()
    conn.close()
    listener.close()


def blocked_in_accept(thread):
    with open(f"/proc/{os.getpid()}/task/{thread.native_id}/stack") as f:
        return "inet_csk_accept" in f.read()


@pytest.mark.parametrize("mode", ["fentry", "kprobe"])
@pytest.mark.parametrize("proto", PROTOCOLS, ids=lambda p: p.name)
def test_accept__more_callers_blocked_than_a_kretprobe_has_instances__every_one_seen(
        netns_pair, hsp_module, proto, mode):
    """Prefork servers and thread pools block many threads in accept(): a
    kretprobe has max(10, 2 x CPUs) instances, one per caller blocked
    inside. Every accept the callers got must be an accept event, and
    counted."""
    callers = 64
    server, addr = netns_pair.server, netns_pair.server_addr
    accepted = []
    metrics_port = free_port()
    with contextlib.ExitStack() as cleanup, \
            QwatchStream("--attach", mode, "--netns", server.name,
                         "--metrics", f"127.0.0.1:{metrics_port}") as qwatch:
        listener, port = proto.listen(server, addr, callers)
        cleanup.callback(listener.close)
        threads = [threading.Thread(target=lambda: accepted.append(listener.accept()[0]),
                                    daemon=True) for _ in range(callers)]
        # Wakes whichever callers are still blocked (close() would not).
        cleanup.callback(lambda: listener.shutdown(socket.SHUT_RDWR))
        for thread in threads:
            thread.start()
        wait_until(lambda: all(blocked_in_accept(t) for t in threads),
                   what=f"{callers} threads blocked in accept()")
        for _ in range(callers):
            client = cleanup.enter_context(proto.socket(netns_pair.client))
            client.connect((addr, port))
        for thread in threads:
            thread.join(scaled(30))
        for child in accepted:
            cleanup.enter_context(child)
        assert len(accepted) == callers
        qwatch.wait_for(lambda q: len(q.select(event="accept", lport=port)) == callers,
                        what=f"{callers} accept events",
                        state=lambda q: f"{len(q.select(event='accept', lport=port))} accepts")
        assert proto.queues(server, port)["accept_queue"] == 0
        assert metric_value(scrape(metrics_port), "qwatch_accepts_total", lport=port) == callers


class Prometheus(Background):
    """The real Prometheus server (Debian's), scraping @targets every second."""

    def __init__(self, targets, workdir):
        self.port = free_port()
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: qwatch\n    static_configs:\n"
                    f"      - targets: {json.dumps(targets)}\n")
        super().__init__(["prometheus", f"--config.file={config}",
                          f"--storage.tsdb.path={os.path.join(workdir, 'data')}",
                          f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                         ready=False, stdout=subprocess.DEVNULL)
        wait_until(self._ready, timeout=120, what="Prometheus to start")

    def _ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=5):
                return True
        except OSError:
            assert self.proc.poll() is None, self.proc.stderr.read()
            return False

    def query(self, expr):
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?"
               + urllib.parse.urlencode({"query": expr}))
        with urllib.request.urlopen(url, timeout=10) as reply:
            return json.load(reply)


def test_metrics__scraped_by_prometheus_match_ss_and_nstat(netns_pair, tmp_path):
    server, client, addr = netns_pair.server, netns_pair.client, netns_pair.server_addr
    listener, port = tcp_listener(server, addr, 5)
    metrics_port = free_port()
    opens = nstat(server, "TcpPassiveOpens")
    with Background([QWATCH, "--metrics", f"127.0.0.1:{metrics_port}", "--netns", server.name,
                     "-i", "0.5", "--ready-fd", "{ready_fd}"], stdout=subprocess.DEVNULL), \
            Prometheus([f"127.0.0.1:{metrics_port}"], str(tmp_path)) as prometheus:
        conns = connect_many(client, addr, port, 3)
        wait_until(lambda: ss_listener(server, port)[0] == 3, what="3 children")
        expr = f'qwatch_accept_queue_length{{lport="{port}",netns="{server.inode}",proto="tcp"}}'

        def stored_value():
            result = prometheus.query(expr)["data"]["result"]
            return result and float(result[0]["value"][1]) == ss_listener(server, port)[0] \
                and result
        result = wait_until(stored_value, timeout=60, what="Prometheus to store the queue length")
        handshakes = prometheus.query(f'qwatch_handshakes_total{{lport="{port}"}}')
        text = scrape(metrics_port)
    assert float(handshakes["data"]["result"][0]["value"][1]) == \
        nstat(server, "TcpPassiveOpens") - opens == 3
    assert metric_value(text, "qwatch_accept_queue_max", lport=port) == ss_listener(server, port)[1]
    assert metric_value(text, "qwatch_handshake_duration_seconds_count", lport=port) == 3
    os.makedirs(REPORTS, exist_ok=True)
    with open(os.path.join(REPORTS, "prometheus-query.json"), "w") as f:
        json.dump({"query": expr, "result": result}, f)
    for sock in conns + [listener]:
        sock.close()


def test_metrics__openmetrics_when_asked_and_404_elsewhere():
    metrics_port = free_port()
    with Background([QWATCH, "--metrics", f"127.0.0.1:{metrics_port}", "--ready-fd",
                     "{ready_fd}"], stdout=subprocess.DEVNULL):
        request = urllib.request.Request(
            f"http://127.0.0.1:{metrics_port}/metrics",
            headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read().decode()
            assert reply.headers["Content-Type"].startswith("application/openmetrics-text")
        assert body.endswith("# EOF\n") and "# TYPE qwatch_accepts counter" in body
        assert "# TYPE qwatch_accepts_total counter" in scrape(metrics_port)
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/nothing", timeout=10)
        assert missing.value.code == 404


def test_metrics__port_in_use__one_line_and_status_1():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = run([QWATCH, "--metrics", f"127.0.0.1:{port}"], check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and "--metrics" in proc.stderr \
        and "in use" in proc.stderr
