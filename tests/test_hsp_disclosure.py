# SPDX-License-Identifier: GPL-2.0
"""Nothing HSP writes to the wire or to /proc discloses kernel memory.

The VM runs with init_on_alloc=0 and SLUB poisoning on HSP's caches and on
the kmalloc cache its segments are built in (Makefile, VM_APPEND): a byte
HSP forgets to set then carries the poison pattern instead of Debian's
default zero, and these tests look for it in every segment and /proc line.
"""

import re
import select
import socket
import struct

import pytest

from lib import hsp
from lib.cmd import run, wait_until
from lib.hsp_wire import ACK, RST, SYN, RawPeer, checksum, drop_unmarked_resets, segment
from lib.netns import socket_in

# SLUB's POISON_INUSE, POISON_FREE, POISON_END and red-zone bytes.
POISON = [bytes([b]) * 4 for b in (0x5A, 0x6B, 0xA5, 0xBB, 0xCC)]
KERNEL_POINTER = re.compile(r"ffff[89a-f][0-9a-f]{11}", re.IGNORECASE)
RAW_MARK = 44


@pytest.fixture(autouse=True)
def allocations_poisoned(hsp_module):
    with open("/proc/cmdline") as f:
        cmdline = f.read().split()
    with open("/sys/kernel/slab/request_sock_hsp/poison") as f:
        poisoned = f.read().strip() == "1"
    if "init_on_alloc=0" not in cmdline or not poisoned:
        pytest.fail("needs the VM booted with VM_APPEND from the Makefile "
                    "(init_on_alloc=0, slub_debug poisoning HSP's caches)")


class Capture:
    """Every HSP packet arriving in a namespace, as raw IPv4 bytes."""

    def __init__(self, ns):
        self.sock = socket_in(ns, socket.AF_INET, socket.SOCK_RAW, hsp.protocol())
        self.packets = []

    def drain(self):
        while select.select([self.sock], [], [], 0)[0]:
            self.packets.append(self.sock.recv(65535))

    def wait_for(self, what, predicate):
        def seen():
            self.drain()
            return any(predicate(fields(p)) for p in self.packets)
        wait_until(seen, timeout=30, what=what)

    def close(self):
        self.sock.close()


def fields(packet):
    sport, dport, seq, ack_seq, doff, flags, check = struct.unpack_from("!HHIIBBH", packet, 20)
    return {"src": socket.inet_ntoa(packet[12:16]), "sport": sport, "dport": dport, "seq": seq,
            "ack_seq": ack_seq, "doff": doff, "flags": flags, "check": check}


def assert_fully_defined(packet):
    f = fields(packet)
    assert packet[0] == 0x45, "IP options or a bad header length"
    assert struct.unpack_from("!H", packet, 2)[0] == len(packet) == 20 + 16, \
        "bytes beyond the HSP header"
    assert f["doff"] == 4
    pseudo = packet[12:20] + struct.pack("!BBH", 0, hsp.protocol(), 16)
    assert checksum(pseudo + packet[20:]) == 0, "wrong checksum"
    if not f["flags"] & ACK:
        assert f["ack_seq"] == 0, "acknowledgement number set without ACK"
    for pattern in POISON:
        assert pattern not in packet, f"SLUB poison {pattern.hex()} in {packet.hex()}"


def test_every_kind_of_segment_hsp_sends__has_every_byte_defined(netns_pair):
    pair = netns_pair
    at_server, at_client = Capture(pair.server), Capture(pair.client)
    run(["sysctl", "-qw", "net.ipv4.tcp_synack_retries=1"], ns=pair.server)
    listener, port = hsp.listen(pair.server, pair.server_addr)

    # SYN, SYN-ACK, ACK; then the abortive close's RST.
    client = hsp.connect(pair.client, pair.server_addr, port)
    child, _ = listener.accept()
    child.close()
    at_client.wait_for("the child's RST", lambda f: f["flags"] == RST and f["sport"] == port)
    client.close()

    # RST|ACK for a SYN to a closed port.
    refused = hsp.hsp_socket(pair.client)
    with pytest.raises(ConnectionRefusedError):
        refused.connect((pair.server_addr, 9))
    refused.close()

    # A SYN-ACK retransmission: the peer (a raw socket) never completes.
    drop_unmarked_resets(pair.client, RAW_MARK)
    raw = RawPeer(pair.client, pair.client_addr)
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, RAW_MARK)
    raw.send(pair.server_addr, segment(pair.client_addr, pair.server_addr, 31000, port, seq=5))
    at_client.wait_for("a retransmitted SYN-ACK", lambda f: f["dport"] == 31000 and len(
        [p for p in at_client.packets if fields(p)["dport"] == 31000]) >= 2)
    # An ACK for nobody: RST carrying its acknowledgement number.
    raw.send(pair.server_addr, segment(pair.client_addr, pair.server_addr, 31001, 9,
                                       ack_seq=77, flags=ACK))
    at_client.wait_for("the RST for nobody", lambda f: f["dport"] == 31001)
    raw.close()
    listener.close()

    # Everything the client sent had arrived before the server answered it.
    at_server.drain()
    kinds = {fields(p)["flags"] for p in at_client.packets + at_server.packets}
    assert {SYN, SYN | ACK, ACK, RST, RST | ACK} <= kinds
    for packet in at_client.packets + at_server.packets:
        if fields(packet)["src"] in (pair.server_addr, pair.client_addr):
            assert_fully_defined(packet)
    at_server.close()
    at_client.close()


def test_proc_files__no_kernel_address_and_no_poison(netns_pair):
    """/proc/net/hsp with a listener, requests, queued children and
    connections, and /proc/net/hsp_stat, in both namespaces."""
    pair = netns_pair
    listener, port = hsp.listen(pair.server, pair.server_addr)
    clients = [hsp.connect(pair.client, pair.server_addr, port) for _ in range(2)]
    drop_unmarked_resets(pair.client, RAW_MARK)
    raw = RawPeer(pair.client, pair.client_addr)
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, RAW_MARK)
    raw.send(pair.server_addr, segment(pair.client_addr, pair.server_addr, 31002, port, seq=5))
    wait_until(lambda: hsp.proc_requests(pair.server, port) == 1, what="a pending request")

    for ns in (pair.server, pair.client):
        for path in ("/proc/net/hsp", "/proc/net/hsp_stat"):
            text = run(["cat", path], ns=ns).stdout
            assert not KERNEL_POINTER.search(text), f"{path}: {text}"
            for pattern in POISON:
                assert pattern.hex() not in text.lower(), f"{path}: {text}"
    raw.close()
    for sock in clients + [listener]:
        sock.close()
