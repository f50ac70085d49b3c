# SPDX-License-Identifier: GPL-2.0
"""qwatch --queues: which requests are in a listener's SYN queue and which
children in its accept queue, in order, for TCP and HSP, against the
kernel's own accounts: ss -o (TCP's request socks with their timers and
retransmits), /proc/net/hsp (HSP's, with its retrans column), ss Recv-Q, and
the order in which accept() then returns the children (getpeername()).

Requests are held in the SYN queue by dropping the clients' final ACKs at
the server's input (lib.nft); the kernel's default sysctls stay as they are
(syncookies on: the queues here never come near full), except where a test
says why. Ages are checked against windows the test measured around the
SYN-ACK or the handshake, and between two dumps against the time between
them.
"""

import array
import os
import re
import socket
import time

import pytest

from lib import hsp, nft
from lib.cmd import run, scaled, wait_until
from lib.defer import defer
from lib.netns import NetNSPair, connected, socket_in
from lib.kernel import nstat
from lib.proto import PROTOCOLS, TCP
from lib.qwatch import QWATCH, QwatchStream, TextStream, free_port, once, screens

pytestmark = [
    pytest.mark.usefixtures("hsp_module"),
    # qwatch attaches while SYN-ACKs are retransmitted and handshakes run:
    # under emulation a vCPU running a function the other one patches can
    # spin for good (Documentation/testing.rst).
    pytest.mark.usefixtures("one_cpu"),
]

by_protocol = pytest.mark.parametrize("proto", PROTOCOLS, ids=lambda p: p.name)

# libbpf finds the kernel's CONFIG_HZ in one of these; without it qwatch may
# give times as null (the schema allows it), with it they must be numbers.
TIMES_KNOWN = any(os.path.exists(path) for path in
                  (f"/boot/config-{os.uname().release}", "/proc/config.gz"))
# Jiffies (4 ms at HZ=250) and rounding to the millisecond, on both sides.
SLACK_S = 0.05


def peer(entry):
    return (entry["raddr"], entry["rport"])


def peers(entries):
    return [peer(e) for e in entries]


class Dump:
    """One listener as `qwatch --queues --once --json` printed it, with
    the monotonic times before and after that run (the dump was taken in
    between)."""

    def __init__(self, listener, before, after):
        self.listener, self.before, self.after = listener, before, after
        self.syn = listener["syn_queue_entries"]
        self.accept = listener["accept_queue_entries"]


def dump_all(*args):
    """Every listener of `qwatch --queues --once --json @args`, and the
    monotonic times around the run."""
    before = time.monotonic()
    objects = once("--queues", *args)
    after = time.monotonic()
    for obj in objects:
        assert {"syn_queue_entries", "accept_queue_entries", "queue_dump_complete"} <= set(obj), \
            f"a listener without its queue dump: {obj}"
    return objects, before, after


def dump(proto, ns, port, *args):
    """The listener of @proto on @port in @ns, as --queues --once --json
    shows it (filtered by qwatch itself to that port, protocol and netns)."""
    objects, before, after = dump_all("--netns", ns.name, "--port", str(port),
                                      "--proto", proto.name, *args)
    mine = [o for o in objects if (o["netns"], o["proto"], o["lport"]) == (ns.inode, proto.name,
                                                                           port)]
    assert len(mine) == 1, f"{proto.name} listener on {port} in {ns}: {objects}"
    assert mine[0]["queue_dump_complete"] is True, mine[0]
    return Dump(mine[0], before, after)


def stable(read_oracle, action, what, timeout=40):
    """(action(), oracle) with the kernel's @read_oracle() the same before
    and after @action: retried while a SYN-ACK retransmission (or anything
    else the oracle shows) happened in between."""
    def attempt():
        before = read_oracle()
        result = action()
        after = read_oracle()
        return (result, after) if before == after else None
    return wait_until(attempt, timeout=timeout, interval=0.01, what=f"{what} while the kernel's "
                      "requests stood still")


def held_acks(proto, ns, *ports):
    """Drops, at @ns's input, the final ACKs sent to @ports: requests wait
    in the SYN queue (their clients believe they are connected). The
    table's chain is "input"; deleted at the end of the test."""
    rules = " ".join(f"{proto.final_ack_match(port)} drop;" for port in ports)
    return nft.Table(ns, f"chain input {{ type filter hook input priority 0; {rules} }}")


def release_one(table, proto, port, client):
    """Lets @client's final ACKs to @port through @table, and no one else's."""
    cport = client.getsockname()[1]
    table.insert_rule("input", f"{proto.final_ack_match(port)} {proto.from_port_match(cport)} "
                               "accept")


def connect_in_order(proto, ns, addr, port, count, source=None):
    """@count clients of @port, each connected (its SYN-ACK received, its
    final ACK sent) before the next one's SYN: the server got them in this
    order. Returns [(client, (monotonic before its SYN, after its SYN-ACK))]."""
    clients = []
    for _ in range(count):
        started = time.monotonic()
        client = proto.start_connect(ns, addr, port, source)
        wait_until(lambda: connected(client), timeout=30,
                   what=f"{proto.name} client {len(clients) + 1} of {count} connected")
        clients.append((client, (started, time.monotonic())))
    return clients


def accept_all(listener, count):
    """The peers of @count children accept() returns, in its order."""
    listener.settimeout(scaled(10))
    return [listener.accept()[0].getpeername() for _ in range(count)]


def assert_age(entry, window, dump, what):
    """@entry's age_ms fits an event that happened within @window
    (earliest, latest monotonic) and a dump taken within dump.before/after."""
    age = entry["age_ms"]
    if age is None:
        assert not TIMES_KNOWN, f"{what}: age null although the kernel config is readable"
        return
    earliest, latest = window
    low, high = dump.before - latest - SLACK_S, dump.after - earliest + SLACK_S
    assert low <= age / 1000 <= high, f"{what}: age {age} ms outside [{low:.3f}, {high:.3f}] s"


def assert_ages_grew(first, second, key, what):
    """Entries in both dumps aged by the time between the dumps."""
    earlier = {peer(e): e["age_ms"] for e in getattr(first, key)}
    later = {peer(e): e["age_ms"] for e in getattr(second, key)}
    low = second.before - first.after - SLACK_S
    high = second.after - first.before + SLACK_S
    assert low > 0
    for p in earlier.keys() & later.keys():
        if earlier[p] is None or later[p] is None:
            assert not TIMES_KNOWN, f"{what} {p}: age null although the kernel config is readable"
            continue
        grown = (later[p] - earlier[p]) / 1000
        assert low <= grown <= high, \
            f"{what} {p}: aged {grown:.3f} s between dumps {low:.3f} to {high:.3f} s apart"


def assert_timers(proto, syn_entries, retrans, timers_before, timers_after):
    """Each request's timer_ms: at most the kernel's backoff after that many
    retransmits (the timer is re-armed for 1 s << runs, TCP_TIMEOUT_INIT
    being HSP's too), and where the protocol shows its timers (ss -o for
    TCP) between what it showed after and before the dump (the timer was
    not re-armed in between). Negative means overdue (the schema allows
    it): ss then shows 0, and only the upper bound holds."""
    slack_ms = SLACK_S * 1000
    for entry in syn_entries:
        p, timer = peer(entry), entry["timer_ms"]
        if timer is None:
            assert not TIMES_KNOWN, f"{p}: timer null although the kernel config is readable"
            continue
        assert timer <= (1000 << retrans[p]) + slack_ms, (p, entry)
        if timers_before is not None:
            (after_ms, precision), (before_ms, _) = timers_after[p], timers_before[p]
            low = after_ms - precision - slack_ms if after_ms > 0 else float("-inf")
            assert low <= timer <= before_ms + precision + slack_ms, \
                f"{proto.name} {p}: timer {timer} ms, the kernel's {before_ms} then {after_ms}"


@by_protocol
def test_held_requests__the_dump_is_the_kernels_syn_queue_with_its_retransmits(
        netns_pair, proto):
    """Requests whose final ACK never arrives: the dumped SYN queue lists
    exactly the peers the kernel lists for the listener, oldest first,
    each with the kernel's count of SYN-ACKs sent again, young until its
    first retransmission, and with the timer runs the kernel counted."""
    pending = 4
    server, client, addr = netns_pair.server, netns_pair.client, netns_pair.server_addr
    listener, port = proto.listen(server, addr, 16)
    timer_runs_before = proto.request_timer_runs(server)
    held_acks(proto, server, port)
    clients = connect_in_order(proto, client, addr, port, pending)
    order = [c.getsockname() for c, _ in clients]
    windows = dict(zip(order, (w for _, w in clients)))

    def take(what):
        """A dump with the kernel's requests (and their retransmits and
        timer runs) the same before and after it, and ss's timers read
        just before and after it."""
        timers = {}

        def action():
            timers["before"] = proto.request_timers(server, port)
            result = dump(proto, server, port)
            timers["after"] = proto.request_timers(server, port)
            return result
        queues, (retrans, timer_runs) = stable(
            lambda: (proto.request_peers(server, port), proto.request_timer_runs(server)),
            action, what)
        return queues, retrans, timer_runs - timer_runs_before, timers

    def check(when):
        queues, retrans, timer_runs, timers = take(when)
        assert set(retrans) == set(order), f"the kernel's requests: {retrans}"
        assert peers(queues.syn) == order, f"{when}: oldest first"
        assert {peer(e): e["synack_retransmits"] for e in queues.syn} == retrans, when
        assert {peer(e): e["young"] for e in queues.syn} == \
            {p: n == 0 for p, n in retrans.items()}, when
        # Every retransmission was a timer run; every timer run either
        # retransmitted or (none here) expired the request.
        assert sum(e["timeouts"] for e in queues.syn) == timer_runs, when
        assert all(e["timeouts"] >= retrans[peer(e)] for e in queues.syn), when
        assert queues.accept == [] and proto.queues(server, port)["accept_queue"] == 0
        for entry in queues.syn:
            assert_age(entry, windows[peer(entry)], queues, f"{when}: request {peer(entry)}")
        assert_timers(proto, queues.syn, retrans, timers["before"], timers["after"])
        return retrans

    retrans = check("as soon as every client connected")
    if not all(n >= 1 for n in retrans.values()):
        # A precondition (the kernel's account), not a finding.
        wait_until(lambda: all(n >= 1 for n in proto.request_peers(server, port).values()),
                   timeout=30, what="every request's SYN-ACK sent again")
        check("after every request's first retransmission")
    listener.close()


@by_protocol
def test_children_queued__the_dump_is_the_order_accept_returns_them(netns_pair, proto):
    """A listener that does not accept: its dumped accept queue is the
    order in which accept() then returns the children, with the unread
    bytes ss shows where the protocol has a receive queue."""
    completed = 4
    server, client, addr = netns_pair.server, netns_pair.client, netns_pair.server_addr
    listener, port = proto.listen(server, addr, 8)
    started = time.monotonic()
    clients = proto.connect_all(client, addr, port, completed)
    wait_until(lambda: proto.queues(server, port)["accept_queue"] == completed, timeout=30,
               what=f"{completed} children")
    unread = None
    if proto.receives_data:
        # Different amounts, so that a child's bytes cannot pass for another's.
        for n, sock in enumerate(clients, 1):
            sock.send(b"x" * n)

        def every_childs_bytes():
            queued = proto.unread_bytes(server, port)
            return queued if sorted(queued.values()) == list(range(1, completed + 1)) else None
        unread = wait_until(every_childs_bytes, timeout=30, what="every child's bytes")
    settled = time.monotonic()

    queues = dump(proto, server, port)
    assert proto.queues(server, port)["accept_queue"] == completed
    accepted = accept_all(listener, completed)
    assert peers(queues.accept) == accepted
    assert set(accepted) == {c.getsockname() for c in clients}
    assert queues.syn == []
    rx = {peer(e): e["rx_bytes"] for e in queues.accept}
    assert rx == (unread if proto.receives_data else dict.fromkeys(accepted))
    for entry in queues.accept:
        # The handshake, or (TCP) the data, came after `started`, and
        # everything had arrived by `settled`.
        assert_age(entry, (started, settled), queues, f"child {peer(entry)}")
    listener.close()


@by_protocol
def test_releasing_one_ack__exactly_that_peer_moves_to_the_accept_queues_tail(netns_pair, proto):
    """Two children queued, three requests held. The middle request's ACK
    alone is let through: in the next dump that peer, and only it, has left
    the SYN queue and is the last child; the others kept their places and
    every entry aged by the time between the dumps."""
    server, client, addr = netns_pair.server, netns_pair.client, netns_pair.server_addr
    listener, port = proto.listen(server, addr, 16)
    proto.connect_all(client, addr, port, 2)
    wait_until(lambda: proto.queues(server, port)["accept_queue"] == 2, timeout=30,
               what="2 children")
    held = held_acks(proto, server, port)
    clients = connect_in_order(proto, client, addr, port, 3)
    order = [c.getsockname() for c, _ in clients]
    oracle = lambda: (proto.request_peers(server, port), proto.queues(server, port)["accept_queue"])

    first, (requests, children) = stable(oracle, lambda: dump(proto, server, port), "a first dump")
    assert set(requests) == set(order) and children == 2
    assert peers(first.syn) == order
    assert len(first.accept) == 2

    chosen = clients[1][0]
    released = time.monotonic()
    release_one(held, proto, port, chosen)
    # Its final ACK comes again with the next SYN-ACK retransmission.
    wait_until(lambda: chosen.getsockname() not in proto.request_peers(server, port)
               and proto.queues(server, port)["accept_queue"] == 3, timeout=60,
               what="the released request to become a child")
    completed = time.monotonic()

    second, (requests, children) = stable(oracle, lambda: dump(proto, server, port),
                                          "a second dump")
    rest = [p for p in order if p != chosen.getsockname()]
    assert set(requests) == set(rest) and children == 3
    assert peers(second.syn) == rest
    assert peers(second.accept) == peers(first.accept) + [chosen.getsockname()]
    assert accept_all(listener, 3) == peers(second.accept)
    assert_ages_grew(first, second, "syn", "request")
    assert_ages_grew(first, second, "accept", "child")
    [moved] = [e for e in second.accept if peer(e) == chosen.getsockname()]
    assert_age(moved, (released, completed), second, "the released child")
    listener.close()


def test_syncookie_child__listed_with_the_others_in_accept_order_and_whole(netns_pair):
    """The default sysctls (syncookies on), TCP (HSP has no syncookies).
    Backlog 2: one child queued by a handshake, then three held requests
    fill the SYN queue (full past the backlog: inet_csk_reqsk_queue_is_full()
    is ">"), so the next client's SYN is answered with a cookie and
    its ACK makes a child whose request sock names no listener
    (cookie_tcp_reqsk_alloc()). The dump lists both children in the order
    accept() returns them, the three requests, and says it is whole."""
    proto = TCP
    server, client, addr = netns_pair.server, netns_pair.client, netns_pair.server_addr
    assert run(["sysctl", "-n", "net.ipv4.tcp_syncookies"], ns=server).stdout.strip() == "1"
    listener, port = proto.listen(server, addr, 2)
    proto.connect_all(client, addr, port, 1)
    wait_until(lambda: proto.queues(server, port)["accept_queue"] == 1, timeout=30,
               what="the first child")
    held = held_acks(proto, server, port)
    requests = [c.getsockname() for c, _ in connect_in_order(proto, client, addr, port, 3)]
    cookies_before = nstat(server, "TcpExtSyncookiesRecv")
    through_cookie = proto.socket(client)
    through_cookie.bind((netns_pair.client_addr, 0))
    release_one(held, proto, port, through_cookie)
    through_cookie.setblocking(False)
    through_cookie.connect_ex((addr, port))
    wait_until(lambda: proto.queues(server, port)["accept_queue"] == 2
               and nstat(server, "TcpExtSyncookiesRecv") == cookies_before + 1, timeout=30,
               what="the second child, made by a cookie ACK")

    queues, retrans = stable(lambda: proto.request_peers(server, port),
                             lambda: dump(proto, server, port), "a dump")
    assert set(retrans) == set(requests) and peers(queues.syn) == requests
    accepted = accept_all(listener, 2)
    assert peers(queues.accept) == accepted
    assert accepted[1] == through_cookie.getsockname()
    listener.close()


ENTRY = re.compile(
    r"^ {4}(?P<queue>SYN-Q|ACCEPT-Q) +(?:#(?P<k>\d+) +(?P<addr>\S+):(?P<port>\d+) +age +(?P<age>\S+)"
    r"(?P<rest>.*?)|\+(?P<more>\d+) more|(?P<empty>\(empty\)))\s*$")
# A listener no process holds: the dump, which walks files, cannot reach it.
NOT_DUMPED = "    QUEUES   (not dumped: no process holds this listener)"


def complete_screens(lines):
    """The complete screens in @lines, each without its clock line."""
    return [screen[1:] for screen in screens(lines)]


def entry_row(line):
    if line.rstrip() == NOT_DUMPED:
        return {"queue": "QUEUES", "not_dumped": True}
    match = ENTRY.match(line)
    assert match, f"not a queue entry row: {line!r}"
    row = {"queue": match["queue"]}
    if match["more"]:
        row["more"] = int(match["more"])
    elif match["empty"]:
        row["empty"] = True
    else:
        row.update(k=int(match["k"]), peer=(match["addr"].strip("[]"), int(match["port"])))
        synack = re.search(r"\bsynack +(\d+)\b", match["rest"])
        if synack:
            row["synack"] = int(synack.group(1))
        rx = re.search(r"\brx +(\d+)\b", match["rest"])
        if rx:
            row["rx"] = int(rx.group(1))
        row["young"] = match["rest"].rstrip().endswith("young")
    return row


def listener_blocks(screen):
    """{(netns label, proto, lport): [entry rows]} of one screen: each
    listener's row is followed by its queue entries."""
    blocks, current = {}, None
    for line in screen:
        if line.startswith("    "):
            assert current is not None, f"an entry row before any listener: {line!r}"
            blocks[current].append(entry_row(line))
            continue
        fields = line.split()
        if len(fields) > 2 and fields[1] in ("tcp", "hsp", "mptcp"):
            current = (fields[0], fields[1], int(fields[2].rsplit(":", 1)[1]))
            assert current not in blocks, f"listener shown twice: {line!r}"
            blocks[current] = []
        else:
            current = None
    return blocks


def split_queues(rows):
    """(SYN-Q rows, ACCEPT-Q rows), checking that the SYN queue comes
    first, each list numbered #1, #2, ... and a "+N more" or "(empty)" only
    at its end."""
    kinds = [r["queue"] for r in rows]
    syn_count = kinds.count("SYN-Q")
    assert kinds == ["SYN-Q"] * syn_count + ["ACCEPT-Q"] * (len(kinds) - syn_count), rows
    lists = rows[:syn_count], rows[syn_count:]
    for entries in lists:
        assert entries, f"a queue with no row at all (not even \"(empty)\"): {rows}"
        shown = [r for r in entries if "k" in r]
        assert [r["k"] for r in shown] == list(range(1, len(shown) + 1)), entries
        tail = entries[len(shown):]
        assert len(tail) <= 1 and entries[:len(shown)] == shown, entries
        assert not (tail and "empty" in tail[0] and shown), entries
    return lists


def text_peers(entries):
    return [r["peer"] for r in entries if "peer" in r]


def more(entries):
    tail = [r["more"] for r in entries if "more" in r]
    return tail[0] if tail else 0


@by_protocol
def test_live_text__listeners_from_before_and_after_start_each_with_its_own_entries(
        netns_pair, proto):
    """A listener whose children and requests came before qwatch started,
    and one created (with its own) while it runs, in one namespace; the
    same port in another namespace, with its own entries from another
    client address. The live `--queues --netns` screen lists each of the
    first two with exactly its entries in the kernel's order, and nothing
    of the third; `--once --json` without --netns lists both listeners of
    that port, each with only its own entries."""
    server, client, addr = netns_pair.server, netns_pair.client, netns_pair.server_addr
    with NetNSPair() as other:
        other_source = "10.77.0.3"
        run(["ip", "addr", "add", f"{other_source}/24", "dev", other.client_dev], ns=other.client)
        before, port = proto.listen(server, addr, 16)
        twin, _ = proto.listen(other.server, other.server_addr, 16, port=port)
        # Children first, then requests held: for the first listener and its twin.
        proto.connect_all(client, addr, port, 2)
        proto.connect_all(other.client, other.server_addr, port, 2, source=other_source)
        wait_until(lambda: proto.queues(server, port)["accept_queue"] == 2
                   and proto.queues(other.server, port)["accept_queue"] == 2, timeout=30,
                   what="2 children of each listener on the port")
        held_acks(proto, server, port)
        held_acks(proto, other.server, port)
        twin_requests = [c.getsockname() for c, _ in connect_in_order(
            proto, other.client, other.server_addr, port, 1, source=other_source)]
        early = [c.getsockname() for c, _ in connect_in_order(proto, client, addr, port, 2)]

        live = TextStream("--queues", "--netns", server.name, "--proto", proto.name, "-i", "0.5")
        after, after_port = proto.listen(server, addr, 16)
        proto.connect_all(client, addr, after_port, 1)
        wait_until(lambda: proto.queues(server, after_port)["accept_queue"] == 1, timeout=30,
                   what="the new listener's child")
        held_acks(proto, server, after_port)
        after_requests = [c.getsockname() for c, _ in
                          connect_in_order(proto, client, addr, after_port, 2)]
        late = [c.getsockname() for c, _ in connect_in_order(proto, client, addr, port, 1)]
        assert set(proto.request_peers(server, port)) == set(early + late)
        assert set(proto.request_peers(server, after_port)) == set(after_requests)

        mark = live.mark()
        # The second screen begun after this point was dumped after it.
        wait_until(lambda: len(live.screens_since(mark)) >= 2, timeout=60,
                   what="two screens of the live view")
        screen = live.screens_since(mark)[1]
        live.stop()

        # The same port in two namespaces: each listener lists only its own.
        objects, _, _ = dump_all("--port", str(port), "--proto", proto.name)
        listed = {o["netns"]: o for o in objects}
        assert {server.inode, other.server.inode} <= set(listed)
        assert peers(listed[server.inode]["syn_queue_entries"]) == early + late
        assert peers(listed[other.server.inode]["syn_queue_entries"]) == twin_requests
        assert set(proto.request_peers(other.server, port)) == set(twin_requests)
        objects, _, _ = dump_all("--netns", server.name, "--port", str(port))
        assert {(o["netns"], o["lport"]) for o in objects} == {(server.inode, port)}

        children = {port: accept_all(before, 2), after_port: accept_all(after, 1)}
        assert peers(listed[server.inode]["accept_queue_entries"]) == children[port]
        assert peers(listed[other.server.inode]["accept_queue_entries"]) == accept_all(twin, 2)

        blocks = listener_blocks(screen)
        assert set(blocks) == {(server.name, proto.name, port),
                               (server.name, proto.name, after_port)}, screen
        for lport, requests in ((port, early + late), (after_port, after_requests)):
            syn, accept = split_queues(blocks[(server.name, proto.name, lport)])
            assert text_peers(syn) == requests and more(syn) == 0, (lport, screen)
            assert text_peers(accept) == children[lport] and more(accept) == 0, (lport, screen)
        for sock in (before, after, twin):
            sock.close()


@by_protocol
def test_live_text__rows_capped_with_more_and_empty_queues_say_so(netns_pair, proto):
    """Ten children and four held requests, and an idle listener: with
    --queue-rows 2 each list shows its two oldest and "+N more" for the
    rest, by the kernel's counts; by default eight rows a list; the idle
    listener's lists read "(empty)". The JSON lists are never capped."""
    children, pending = 10, 4
    server, client, addr = netns_pair.server, netns_pair.client, netns_pair.server_addr
    listener, port = proto.listen(server, addr, 16)
    idle, idle_port = proto.listen(server, addr, 16)
    proto.connect_all(client, addr, port, children)
    wait_until(lambda: proto.queues(server, port)["accept_queue"] == children, timeout=30,
               what=f"{children} children")
    held_acks(proto, server, port)
    requests = [c.getsockname() for c, _ in connect_in_order(proto, client, addr, port, pending)]

    def screen(*args):
        out = run([QWATCH, "--queues", "--netns", server.name, "--proto", proto.name, *args,
                   "0.2", "1"]).stdout
        screens = complete_screens(out.splitlines())
        assert screens, out
        return listener_blocks(screens[-1])

    capped, retrans = stable(lambda: proto.request_peers(server, port),
                             lambda: screen("--queue-rows", "2"), "a screen")
    assert set(retrans) == set(requests)
    syn, accept = split_queues(capped[(server.name, proto.name, port)])
    assert text_peers(syn) == requests[:2]
    assert more(syn) == len(retrans) - 2 == pending - 2
    assert {r["peer"]: r["synack"] for r in syn if "peer" in r} == \
        {p: retrans[p] for p in requests[:2]}
    assert {r["peer"]: r["young"] for r in syn if "peer" in r} == \
        {p: retrans[p] == 0 for p in requests[:2]}
    assert more(accept) == proto.queues(server, port)["accept_queue"] - 2 == children - 2
    assert split_queues(capped[(server.name, proto.name, idle_port)]) == \
        ([{"queue": "SYN-Q", "empty": True}], [{"queue": "ACCEPT-Q", "empty": True}])
    assert {k: proto.queues(server, idle_port)[k] for k in ("syn_queue", "accept_queue")} == \
        {"syn_queue": 0, "accept_queue": 0}

    syn_default, accept_default = split_queues(screen()[(server.name, proto.name, port)])
    assert text_peers(syn_default) == requests and more(syn_default) == 0
    assert len(text_peers(accept_default)) == 8 and more(accept_default) == children - 8

    queues = dump(proto, server, port, "--queue-rows", "2")
    assert peers(queues.syn) == requests
    assert len(queues.accept) == proto.queues(server, port)["accept_queue"] == children
    accepted = accept_all(listener, children)
    assert peers(queues.accept) == accepted
    assert text_peers(accept) == accepted[:2]
    assert text_peers(accept_default) == accepted[:8]
    for sock in (listener, idle):
        sock.close()


def events_of(stream, proto, port, kind):
    return stream.select(event=kind, proto=proto.name, lport=port)


@by_protocol
def test_events__name_the_peer_from_syn_to_accept(netns_pair, proto):
    """syn_recv, ack_complete and accept carry the client's address and
    port (its getsockname()); accept's are accept()'s peers in order, and
    each client's events come in that order."""
    count = 3
    server, client, addr = netns_pair.server, netns_pair.client, netns_pair.server_addr
    with QwatchStream("--netns", str(server.inode)) as stream:
        listener, port = proto.listen(server, addr, 8)
        clients = proto.connect_all(client, addr, port, count)
        wait_until(lambda: proto.queues(server, port)["accept_queue"] == count, timeout=30,
                   what=f"{count} children")
        names = sorted(c.getsockname() for c in clients)
        stream.wait_for(lambda q: len(events_of(q, proto, port, "ack_complete")) >= count,
                        what=f"{count} ack_complete events")
        accepted = accept_all(listener, count)
        stream.wait_for(lambda q: len(events_of(q, proto, port, "accept")) >= count,
                        what=f"{count} accept events")
        for kind in ("syn_recv", "ack_complete"):
            assert sorted(peer(e) for e in events_of(stream, proto, port, kind)) == names, kind
        assert [peer(e) for e in events_of(stream, proto, port, "accept")] == accepted
        assert sorted(accepted) == names
        followed = ("syn_recv", "ack_complete", "accept")
        for name in names:
            mine = sorted((e for e in stream.select(proto=proto.name, lport=port)
                           if e["event"] in followed and peer(e) == name),
                          key=lambda e: e["ts_ns"])
            assert [e["event"] for e in mine] == list(followed), (name, mine)
    listener.close()


@pytest.fixture
def one_synack_retry(netns_pair, hsp_module):
    """One SYN-ACK retransmission before a request expires, for TCP
    (net.ipv4.tcp_synack_retries of the server's namespace) and HSP (its
    synack_retries parameter, for listeners created afterwards), so that
    requests expire in about 3 s instead of 63; both restored afterwards.
    (The default is what every other test here runs under.)"""
    sysctl = "net.ipv4.tcp_synack_retries"
    tcp_before = run(["sysctl", "-n", sysctl], ns=netns_pair.server).stdout.strip()
    hsp_before = hsp.get_param("synack_retries")
    run(["sysctl", "-qw", f"{sysctl}=1"], ns=netns_pair.server)
    hsp.set_param("synack_retries", 1)
    yield 1
    hsp.set_param("synack_retries", hsp_before)
    run(["sysctl", "-qw", f"{sysctl}={tcp_before}"], ns=netns_pair.server)


@by_protocol
def test_events__expire_names_the_peer(netns_pair, proto, one_synack_retry):
    pending = 2
    server, client, addr = netns_pair.server, netns_pair.client, netns_pair.server_addr
    with QwatchStream("--netns", str(server.inode)) as stream:
        listener, port = proto.listen(server, addr, 8)
        held_acks(proto, server, port)
        clients = connect_in_order(proto, client, addr, port, pending)
        names = sorted(c.getsockname() for c, _ in clients)
        wait_until(lambda: not proto.request_peers(server, port), timeout=60,
                   what="the requests to expire")
        stream.wait_for(lambda q: len(events_of(q, proto, port, "expire")) >= pending,
                        what=f"{pending} expire events")
        assert sorted(peer(e) for e in events_of(stream, proto, port, "expire")) == names
        assert sorted(peer(e) for e in events_of(stream, proto, port, "syn_recv")) == names
        assert proto.queues(server, port)["accept_queue"] == 0
    listener.close()


@pytest.mark.parametrize("args", [
    ["--events"],
    ["--json"],
    # --quiet needs --metrics: with it, --queues is the only thing wrong.
    ["--quiet", "--metrics", "127.0.0.1:{port}"],
], ids=["events", "live-json", "quiet"])
def test_queues_with_a_mode_that_cannot_show_them__one_line_and_status_2(args):
    args = [a.replace("{port}", str(free_port())) for a in args]
    proc = run([QWATCH, "--queues", *args], check=False, timeout=30)
    assert proc.returncode == 2, proc
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and "--queues" in proc.stderr, proc.stderr


@by_protocol
def test_live_text__a_listener_no_process_holds_says_not_dumped_not_empty(netns_pair, proto):
    """A listener with two children whose only reference goes in flight in
    an SCM_RIGHTS message: the kernel still holds it and its children (its
    own account), the live view keeps its row but says its queues were not
    dumped instead of showing them empty; received back, its lists are
    shown again, in the order accept() returns them."""
    server, client, addr = netns_pair.server, netns_pair.client, netns_pair.server_addr
    listener, port = proto.listen(server, addr, 8)
    proto.connect_all(client, addr, port, 2)
    wait_until(lambda: proto.queues(server, port)["accept_queue"] == 2, timeout=30,
               what="2 children")
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    defer(sender.close)
    defer(receiver.close)
    live = TextStream("--queues", "--netns", server.name, "--proto", proto.name, "-i", "0.3")
    key = (server.name, proto.name, port)

    def block_of_second_screen_after(mark, what):
        wait_until(lambda: len(live.screens_since(mark)) >= 2, timeout=60,
                   what=f"two screens {what}")
        blocks = listener_blocks(live.screens_since(mark)[1])
        assert key in blocks, f"{what}: no row for the listener: {blocks}"
        return blocks[key]

    held = block_of_second_screen_after(live.mark(), "while a process holds it")
    assert len(text_peers(split_queues(held)[1])) == 2, held

    sender.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                             array.array("i", [listener.fileno()]))])
    listener.close()
    in_flight = block_of_second_screen_after(live.mark(), "with the listener in flight")
    assert proto.queues(server, port)["accept_queue"] == 2
    assert in_flight == [{"queue": "QUEUES", "not_dumped": True}], in_flight

    _, fds, _, _ = socket.recv_fds(receiver, 16, 1)
    [back] = [socket_in(None, fileno=fd) for fd in fds]
    returned = block_of_second_screen_after(live.mark(), "with the listener received back")
    live.stop()
    syn, accept = split_queues(returned)
    assert syn == [{"queue": "SYN-Q", "empty": True}]
    assert text_peers(accept) == accept_all(back, 2)
    back.close()
