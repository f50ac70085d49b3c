# SPDX-License-Identifier: GPL-2.0
"""The evidence in Documentation/handshake.rst, captured from a real run.

Each test drives TCP between the namespaces, checks the behaviour the page
describes against ss and qwatch, and compares what it saw with the file the
page includes from Documentation/evidence/: a difference fails the test
with a diff, so a change of the kernel's behaviour (or qwatch's) cannot
pass unnoticed. The ports are fixed, so nothing ephemeral is written; the
event transcripts hold no times. The `qwatch --queues` screens do (the
clock, ages, timers, SYN-ACKs sent again so far), and the namespace's name
and the server's pid: these, and what may differ between kernels, are
masked before comparing (MASKS), and what the screens show is asserted
against the kernel's own accounts (ss, accept()'s peers) besides. With
QW_UPDATE_EVIDENCE=1 the tests rewrite instead the files whose masked text
changed (Documentation/testing.rst).
"""

import difflib
import os
import re
import socket

import pytest

from lib import REPO, nft
from lib.cmd import run, wait_until
from lib.kernel import ss_established_recv_q, ss_listener, ss_syn_recv_requests
from lib.netns import AcceptThread, socket_in
from lib.qwatch import QWATCH, QwatchStream, TextStream, free_port, metric_value, scrape
from lib.tcp import fastopen_connect

EVIDENCE = os.path.join(REPO, "Documentation", "evidence")
UPDATE = os.environ.get("QW_UPDATE_EVIDENCE") == "1"
SHOWN = ("syn_recv", "ack_complete", "accept")
# What the evidence may say differently on another kernel: the function a
# blocked accept() sleeps in (AcceptThread.blocked() checks it is one of
# accept's). What a --queues screen says differently in every run: the
# clock, the server namespace's random name, the pid holding the listener,
# the SYN-ACK retransmissions qwatch counted since it started (the table's
# SYNACK column), and each entry's age, and a request's SYN-ACKs sent again,
# timer and youth, which depend on when the screen was taken relative to
# the retransmission timer (the tests check the counts against ss instead).
_LISTENER_ROW = (r"^(?P<head>\S+ +tcp +\S+ +\S+ +\[[^]]*\] +\d+ +\S+ +\[[^]]*\] +\d+ +\d+ +)"
                 r"\d+(?P<tail>.*) (?P<comm>\S+)\[\d+\]$")
MASKS = [(re.compile(r"\(wchan [^)]*\)"), "(wchan FUNCTION)"),
         (re.compile(r"^qwatch \d\d:\d\d:\d\d$", re.M), "qwatch HH:MM:SS"),
         (re.compile(_LISTENER_ROW, re.M), r"\g<head>SYNACK\g<tail> \g<comm>[PID]"),
         (re.compile(r"\bqw-srv-[0-9a-f]{8}\b"), "qw-srv-NETNS"),
         (re.compile(r"\bage +\S+"), "age AGE"),
         (re.compile(r"\bsynack +\d+ +timer +\S+(?: +young)?"), "synack N  timer T")]


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
        # The held requests must outlive the screens taken of them (a
        # `--once` each, retried while a SYN-ACK retransmission falls in
        # between, slow on a loaded emulated machine), and one must still
        # have a SYN-ACK to come when its ACK is let through: the client
        # sends its ACK again only in answer to one. With the default 5 the
        # last comes 31 s after the SYN and a scene running longer failed
        # (flaky); 8 puts it at 255 s. The default count itself is tested
        # in test_differential.py and test_tcp_queues.py.
        run(["sysctl", "-qw", "net.ipv4.tcp_synack_retries=8"], ns=pair.server)
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


# The options of every --queues screen in the evidence: the one TCP
# listener of the scene, no colours.
SCREEN_ARGS = ("--queues", "--no-color", "--proto", "tcp")
_ENTRY = re.compile(r"^ {4}(?P<queue>SYN-Q|ACCEPT-Q) +(?P<rest>.*?)\s*$")


def queues_once(ns, port):
    """One `qwatch --queues --once` screen of the listener on @port in @ns,
    as lines."""
    out = run([QWATCH, *SCREEN_ARGS, "--once", "--netns", ns.name, "--port", str(port)]).stdout
    return out.rstrip("\n").splitlines()


def listed(screen):
    """What a --queues screen of one TCP listener shows: {"syn_queue",
    "accept_queue": the counts of its row, "SYN-Q": [((raddr, rport),
    SYN-ACKs sent again)] oldest first, "ACCEPT-Q": [(raddr, rport)] in
    accept() order}. Fails on a capped list (none is capped here)."""
    rows = [line.split() for line in screen if re.match(r"^\S+ +tcp ", line)]
    assert len(rows) == 1, f"not one TCP listener's screen: {screen}"
    [row] = rows
    shown = {"syn_queue": int(row[3].split("/")[0]), "accept_queue": int(row[6].split("/")[0]),
             "SYN-Q": [], "ACCEPT-Q": []}
    for line in screen:
        entry = _ENTRY.match(line)
        if not entry or entry["rest"] == "(empty)":
            continue
        peer = re.match(r"#\d+ +([\d.]+):(\d+) +age ", entry["rest"])
        assert peer, f"not an entry of the queue: {line!r}"
        peer = (peer[1], int(peer[2]))
        if entry["queue"] == "SYN-Q":
            synack = re.search(r"\bsynack +(\d+)\b", entry["rest"])
            shown["SYN-Q"].append((peer, int(synack[1])))
        else:
            shown["ACCEPT-Q"].append(peer)
    return shown


def requests_now(ns, port):
    """{(raddr, rport): SYN-ACKs sent again} of the listener's request socks, per ss -o."""
    return {peer: r["retrans"] for peer, r in ss_syn_recv_requests(ns, port).items()}


def screen_while_still(ns, port, take):
    """(take(), ss's requests) with the kernel's requests and their SYN-ACK
    retransmits the same before and after take(): retried while a SYN-ACK
    retransmission fell in between, so that the screen and ss describe one
    moment."""
    def attempt():
        before = requests_now(ns, port)
        screen = take()
        after = requests_now(ns, port)
        return (screen, after) if before == after else None
    return wait_until(attempt, timeout=40, interval=0.01,
                      what="a screen while the kernel's requests stood still")


def live_queues(ns, port):
    """`qwatch --queues` live, as plain text, on the listener on @port in
    @ns: for a screen while accept() sleeps. A qwatch attaching or
    detaching while accept() sleeps would cost that accept() its fexit
    (Documentation/qwatch.rst, Limitations), so this one attaches before
    accept() is called and is stopped after it returned."""
    return TextStream(*SCREEN_ARGS, "-i", "0.3", "--netns", ns.name, "--port", str(port))


def masked(text):
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


def check_evidence(name, lines):
    """Fails if @lines differ from Documentation/evidence/@name (after
    MASKS), showing the diff; rewrites the file with QW_UPDATE_EVIDENCE=1."""
    path = os.path.join(EVIDENCE, name)
    seen = "\n".join(lines) + "\n"
    try:
        with open(path) as f:
            committed = f.read()
    except FileNotFoundError:
        if not UPDATE:
            raise
        committed = None
    if UPDATE:
        # Only a change beyond the masks is rewritten: a screen's new
        # ages alone leave the committed file as it is.
        if committed is None or masked(seen) != masked(committed):
            with open(path, "w") as f:
                f.write(seen)
        return
    if masked(seen) != masked(committed):
        diff = difflib.unified_diff(masked(committed).splitlines(), masked(seen).splitlines(),
                                    f"Documentation/evidence/{name}", "this run", lineterm="")
        pytest.fail(f"the evidence differs from Documentation/evidence/{name}:\n"
                    + "\n".join(diff) + "\n(if the new behaviour is right, rerun with "
                    "QW_UPDATE_EVIDENCE=1 and review the change: Documentation/testing.rst)",
                    pytrace=False)


def test_an_ack_completes_exactly_its_own_request(netns_pair, one_cpu):
    """Besides the events, two --queues screens: the five requests, then,
    after the one ACK, the same requests less that one, which is the accept
    queue's only child, the one accept() then returns."""
    server, port, sports = netns_pair.server, 8080, list(range(40001, 40006))
    peers = [(netns_pair.client_addr, sport) for sport in sports]
    released = (netns_pair.client_addr, 40003)
    with Scene(netns_pair, port, sports) as scene:
        assert syn_recv_ports(server, port) == sports
        lines = scene.lines
        lines.append(f"# ss -tn state syn-recv: peers {' '.join(map(str, sports))}")

        screen, requests = screen_while_still(server, port, lambda: queues_once(server, port))
        shown = listed(screen)
        # Oldest first: the clients sent their SYNs in this order, one CPU.
        assert [peer for peer, _ in shown["SYN-Q"]] == peers
        assert dict(shown["SYN-Q"]) == requests, "the requests and SYN-ACK retransmits ss lists"
        assert shown["ACCEPT-Q"] == [] and ss_listener(server, port)[0] == 0
        assert (shown["syn_queue"], shown["accept_queue"]) == (len(sports), 0)
        screens = [f"# qwatch --queues --once -p {port}: {len(sports)} requests, oldest first; "
                   "the accept queue is empty", *screen]

        scene.clients.let_through(40003)
        lines.append("# only the final ACK from port 40003 is let through")
        # Up to one SYN-ACK backoff (128 s by the 8th) until it is sent again.
        scene.qwatch.wait_for(lambda q: len(scene.shown()) == len(sports) + 1, timeout=180,
                              what="the one ack_complete")
        wait_until(lambda: ss_listener(server, port)[0] == 1, what="one child per ss")
        [completed] = scene.shown()[len(sports):]
        assert (completed["event"], completed["rport"]) == ("ack_complete", 40003)
        assert (completed["syn_queue"], completed["accept_queue"]) == (len(sports) - 1, 1)
        left = [p for p in sports if p != 40003]
        assert syn_recv_ports(server, port) == left
        lines.append(line(completed))
        lines.append(f"# ss -tn state syn-recv: peers {' '.join(map(str, left))}")

        screen, requests = screen_while_still(server, port, lambda: queues_once(server, port))
        shown = listed(screen)
        # Exactly the released request moved; the others stayed, in order.
        assert [peer for peer, _ in shown["SYN-Q"]] == [p for p in peers if p != released]
        assert dict(shown["SYN-Q"]) == requests, "the requests and SYN-ACK retransmits ss lists"
        assert shown["ACCEPT-Q"] == [released]
        assert (shown["syn_queue"], shown["accept_queue"]) == (len(sports) - 1, 1)
        assert ss_listener(server, port)[0] == 1
        assert list(ss_established_recv_q(server, port)) == [released], "the one child, per ss"
        scene.listener.settimeout(10)
        child, peer = scene.listener.accept()
        child.close()
        assert peer == released, "accept() returns the accept queue's child"
        screens += ["# only the final ACK from port 40003 was let through: that request alone "
                    "left the SYN queue, its child is the accept queue's", *screen]
        screens.append(f"# accept() then returned {peer[0]}:{peer[1]}")
    check_evidence("ack-finds-its-request.txt", lines)
    check_evidence("ack-finds-its-request.queues.txt", screens)


def test_accept_sleeps_until_one_handshake_completes(netns_pair, one_cpu):
    """Besides the events, a --queues screen taken while accept() sleeps:
    the SYN queue holds the requests, the accept queue nothing. It comes
    from a live qwatch attached before accept() was called and stopped
    after it returned (live_queues()): a `--once` attaching meanwhile would
    cost the sleeping accept() its fexit, and the stream its accept event."""
    server, port, sports = netns_pair.server, 8081, [40011, 40012, 40013]
    peers = [(netns_pair.client_addr, sport) for sport in sports]
    with Scene(netns_pair, port, sports) as scene:
        lines = scene.lines
        live = live_queues(server, port)
        accepter = AcceptThread(scene.listener)
        wait_until(accepter.blocked, what="accept() to block")
        assert syn_recv_ports(server, port) == sports and ss_listener(server, port)[0] == 0
        with open(f"/proc/{accepter.native_id}/wchan") as f:
            wchan = f.read()
        lines.append(f"# accept() called: it sleeps in the kernel (wchan {wchan}) with "
                     f"{len(sports)} requests in the SYN queue and none in the accept queue")

        def next_screen():
            # The second screen begun from now on: the first one's dump may
            # have been taken just before.
            mark = live.mark()
            wait_until(lambda: len(live.screens_since(mark)) >= 2, timeout=30,
                       what="two screens of the live --queues view")
            return live.screens_since(mark)[1]
        screen, requests = screen_while_still(server, port, next_screen)
        # Nothing can have woken it: it slept while the screen was taken.
        assert accepter.is_alive() and accepter.blocked()
        shown = listed(screen)
        assert [peer for peer, _ in shown["SYN-Q"]] == peers
        assert dict(shown["SYN-Q"]) == requests, "the requests and SYN-ACK retransmits ss lists"
        assert shown["ACCEPT-Q"] == [] and ss_listener(server, port)[0] == 0
        assert (shown["syn_queue"], shown["accept_queue"]) == (len(sports), 0)
        screens = [f"# qwatch --queues -p {port}, a screen while accept() sleeps: "
                   f"{len(sports)} requests in the SYN queue, the accept queue empty", *screen]

        scene.clients.let_through(40012)
        lines.append("# only the final ACK from port 40012 is let through")
        # Up to one SYN-ACK backoff (128 s by the 8th: Scene) until it is sent again.
        accepter.join(180)
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
        live.stop()
    check_evidence("accept-sleeps-on-the-accept-queue.txt", lines)
    check_evidence("accept-sleeps-on-the-accept-queue.queues.txt", screens)


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
