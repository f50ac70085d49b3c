# SPDX-License-Identifier: GPL-2.0
"""The evidence in Documentation/handshake.rst, captured from a real run.

Each test drives TCP between the namespaces, checks the behaviour the page
describes against ss and qwatch, and compares what it saw with the file the
page includes from Documentation/evidence/: a difference fails the test
with a diff, so a change of the kernel's behaviour (or qwatch's) cannot
pass unnoticed. Nothing run-specific is written (no times, no ephemeral
ports: the ports are fixed); what may still differ between kernels is
masked before comparing (MASKS). With QW_UPDATE_EVIDENCE=1 the tests
rewrite the files instead (Documentation/testing.rst).
"""

import difflib
import os
import re
import socket

import pytest

from lib import REPO, nft
from lib.cmd import run, wait_until
from lib.kernel import ss_listener
from lib.netns import AcceptThread, socket_in
from lib.qwatch import QwatchStream, free_port, metric_value, scrape
from lib.tcp import fastopen_connect

EVIDENCE = os.path.join(REPO, "Documentation", "evidence")
UPDATE = os.environ.get("QW_UPDATE_EVIDENCE") == "1"
SHOWN = ("syn_recv", "ack_complete", "accept")
# What the evidence may say differently on another kernel: the function a
# blocked accept() sleeps in (AcceptThread.blocked() checks it is one of
# accept's).
MASKS = [(re.compile(r"\(wchan [^)]*\)"), "(wchan FUNCTION)")]


def syn_recv_ports(ns, port):
    """Peer ports of the request socks ss lists for @port."""
    out = run(["ss", "-Htn", "state", "syn-recv", f"sport = :{port}"], ns=ns).stdout
    return sorted(int(line.split()[-1].rsplit(":", 1)[1]) for line in out.splitlines())


class HeldClients:
    """TCP clients from fixed source ports whose final ACKs the client's
    namespace drops until let through one by one."""

    def __init__(self, pair, port, sports):
        self.pair = pair
        self.held = nft.output_rule(
            pair.client, f"tcp sport {sports[0]}-{sports[-1]} tcp flags & (syn | ack) == ack drop")
        self.sockets = []
        for sport in sports:
            client = socket_in(pair.client, socket.AF_INET, socket.SOCK_STREAM)
            client.bind((pair.client_addr, sport))
            client.setblocking(False)
            client.connect_ex((pair.server_addr, port))
            self.sockets.append(client)

    def let_through(self, sport):
        # The client sends its ACK again when the server's SYN-ACK
        # retransmission arrives; from now on that one passes.
        self.held.insert_rule("output", f"tcp sport {sport} accept")

    def close(self):
        for sock in self.sockets:
            sock.close()


class Scene:
    """A TCP listener on a fixed port watched by qwatch, with one request
    per source port in @sports waiting in its SYN queue (final ACKs held);
    .lines starts the evidence with the requests' syn_recv events."""

    def __init__(self, pair, port, sports):
        self.pair, self.port, self.sports = pair, port, sports
        self.listener = socket_in(pair.server, socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind((pair.server_addr, port))
        # Backlog 16: with more than half as many requests as the backlog
        # (and 8 at least), the timer would prune requests held past two
        # timeouts, before their ACK is let through.
        self.listener.listen(16)
        self.qwatch = QwatchStream("--netns", pair.server.name, "--port", str(port))
        self.clients = HeldClients(pair, port, sports)
        self.qwatch.wait_for(lambda q: len(self.shown()) == len(sports),
                             what=f"{len(sports)} syn_recv events")
        self.lines = [f"# {len(sports)} clients from ports {sports[0]}-{sports[-1]}, "
                      "final ACKs held"]
        self.lines += [line(e) for e in self.shown()]

    def shown(self):
        return [e for e in self.qwatch.select(lport=self.port) if e["event"] in SHOWN]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.qwatch.stop()
        self.clients.close()
        self.listener.close()


def line(event):
    return (f"{event['event']:<13} peer {event['raddr']}:{event['rport']}  "
            f"syn_queue {event['syn_queue']}  accept_queue {event['accept_queue']}")


def masked(text):
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


def check_evidence(name, lines):
    """Fails if @lines differ from Documentation/evidence/@name (after
    MASKS), showing the diff; rewrites the file with QW_UPDATE_EVIDENCE=1."""
    path = os.path.join(EVIDENCE, name)
    seen = "\n".join(lines) + "\n"
    if UPDATE:
        with open(path, "w") as f:
            f.write(seen)
        return
    with open(path) as f:
        committed = f.read()
    if masked(seen) != masked(committed):
        diff = difflib.unified_diff(masked(committed).splitlines(), masked(seen).splitlines(),
                                    f"Documentation/evidence/{name}", "this run", lineterm="")
        pytest.fail(f"the evidence differs from Documentation/evidence/{name}:\n"
                    + "\n".join(diff) + "\n(if the new behaviour is right, rerun with "
                    "QW_UPDATE_EVIDENCE=1 and review the change: Documentation/testing.rst)",
                    pytrace=False)


def test_an_ack_completes_exactly_its_own_request(netns_pair, one_cpu):
    server, port, sports = netns_pair.server, 8080, list(range(40001, 40006))
    with Scene(netns_pair, port, sports) as scene:
        assert syn_recv_ports(server, port) == sports
        lines = scene.lines
        lines.append(f"# ss -tn state syn-recv: peers {' '.join(map(str, sports))}")

        scene.clients.let_through(40003)
        lines.append("# only the final ACK from port 40003 is let through")
        scene.qwatch.wait_for(lambda q: len(scene.shown()) == len(sports) + 1, timeout=60,
                              what="the one ack_complete")
        wait_until(lambda: ss_listener(server, port)[0] == 1, what="one child per ss")
        [completed] = scene.shown()[len(sports):]
        assert (completed["event"], completed["rport"]) == ("ack_complete", 40003)
        assert (completed["syn_queue"], completed["accept_queue"]) == (len(sports) - 1, 1)
        left = [p for p in sports if p != 40003]
        assert syn_recv_ports(server, port) == left
        lines.append(line(completed))
        lines.append(f"# ss -tn state syn-recv: peers {' '.join(map(str, left))}")
    check_evidence("ack-finds-its-request.txt", lines)


def test_accept_sleeps_until_one_handshake_completes(netns_pair, one_cpu):
    server, port, sports = netns_pair.server, 8081, [40011, 40012, 40013]
    with Scene(netns_pair, port, sports) as scene:
        lines = scene.lines
        accepter = AcceptThread(scene.listener)
        wait_until(accepter.blocked, what="accept() to block")
        assert syn_recv_ports(server, port) == sports and ss_listener(server, port)[0] == 0
        with open(f"/proc/{accepter.native_id}/wchan") as f:
            wchan = f.read()
        lines.append(f"# accept() called: it sleeps in the kernel (wchan {wchan}) with "
                     f"{len(sports)} requests in the SYN queue and none in the accept queue")

        scene.clients.let_through(40012)
        lines.append("# only the final ACK from port 40012 is let through")
        accepter.join(60)
        assert not accepter.is_alive() and accepter.peer == (netns_pair.client_addr, 40012)
        scene.qwatch.wait_for(lambda q: len(scene.shown()) == len(sports) + 2,
                              what="ack_complete, accept")
        completed, accepted = scene.shown()[len(sports):]
        assert (completed["event"], completed["rport"]) == ("ack_complete", 40012)
        assert (accepted["event"], accepted["rport"]) == ("accept", 40012)
        left = [p for p in sports if p != 40012]
        assert syn_recv_ports(server, port) == left
        lines += [line(completed), line(accepted)]
        lines.append(f"# accept() returned {accepter.peer[0]}:{accepter.peer[1]}; "
                     f"ss -tn state syn-recv: peers {' '.join(map(str, left))}")
    check_evidence("accept-sleeps-on-the-accept-queue.txt", lines)


def test_a_syncookie_connection_skips_the_syn_queue(netns_pair, one_cpu):
    """tcp_syncookies=2 answers every SYN with a cookie, isolating the path
    a flood takes with the default (1) once the SYN queue is full
    (test_qwatch_counters.py runs that)."""
    server, port, sport = netns_pair.server, 8082, 40021
    run(["sysctl", "-qw", "net.ipv4.tcp_syncookies=2"], ns=server)
    listener = socket_in(server, socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((netns_pair.server_addr, port))
    listener.listen(8)
    metrics_port = free_port()
    with QwatchStream("--netns", server.name, "--port", str(port),
                      "--metrics", f"127.0.0.1:{metrics_port}") as qwatch:
        clients = HeldClients(netns_pair, port, [sport])
        try:
            wait_until(lambda: metric_value(scrape(metrics_port), "qwatch_syncookies_sent_total",
                                            lport=port) == 1, what="one cookie sent")
            [client] = clients.sockets
            wait_until(lambda: connect_done(client), what="the client connected")
            assert syn_recv_ports(server, port) == [] and ss_listener(server, port)[0] == 0
            assert not qwatch.select(lport=port, event="syn_recv")
            lines = [f"# tcp_syncookies=2: every SYN is answered with a cookie; the final ACK "
                     f"from port {sport} is held",
                     "# the client is connected; the server has no request sock: "
                     "ss -tn state syn-recv: none, accept queue 0, no syn_recv event, "
                     "qwatch syncookies_sent 1"]
            clients.let_through(sport)
            client.send(b"x")
            lines.append("# the client sends data: the segment carries the ACK, let through")
            completed = qwatch.wait_for(lambda q: q.latest(event="ack_complete", lport=port),
                                        what="the cookie's ack_complete")
            assert (completed["rport"], completed["path"]) == (sport, "syncookie")
            assert (completed["syn_queue"], completed["accept_queue"]) == (0, 1)
            wait_until(lambda: ss_listener(server, port)[0] == 1, what="one child per ss")
            text = scrape(metrics_port)
            recv = metric_value(text, "qwatch_syncookies_recv_total", lport=port)
            assert recv == 1
            lines.append(line(completed) + f"  path {completed['path']}")
            lines.append("# the child went straight to the accept queue; qwatch "
                         f"syncookies_recv {int(recv)}")
        finally:
            clients.close()
            listener.close()
    check_evidence("syncookie-skips-the-syn-queue.txt", lines)


def test_a_fastopen_child_is_queued_at_syn_time(netns_pair, one_cpu):
    """Server TFO is off by default (tcp_fastopen=1: clients only)."""
    server, port, sport = netns_pair.server, 8083, 40031
    run(["sysctl", "-qw", "net.ipv4.tcp_fastopen=3"], ns=server)
    listener = socket_in(server, socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((netns_pair.server_addr, port))
    listener.listen(8)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 8)
    listener.settimeout(10)
    with QwatchStream("--netns", server.name, "--port", str(port)) as qwatch:
        # A first connection fetches the client's TFO cookie.
        with socket_in(netns_pair.client, socket.AF_INET, socket.SOCK_STREAM) as first:
            fastopen_connect(first, (netns_pair.server_addr, port), b"cookie?")
            listener.accept()[0].close()
        nft.output_rule(netns_pair.client, f"tcp sport {sport} tcp flags & (syn | ack) == ack drop")
        client = socket_in(netns_pair.client, socket.AF_INET, socket.SOCK_STREAM)
        try:
            client.bind((netns_pair.client_addr, sport))
            fastopen_connect(client, (netns_pair.server_addr, port), b"hello")
            lines = ["# tcp_fastopen=3 on the server; the client has its cookie from a first "
                     "connection",
                     f"# from port {sport}: a SYN carrying the cookie and 'hello'; the client's "
                     "final ACK is held"]
            completed = qwatch.wait_for(
                lambda q: q.latest(event="ack_complete", lport=port, rport=sport),
                what="the TFO child's ack_complete")
            assert completed["path"] == "fastopen" and completed["accept_queue"] == 1
            assert not qwatch.select(lport=port, event="syn_recv", rport=sport)
            lines.append(line(completed) + f"  path {completed['path']}")
            child, peer = listener.accept()
            with child:
                child.settimeout(10)
                data = child.recv(16)
            assert peer == (netns_pair.client_addr, sport) and data == b"hello"
            lines.append(f"# accept() returned {peer[0]}:{peer[1]} before any final ACK "
                         f"arrived, and read {data.decode()!r}, the SYN's data")
        finally:
            client.close()
            listener.close()
    check_evidence("fastopen-child-at-syn-time.txt", lines)


def connect_done(sock):
    try:
        sock.getpeername()
        return True
    except OSError:
        return False
