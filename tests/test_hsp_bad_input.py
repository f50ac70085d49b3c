# SPDX-License-Identifier: GPL-2.0
"""Malformed and unexpected HSP segments, table-driven.

Each case is sent by a raw socket in the client namespace to an HSP listener.
What the module answered is read off the same raw socket up to the answer to
a sentinel segment sent right after the case (an ACK to a closed port, which
is always answered with RST): anything answering the case arrives first, so
"no answer" needs no sleep. Expected answers are what TCP does with the same
segment on this kernel: drop, RST, or a SYN-ACK (retransmission).
Afterwards the counters must have moved as expected, no request sock may be
left behind unless the case makes one, and the listener must still accept a
valid connection.
"""

import math
import socket
import struct
import time

import pytest

from lib import hsp, nft
from lib.cmd import iterations, run, wait_until
from lib.hsp_wire import (ACK, FIN, RST, SYN, RawPeer, checksum, drop_unmarked_resets,
                          raw_sender, segment)
from lib.kernel import nstat, ss_syn_recv
from lib.netns import socket_in
from lib.proto import HSP, TCP

SENTINEL_SPORT = 4242
CLOSED_PORT = 9
PEER_ISN = 1000
RAW_MARK = 42


@pytest.fixture
def peer(netns_pair, hsp_module, one_cpu):
    # From one CPU, the sentinel cannot overtake the case, nor its answer
    # the case's.
    listener, port = hsp.listen(netns_pair.server, netns_pair.server_addr, 16)
    raw = RawPeer(netns_pair.client, netns_pair.client_addr)
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, RAW_MARK)
    drop_unmarked_resets(netns_pair.client, RAW_MARK)
    yield Peer(netns_pair, raw, listener, port)
    raw.close()
    listener.close()


class Peer:
    def __init__(self, pair, raw, listener, port):
        self.pair, self.raw, self.listener, self.port = pair, raw, listener, port
        self.next_sport = 20000
        self.synacks_seen = set()

    def new_sport(self):
        self.next_sport += 1
        return self.next_sport

    def build(self, sport, **fields):
        fields.setdefault("dport", self.port)
        return segment(self.pair.client_addr, self.pair.server_addr, sport, **fields)

    def exchange(self, *segments, target=None):
        """Sends @segments (or raw bytes), then the sentinel; returns the
        answers to @segments, in order."""
        for data in segments:
            self.raw.send(target or self.pair.server_addr, data)
        self.raw.send(self.pair.server_addr,
                      self.build(SENTINEL_SPORT, dport=CLOSED_PORT, flags=ACK, ack_seq=7))
        answers = self.raw.replies_until(lambda f: f["dport"] == SENTINEL_SPORT)
        # The request timer retransmits SYN-ACKs whenever it fires: an
        # earlier request's SYN-ACK again is no answer to this exchange.
        answers = [a for a in answers if a["dport"] != SENTINEL_SPORT
                   and (a["dport"], a["seq"], a["flags"]) not in self.synacks_seen]
        self.synacks_seen |= {(a["dport"], a["seq"], a["flags"]) for a in answers
                              if a["flags"] == SYN | ACK}
        return answers

    def stat(self, counter):
        return hsp.stat(self.pair.server, counter)

    def requests(self):
        return hsp.proc_requests(self.pair.server, self.port)

    def still_accepts(self):
        client = hsp.connect(self.pair.client, self.pair.server_addr, self.port)
        child, _ = self.listener.accept()
        child.close()
        client.close()


def valid_syn(peer, sport):
    return peer.build(sport, seq=PEER_ISN, flags=SYN)


# name, segment builder, expected answers (flag sets), counter that grows by one
MALFORMED = [
    ("shorter than the header", lambda p, s: valid_syn(p, s)[:10], [], "HeaderErrors"),
    ("header length too small", lambda p, s: p.build(s, doff=3), [], "HeaderErrors"),
    ("header length beyond the packet", lambda p, s: p.build(s, doff=15), [], "HeaderErrors"),
    ("bad checksum", lambda p, s: p.build(s, seq=PEER_ISN, bad_checksum=True), [], "CsumErrors"),
    ("no flag", lambda p, s: p.build(s, flags=0), [], "HeaderErrors"),
    ("unknown flag", lambda p, s: p.build(s, flags=SYN | 0x80), [], "HeaderErrors"),
    ("SYN with RST", lambda p, s: p.build(s, flags=SYN | RST), [], "HeaderErrors"),
    ("SYN with FIN", lambda p, s: p.build(s, flags=SYN | FIN), [], "HeaderErrors"),
]

UNEXPECTED_AT_LISTENER = [
    ("ACK", lambda p, s: p.build(s, seq=5, ack_seq=77, flags=ACK), [RST], "RstsSent"),
    ("ACK with trailing bytes", lambda p, s: p.build(s, ack_seq=77, flags=ACK, payload=b"data"),
     [RST], "RstsSent"),
    ("SYN-ACK", lambda p, s: p.build(s, seq=5, ack_seq=77, flags=SYN | ACK), [RST], "RstsSent"),
    ("RST", lambda p, s: p.build(s, seq=5, flags=RST), [], "InSegs"),
]


@pytest.mark.parametrize("name, build, answers, counter", MALFORMED + UNEXPECTED_AT_LISTENER,
                         ids=[case[0] for case in MALFORMED + UNEXPECTED_AT_LISTENER])
def test_segment__answered_as_tcp_would_and_nothing_queued(peer, name, build, answers, counter):
    # The sentinel itself moves InSegs and RstsSent: its own share, measured
    # by an exchange of the sentinel alone, is not the case's.
    before = peer.stat(counter)
    assert peer.exchange() == []
    sentinel_share = peer.stat(counter) - before
    before = peer.stat(counter)
    got = peer.exchange(build(peer, peer.new_sport()))
    assert [a["flags"] for a in got] == answers
    assert peer.stat(counter) - before == sentinel_share + 1
    assert peer.requests() == 0
    peer.still_accepts()


def test_rst_for_an_ack__carries_its_ack_number(peer):
    [answer] = peer.exchange(peer.build(peer.new_sport(), seq=5, ack_seq=4321, flags=ACK))
    assert (answer["flags"], answer["seq"]) == (RST, 4321)


def test_syn__one_request_and_a_syn_ack_acknowledging_it(peer):
    [answer] = peer.exchange(valid_syn(peer, peer.new_sport()))
    assert answer["flags"] == SYN | ACK and answer["ack_seq"] == PEER_ISN + 1
    assert peer.requests() == 1


def test_identical_syns__one_request_and_the_same_syn_ack_again(peer):
    sport = peer.new_sport()
    first, second = peer.exchange(valid_syn(peer, sport), valid_syn(peer, sport))
    assert first["flags"] == second["flags"] == SYN | ACK
    assert first["seq"] == second["seq"]
    assert peer.requests() == 1


def test_duplicate_syns__answered_once_per_invalid_ratelimit_as_tcp_does(peer):
    """A request answers copies of its SYN at most once per
    net.ipv4.tcp_invalid_ratelimit (here a minute, so timing cannot matter)
    and counts the copies it left unanswered; TCP on the same kernel is the
    reference for how many that is."""
    server, client = peer.pair.server, peer.pair.client
    run(["sysctl", "-qw", "net.ipv4.tcp_invalid_ratelimit=60000"], ns=server)
    copies = 5

    tcp_listener, tcp_port = TCP.listen(server, peer.pair.server_addr, 16)
    sender = raw_sender(client, socket.IPPROTO_TCP, RAW_MARK)
    in_segs, skipped = nstat(server, "TcpInSegs"), nstat(server, "TcpExtTCPACKSkippedSynRecv")
    syn = TCP.syn(peer.pair.client_addr, peer.pair.server_addr, 30001, tcp_port, PEER_ISN)
    for _ in range(copies):
        sender.sendto(syn, (peer.pair.server_addr, 0))
    wait_until(lambda: nstat(server, "TcpInSegs") - in_segs >= copies, what="TCP to take the SYNs")
    tcp_skipped = nstat(server, "TcpExtTCPACKSkippedSynRecv") - skipped
    assert ss_syn_recv(server, tcp_port) == 1
    sender.close()
    tcp_listener.close()

    before = peer.stat("DupSynsRateLimited")
    sport = peer.new_sport()
    answers = peer.exchange(*[valid_syn(peer, sport)] * copies)
    hsp_skipped = peer.stat("DupSynsRateLimited") - before
    assert tcp_skipped > 0
    assert hsp_skipped == tcp_skipped
    assert len(answers) == copies - hsp_skipped
    assert {a["flags"] for a in answers} == {SYN | ACK}
    assert peer.requests() == 1


def test_resets__at_most_reset_rate_a_second_the_rest_counted(peer):
    """ACKs for nobody are answered with at most reset_rate resets per
    one-second window; every segment is either answered or counted."""
    rate, segments = 10, 100
    default = hsp.get_param("reset_rate")
    hsp.set_param("reset_rate", rate)
    try:
        sent0, limited0 = peer.stat("RstsSent"), peer.stat("RstsRateLimited")
        start = time.monotonic()
        for i in range(segments):
            peer.raw.send(peer.pair.server_addr,
                          peer.build(peer.new_sport(), dport=CLOSED_PORT, flags=ACK, ack_seq=i))
        wait_until(lambda: peer.stat("RstsSent") - sent0 + peer.stat("RstsRateLimited") - limited0
                   == segments, what="every segment answered or counted as limited")
        windows = math.ceil(time.monotonic() - start) + 1
        sent, limited = peer.stat("RstsSent") - sent0, peer.stat("RstsRateLimited") - limited0
        received = []
        peer.raw.replies_until(lambda f: received.append(f) or len(received) == sent)
        assert {f["flags"] for f in received} == {RST}
        assert limited > 0
        assert sent <= rate * windows
    finally:
        hsp.set_param("reset_rate", default)
    peer.still_accepts()


def test_wrong_ack_number_for_a_request__rst_and_the_request_stays(peer):
    sport = peer.new_sport()
    [syn_ack] = peer.exchange(valid_syn(peer, sport))
    [answer] = peer.exchange(peer.build(sport, seq=PEER_ISN + 1, ack_seq=syn_ack["seq"] + 7,
                                        flags=ACK))
    assert answer["flags"] == RST
    assert peer.requests() == 1
    # The right ACK still completes it.
    assert peer.exchange(peer.build(sport, seq=PEER_ISN + 1, ack_seq=syn_ack["seq"] + 1,
                                    flags=ACK)) == []
    assert peer.requests() == 0
    assert hsp.proc_listener(peer.pair.server, peer.port)["accept_queue"] == 1


def test_rst_for_a_request__removes_it_without_answer(peer):
    sport = peer.new_sport()
    peer.exchange(valid_syn(peer, sport))
    before = peer.stat("RstsReceived")
    assert peer.exchange(peer.build(sport, seq=PEER_ISN + 1, flags=RST)) == []
    assert peer.requests() == 0
    assert peer.stat("RstsReceived") == before + 1


def test_rst_with_a_wrong_sequence_number__ignored(peer):
    sport = peer.new_sport()
    peer.exchange(valid_syn(peer, sport))
    assert peer.exchange(peer.build(sport, seq=PEER_ISN + 99, flags=RST)) == []
    assert peer.requests() == 1


def test_ack_for_an_expired_request__rst(peer):
    run(["sysctl", "-qw", "net.ipv4.tcp_synack_retries=1"], ns=peer.pair.server)
    # The retries setting is read when the request timer fires.
    sport = peer.new_sport()
    [syn_ack] = peer.exchange(valid_syn(peer, sport))
    wait_until(lambda: peer.requests() == 0, timeout=60, what="the request to expire")
    got = peer.exchange(peer.build(sport, seq=PEER_ISN + 1, ack_seq=syn_ack["seq"] + 1, flags=ACK))
    assert [a["flags"] for a in got] == [RST]


def test_syn_to_the_broadcast_address__dropped(peer):
    peer.raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    data = segment(peer.pair.client_addr, "10.77.0.255", peer.new_sport(), peer.port,
                   seq=PEER_ISN)
    assert peer.exchange(data, target="10.77.0.255") == []
    assert peer.requests() == 0


def test_syn_to_a_multicast_group_the_server_joined__dropped(peer):
    """The server's namespace joined the group, so its IP layer hands the
    SYN to HSP (IpExtInMcastPkts moves); HSP drops it unanswered."""
    group = "239.7.7.7"
    member = socket_in(peer.pair.server, socket.AF_INET, socket.SOCK_DGRAM)
    member.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                      socket.inet_aton(group) + socket.inet_aton(peer.pair.server_addr))
    peer.raw.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                             socket.inet_aton(peer.pair.client_addr))
    multicast_in = nstat(peer.pair.server, "IpExtInMcastPkts")
    in_segs = peer.stat("InSegs")
    data = segment(peer.pair.client_addr, group, peer.new_sport(), peer.port, seq=PEER_ISN)
    assert peer.exchange(data, target=group) == []
    assert nstat(peer.pair.server, "IpExtInMcastPkts") > multicast_in
    # Only the sentinel counts: TCP does not count non-unicast segments either.
    assert peer.stat("InSegs") == in_segs + 1
    assert peer.requests() == 0
    member.close()
    peer.still_accepts()


def test_final_acks_racing_the_synack_timer__every_request_completes_once(peer):
    """112 final ACKs sent the moment the request timer's SYN-ACK
    retransmission arrives, i.e. while the timer handler may still run."""
    requests = 16  # the listener's backlog: the SYN queue takes them all
    for _ in range(iterations(7)):
        sports = [peer.new_sport() for _ in range(requests)]
        # (Resets from the previous round's closed children may come too.)
        syn_acks = {a["dport"]: a for a in peer.exchange(*[valid_syn(peer, s) for s in sports])
                    if a["flags"] == SYN | ACK}
        assert sorted(syn_acks) == sports
        pending = set(sports)
        while pending:
            # Blocks until the next retransmission (about 1 s after the SYN).
            [again] = peer.raw.replies_until(
                lambda f: f["dport"] in pending and f["flags"] == SYN | ACK, timeout=30)[-1:]
            pending.discard(again["dport"])
            peer.raw.send(peer.pair.server_addr, peer.build(
                again["dport"], seq=PEER_ISN + 1, ack_seq=again["seq"] + 1, flags=ACK))
        wait_until(lambda: peer.requests() == 0, what="every request to complete")
        assert hsp.proc_listener(peer.pair.server, peer.port)["accept_queue"] == requests
        for _ in range(requests):
            peer.listener.accept()[0].close()


def test_icmp_errors_quoting_forged_headers__ignored(peer):
    """Destination-unreachable messages quoting HSP headers of a request,
    of the listener and of nobody change nothing."""
    sport = peer.new_sport()
    [syn_ack] = peer.exchange(valid_syn(peer, sport))
    icmp = socket_in(peer.pair.client, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    for quoted_sport, quoted_dport in ((peer.port, sport), (peer.port, 1), (5, 6)):
        inner_ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 16, 0, 0, 64, hsp.protocol(),
                               0, socket.inet_aton(peer.pair.server_addr),
                               socket.inet_aton(peer.pair.client_addr))
        quoted = segment(peer.pair.server_addr, peer.pair.client_addr, quoted_sport,
                         quoted_dport, seq=syn_ack["seq"])
        body = struct.pack("!BBHI", 3, 3, 0, 0) + inner_ip + quoted[:8]
        body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
        icmp.sendto(body, (peer.pair.server_addr, 0))
    icmp.close()
    assert peer.exchange() == []
    assert peer.requests() == 1
    peer.still_accepts()


def test_request_whose_synack_cannot_be_sent__dropped_at_its_first_retry_as_by_tcp(peer):
    """The request timer keeps a request whose SYN-ACK fails only if it was
    acked (its final ACK met a full accept queue). Request socks are never
    zeroed: a request reusing the memory of one that overflowed must still
    start unacked, and go at its first failed retry, as TCP's does."""
    server, client = peer.pair.server, peer.pair.client
    # Backlog 2: two requests fit the SYN queue, three children fill the
    # accept queue (it takes backlog + 1).
    listener, port = hsp.listen(server, peer.pair.server_addr, 2)

    def syn(sport):
        [syn_ack] = peer.exchange(peer.build(sport, dport=port, seq=PEER_ISN, flags=SYN))
        return syn_ack

    def final_ack(sport, syn_ack):
        return peer.exchange(peer.build(sport, dport=port, seq=PEER_ISN + 1,
                                        ack_seq=syn_ack["seq"] + 1, flags=ACK))

    # A SYN finds a full accept queue dropped: the request first, then the
    # children that fill the queue, then its final ACK, which overflows it.
    overflowed = peer.new_sport()
    overflowed_synack = syn(overflowed)
    for _ in range(3):
        filler = peer.new_sport()
        final_ack(filler, syn(filler))
    overflows = peer.stat("ListenOverflows")
    final_ack(overflowed, overflowed_synack)  # its request is now acked
    assert peer.stat("ListenOverflows") == overflows + 1
    # Freed on this CPU, its memory is the next request's.
    peer.exchange(peer.build(overflowed, dport=port, seq=PEER_ISN + 1, flags=RST))
    assert hsp.proc_requests(server, port) == 0
    for _ in range(3):
        listener.accept()[0].close()

    # From here on the server cannot send a SYN-ACK: sending fails (EPERM).
    nft.output_rule(server, f"{TCP.synack_match()} drop; {HSP.synack_match()} drop")
    tcp_listener, tcp_port = TCP.listen(server, peer.pair.server_addr, 8)
    sender = raw_sender(client, socket.IPPROTO_TCP, RAW_MARK)

    def timer_runs():  # runs of request timers: one per retry or expiry
        return TCP.request_timer_runs(server), HSP.request_timer_runs(server)

    def retransmits():
        return TCP.synack_retransmits(server), HSP.synack_retransmits(server)

    runs_before, retransmits_before = timer_runs(), retransmits()
    sender.sendto(TCP.syn(peer.pair.client_addr, peer.pair.server_addr, 30002, tcp_port,
                          PEER_ISN), (peer.pair.server_addr, 0))
    peer.raw.send(peer.pair.server_addr,
                  peer.build(peer.new_sport(), dport=port, seq=PEER_ISN, flags=SYN))
    # The first retry comes after 1 s; a request kept after it would live
    # for a minute.
    wait_until(lambda: ss_syn_recv(server, tcp_port) == hsp.proc_requests(server, port) == 0
               and all(after > before for after, before in zip(timer_runs(), runs_before)),
               timeout=10, what="both requests to go at their first failed retry")
    assert [after - before for after, before in zip(timer_runs(), runs_before)] == [1, 1]
    assert retransmits() == retransmits_before
    sender.close()
    tcp_listener.close()
    listener.close()
