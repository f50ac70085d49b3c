# SPDX-License-Identifier: GPL-2.0
"""The same listen-queue scenarios against TCP and HSP: the kernel's queues
must behave the same for both, and qwatch must report each exactly as the
kernel's own accounts (ss for TCP, /proc/net/hsp for HSP) do.

Syncookies are off in the server namespace: HSP has none, and TCP would
otherwise answer a full SYN queue with cookies.
"""

import pytest

from lib import nft
from lib.cmd import run, wait_until
from lib.kernel import nstat
from lib.netns import NetNSPair, connected
from lib.proto import PROTOCOLS
from lib.qwatch import QwatchStream, once


@pytest.fixture
def qwatch(hsp_module):
    with QwatchStream() as stream:
        yield stream


class Scenario:
    """One protocol's run of a scenario in its own pair of namespaces."""

    def __init__(self, proto, qwatch, backlog):
        self.proto, self.qwatch = proto, qwatch
        self.pair = NetNSPair()
        self.server, self.client = self.pair.server, self.pair.client
        self.clients, self.children = [], []
        run(["sysctl", "-qw", "net.ipv4.tcp_syncookies=0"], ns=self.server)
        self.listener, self.port = proto.listen(self.server, self.pair.server_addr, backlog)

    def connect(self, count):
        for _ in range(count):
            client = self.proto.socket(self.client)
            client.setblocking(False)
            client.connect_ex((self.pair.server_addr, self.port))
            self.clients.append(client)

    def all_connected(self):
        """Whether every client has completed its connect(): its final ACK
        is sent (held or not), so its request is in the server's SYN queue
        or its child in the accept queue."""
        return all(connected(client) for client in self.clients)

    def queues(self):
        return self.proto.queues(self.server, self.port)

    def wait_queues(self, what, **expected):
        """Waits for the kernel's queues to hold @expected (a state to start
        from, never a result: what was waited for is no finding)."""
        wait_until(lambda: all(self.queues()[k] == v for k, v in expected.items()),
                   timeout=60, what=f"{self.proto.name}: {what}")

    def settle(self, what, condition):
        """Waits for @condition(), which must not presuppose the result, then
        returns the kernel's queues."""
        wait_until(condition, timeout=60, what=f"{self.proto.name}: {what}")
        return self.queues()

    def events(self, event):
        return self.qwatch.select(event=event, netns=self.server.inode, lport=self.port)

    def qwatch_latest(self):
        found = self.qwatch.select(netns=self.server.inode, lport=self.port)
        return found[-1] if found else {}

    def qwatch_agrees(self, *keys):
        """qwatch's last event and a fresh --once both equal the kernel's queues."""
        kernel = self.queues()
        self.qwatch.wait_for(lambda q: all(self.qwatch_latest().get(k) == kernel[k] for k in keys),
                             what=f"{self.proto.name}: qwatch to show {kernel}")
        [now] = [e for e in once() if e["netns"] == self.server.inode and e["lport"] == self.port]
        assert now["proto"] == self.proto.name
        assert {k: now[k] for k in keys} == {k: kernel[k] for k in keys}

    def hold_final_acks(self):
        self.held = nft.output_rule(self.client, f"{self.proto.final_ack_match(self.port)} drop")

    def release_final_acks(self):
        self.held.delete()

    def freeze(self):
        nft.freeze_input(self.server)

    def close(self):
        for sock in self.children + self.clients + [self.listener]:
            sock.close()
        self.pair.delete()


def run_both(scenario, qwatch, backlog):
    """Runs @scenario(Scenario) for TCP and for HSP; returns their results."""
    results = {}
    for proto in PROTOCOLS:
        run_ = Scenario(proto, qwatch, backlog)
        try:
            results[proto.name] = scenario(run_)
        finally:
            run_.close()
    return results


def test_no_accept__both_fill_backlog_plus_one_and_overflow_alike(qwatch):
    backlog, clients = 2, 6

    def scenario(s):
        overflows_before = nstat(s.server, "TcpExtListenOverflows")
        overflows = lambda: nstat(s.server, "TcpExtListenOverflows") - overflows_before
        s.connect(clients)
        # A final ACK or SYN overflows only a full accept queue, and nothing
        # accepts: once every extra client overflowed, the queue is as full
        # as it gets, whatever that is.
        s.settle("every extra client to overflow",
                 lambda: overflows() >= clients - (backlog + 1))
        s.freeze()
        # A segment already past the firewall may still count: compare afresh.
        s.qwatch.wait_for(lambda q: len(s.events("overflow")) == overflows(),
                          what=f"{s.proto.name}: overflow events = ListenOverflows")
        s.qwatch_agrees("syn_queue", "accept_queue", "accept_max", "drops")
        queues = s.queues()
        return {"accept_queue": queues["accept_queue"], "accept_max": queues["accept_max"]}

    results = run_both(scenario, qwatch, backlog)
    assert results["hsp"] == results["tcp"]
    assert results["tcp"] == {"accept_queue": backlog + 1, "accept_max": backlog}


def test_final_acks_held__requests_wait_in_the_syn_queue_then_complete(qwatch):
    pending = 4

    def scenario(s):
        s.hold_final_acks()
        s.connect(pending)
        # A client is connected once it got its SYN-ACK and sent the final
        # ACK (dropped): its request is in the server's SYN queue by then.
        held = s.settle("every client connected", s.all_connected)
        s.qwatch.wait_for(lambda q: len(s.events("syn_recv")) == held["syn_queue"],
                          what="a syn_recv event per request")
        s.qwatch_agrees("syn_queue", "accept_queue")
        s.release_final_acks()
        # The final ACKs come again with the next SYN-ACK retransmissions.
        done = s.settle("an empty SYN queue", lambda: s.queues()["syn_queue"] == 0)
        s.qwatch.wait_for(lambda q: len(s.events("ack_complete")) == done["accept_queue"],
                          what="an ack_complete event per child")
        s.qwatch_agrees("syn_queue", "accept_queue")
        return {"held": (held["syn_queue"], held["accept_queue"]),
                "accept_queue_once_released": done["accept_queue"]}

    results = run_both(scenario, qwatch, 16)
    assert results["hsp"] == results["tcp"] == {"held": (pending, 0),
                                                "accept_queue_once_released": pending}


def test_synack_retransmits__until_the_requests_expire(qwatch):
    pending, retries = 3, 1

    def scenario(s):
        run(["sysctl", "-qw", f"net.ipv4.tcp_synack_retries={retries}"], ns=s.server)
        before = s.proto.synack_retransmits(s.server)
        runs_before = s.proto.request_timer_runs(s.server)
        s.hold_final_acks()
        s.connect(pending)
        # With one retry the requests live about 3 s. Every client connected
        # means every request existed; an empty SYN queue then, that every
        # request's timer is done (a retry or the expiry each run).
        s.settle("every client connected", s.all_connected)
        s.wait_queues("the requests to expire", syn_queue=0)
        retransmits = s.proto.synack_retransmits(s.server) - before
        timer_runs = s.proto.request_timer_runs(s.server) - runs_before
        # qwatch has told everything once it has an event per timer run.
        timer_events = lambda q: len(s.events("synack_retransmit")) + len(s.events("expire"))
        s.qwatch.wait_for(lambda q: timer_events(q) == timer_runs,
                          what=f"{s.proto.name}: {timer_runs} synack_retransmit and expire events",
                          state=timer_events)
        assert len(s.events("synack_retransmit")) == retransmits
        return {"retransmits": retransmits, "expired": len(s.events("expire")),
                "accept_queue": s.queues()["accept_queue"]}

    results = run_both(scenario, qwatch, 16)
    assert results["hsp"] == results["tcp"]
    assert results["tcp"] == {"retransmits": pending * retries, "expired": pending,
                              "accept_queue": 0}


def test_accepts__drain_the_queue_one_by_one(qwatch):
    completed = 3

    def scenario(s):
        s.connect(completed)
        s.wait_queues("completed handshakes", accept_queue=completed)
        seen = []
        for taken in range(1, completed + 1):
            child, _ = s.listener.accept()
            s.children.append(child)
            event = s.qwatch.wait_for(
                lambda q: (s.events("accept")[taken - 1:taken] or [None])[0],
                what=f"{s.proto.name}: accept event {taken}")
            assert event["accept_queue"] == s.queues()["accept_queue"]
            seen.append(event["accept_queue"])
        return seen

    results = run_both(scenario, qwatch, 8)
    assert results["hsp"] == results["tcp"] == list(range(completed - 1, -1, -1))
