# SPDX-License-Identifier: GPL-2.0
"""The same listen-queue scenarios against TCP and HSP: the kernel's queues
must behave the same for both, and qwatch must report each exactly as the
kernel's own accounts (ss for TCP, /proc/net/hsp for HSP) do.

Syncookies are off in the server namespace: HSP has none, and TCP would
otherwise answer a full SYN queue with cookies.
"""

import pytest

from lib.cmd import run, wait_until
from lib.kernel import nstat
from lib.netns import NetNSPair
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
        self.sockets = []
        run(["sysctl", "-qw", "net.ipv4.tcp_syncookies=0"], ns=self.server)
        self.listener = self.track(proto.socket(self.server))
        self.listener.bind((self.pair.server_addr, 0))
        self.listener.listen(backlog)
        self.port = self.listener.getsockname()[1]

    def track(self, sock):
        self.sockets.append(sock)
        return sock

    def connect(self, count):
        for _ in range(count):
            client = self.track(self.proto.socket(self.client))
            client.setblocking(False)
            client.connect_ex((self.pair.server_addr, self.port))

    def queues(self):
        return self.proto.queues(self.server, self.port)

    def wait_queues(self, what, **expected):
        return wait_until(lambda: all(self.queues()[k] == v for k, v in expected.items())
                          and self.queues(), timeout=60, what=f"{self.proto.name}: {what}")

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
        run(["nft", "-f", "-"], ns=self.client, input=f"""table inet qwhold {{
            chain output {{ type filter hook output priority 0;
                {self.proto.final_ack_match(self.port)} drop; }}; }}""")

    def release_final_acks(self):
        run(["nft", "delete", "table", "inet", "qwhold"], ns=self.client)

    def freeze(self):
        run(["nft", "-f", "-"], ns=self.server, input="""table inet qwfreeze {
            chain input { type filter hook input priority 0; policy drop; }; }""")

    def close(self):
        for sock in self.sockets:
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
        s.connect(clients)
        s.wait_queues("a full accept queue", accept_queue=backlog + 1)
        wait_until(lambda: nstat(s.server, "TcpExtListenOverflows") - overflows_before
                   >= clients - (backlog + 1), what="every extra client to overflow")
        s.freeze()
        # A segment already past the firewall may still count: compare afresh.
        overflows = lambda: nstat(s.server, "TcpExtListenOverflows") - overflows_before
        s.qwatch.wait_for(lambda q: len(s.events("overflow")) == overflows(),
                          what=f"{s.proto.name}: overflow events = ListenOverflows")
        s.qwatch_agrees("syn_queue", "accept_queue", "accept_max", "drops")
        queues = s.queues()
        return {"accept_queue": queues["accept_queue"], "accept_max": queues["accept_max"],
                "every_extra_client_overflowed": overflows() >= clients - (backlog + 1)}

    results = run_both(scenario, qwatch, backlog)
    assert results["hsp"] == results["tcp"]
    assert results["tcp"]["accept_queue"] == backlog + 1


def test_final_acks_held__requests_wait_in_the_syn_queue_then_complete(qwatch):
    pending = 4

    def scenario(s):
        s.hold_final_acks()
        s.connect(pending)
        held = s.wait_queues("requests in the SYN queue", syn_queue=pending)
        s.qwatch.wait_for(lambda q: len(s.events("syn_recv")) == pending, what="syn_recv events")
        s.qwatch_agrees("syn_queue", "accept_queue")
        s.release_final_acks()
        done = s.wait_queues("every request to complete", syn_queue=0, accept_queue=pending)
        s.qwatch.wait_for(lambda q: len(s.events("ack_complete")) == pending,
                          what="ack_complete events")
        s.qwatch_agrees("syn_queue", "accept_queue")
        return {"held": (held["syn_queue"], held["accept_queue"]),
                "released": (done["syn_queue"], done["accept_queue"])}

    results = run_both(scenario, qwatch, 16)
    assert results["hsp"] == results["tcp"] == {"held": (pending, 0), "released": (0, pending)}


def test_synack_retransmits__until_the_requests_expire(qwatch):
    pending, retries = 3, 1

    def scenario(s):
        run(["sysctl", "-qw", f"net.ipv4.tcp_synack_retries={retries}"], ns=s.server)
        before = s.proto.synack_retransmits(s.server)
        s.hold_final_acks()
        s.connect(pending)
        # With one retry the requests live about 3 s: wait for their
        # (cumulative) events, not for a queue state a slow poll can miss.
        s.qwatch.wait_for(lambda q: len(s.events("syn_recv")) == pending, what="the requests")
        s.wait_queues("the requests to expire", syn_queue=0)
        s.qwatch.wait_for(lambda q: len(s.events("expire")) == pending, what="expire events")
        retransmits = s.proto.synack_retransmits(s.server) - before
        assert len(s.events("synack_retransmit")) == retransmits
        return {"retransmits": retransmits, "expired": len(s.events("expire")),
                "accept_queue": s.queues()["accept_queue"]}

    results = run_both(scenario, qwatch, 16)
    assert results["hsp"] == results["tcp"]
    assert results["tcp"]["retransmits"] == pending * retries


def test_accepts__drain_the_queue_one_by_one(qwatch):
    completed = 3

    def scenario(s):
        s.connect(completed)
        s.wait_queues("completed handshakes", accept_queue=completed)
        seen = []
        for taken in range(1, completed + 1):
            child, _ = s.listener.accept()
            s.track(child)
            event = s.qwatch.wait_for(
                lambda q: (s.events("accept")[taken - 1:taken] or [None])[0],
                what=f"{s.proto.name}: accept event {taken}")
            assert event["accept_queue"] == s.queues()["accept_queue"]
            seen.append(event["accept_queue"])
        return seen

    results = run_both(scenario, qwatch, 8)
    assert results["hsp"] == results["tcp"] == list(range(completed - 1, -1, -1))
