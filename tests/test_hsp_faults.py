# SPDX-License-Identifier: GPL-2.0
"""Faults and races on HSP's listen path, in loops where timing matters."""

import errno
import socket

import pytest

from lib import hsp, nft
from lib.proto import HSP, PROTOCOLS
from lib.cmd import iterations, run, scaled, wait_until
from lib.netns import AcceptThread, NetNSPair


@pytest.fixture
def pair(netns_pair, hsp_module):
    return netns_pair


def test_allocation_failures__drops_the_client_retries_through(pair):
    """Every third request or child allocation fails: each failure is a drop
    the client's retransmission recovers from, with nothing leaked."""
    listener, port = hsp.listen(pair.server, pair.server_addr, 16)
    drops_before = hsp.proc_listener(pair.server, port)["drops"]
    hsp.set_param("fail_every", 3)
    try:
        # Not scaled down: fewer than three connects may hit no failure.
        for _ in range(6):
            client = hsp.connect(pair.client, pair.server_addr, port, timeout=60)
            child, _ = listener.accept()
            child.close()
            client.close()
    finally:
        hsp.set_param("fail_every", 0)
    assert hsp.proc_listener(pair.server, port)["drops"] > drops_before
    listener.close()


def test_listener_closed_with_full_queues__children_reset_requests_gone(hsp_module):
    baseline = hsp.refcount()
    for _ in range(iterations(20)):
        with NetNSPair() as pair:
            listener, port = hsp.listen(pair.server, pair.server_addr, 3)
            # Two clients whose final ACKs never arrive: requests in the SYN queue.
            nft.output_rule(pair.client, f"ip protocol {HSP.number()} @th,0,16 30000-30001 "
                                         "@th,104,8 0x02 drop")
            held = []
            for sport in (30000, 30001):
                client = hsp.hsp_socket(pair.client)
                client.bind((pair.client_addr, sport))
                client.setblocking(False)
                client.connect_ex((pair.server_addr, port))
                held.append(client)
            wait_until(lambda: hsp.proc_requests(pair.server, port) == 2, what="2 requests")
            # Two completed connections waiting in the accept queue.
            done = [hsp.connect(pair.client, pair.server_addr, port) for _ in range(2)]
            wait_until(lambda: hsp.proc_listener(pair.server, port)["accept_queue"] == 2,
                       what="2 children")
            listener.close()
            for client in done:
                wait_until(lambda: client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                           == errno.ECONNRESET, what="the child's reset")
            for client in done + held:
                client.close()
    wait_until(lambda: hsp.refcount() == baseline, timeout=60,
               what="every child and request freed")


def test_shutdown_races_a_blocked_accept__einval_every_time(pair):
    for _ in range(iterations(100)):
        listener, _ = hsp.listen(pair.server, pair.server_addr, 4)
        thread = AcceptThread(listener)
        # No wait for accept() to block: the race is the point.
        listener.shutdown(socket.SHUT_RDWR)
        thread.join(scaled(30))
        assert not thread.is_alive() and thread.errno == errno.EINVAL
        listener.close()


def reuseport_listener(proto, ns, addr, port, backlog):
    listener = proto.socket(ns)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((addr, port))
    listener.listen(backlog)
    return listener


def test_listener_closed_in_a_reuseport_group__requests_migrate_for_tcp_only(hsp_module):
    """With net.ipv4.tcp_migrate_req=1 (off by default, on here to isolate
    the behaviour), closing an SO_REUSEPORT listener hands its TCP requests
    to another of its group at their next timer (inet_reqsk_clone()), and
    every handshake completes there. The kernel migrates TCP's alone
    (reuseport_stop_listen_sock() detaches any other protocol's listener at
    once): HSP's requests are dropped at their next timer and nothing
    reaches the listener left, as for DCCP."""
    clients = iterations(8)
    outcome = {}
    for proto in PROTOCOLS:
        with NetNSPair() as pair:
            run(["sysctl", "-qw", "net.ipv4.tcp_migrate_req=1"], ns=pair.server)
            # Backlog 2 * clients: the timer prunes requests held past two
            # timeouts in a queue more than half full (reqsk_timer_handler()).
            backlog = 2 * clients
            closing = reuseport_listener(proto, pair.server, pair.server_addr, 0, backlog)
            port = closing.getsockname()[1]
            held = nft.output_rule(pair.client, f"{proto.final_ack_match(port)} drop")
            connecting = [proto.socket(pair.client) for _ in range(clients)]
            for client in connecting:
                client.setblocking(False)
                client.connect_ex((pair.server_addr, port))
            wait_until(lambda: proto.requests(pair.server, port) == clients,
                       what=f"{proto.name}: {clients} requests")
            # Joins the group after the SYNs: every request is the closing one's.
            survivor = reuseport_listener(proto, pair.server, pair.server_addr, port, backlog)
            closing.close()
            held.delete()
            # Settled once no request is left: each one migrated and
            # completed, or was dropped. Then the survivor's accept queue
            # holds what reached it.
            wait_until(lambda: proto.requests(pair.server, port) == 0, timeout=60,
                       what=f"{proto.name}: the closed listener's requests to go")
            survivor.setblocking(False)
            accepted = []
            while True:
                try:
                    accepted.append(survivor.accept()[0])
                except BlockingIOError:
                    break
            outcome[proto.name] = {"accepted": len(accepted),
                                   "accept_queue": proto.queues(pair.server, port)["accept_queue"]}
            for sock in accepted + connecting + [survivor]:
                sock.close()
    assert outcome["tcp"] == {"accepted": clients, "accept_queue": 0}
    assert outcome["hsp"] == {"accepted": 0, "accept_queue": 0}
