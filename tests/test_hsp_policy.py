# SPDX-License-Identifier: GPL-2.0
"""HSP as attack surface and as a citizen of the host: what any local user
can do to it through the socket API, and the host's packet policy (socket
filters, nftables owner matches) applied to it. Every scenario runs for TCP
and for HSP; TCP on the same kernel is the reference."""

import ctypes
import errno
import json
import os
import socket
import struct
import sys

import pytest

from lib import nft
from lib.cgroup import DenyCgroup
from lib.cmd import run, scaled, wait_until
from lib.hsp_wire import checksum
from lib.netns import NetNSPair, connected, socket_in
from lib.proto import PROTOCOLS

# Three NOPs and an end-of-list: IP options every kernel accepts.
IP_OPTIONS_NOPS = b"\x01\x01\x01\x00"
SO_ATTACH_FILTER = 26

# Run as nobody in the client namespace: IP_OPTIONS in every socket state,
# with valid, empty and invalid values; prints {state: [0 or errno, ...]}.
UNPRIVILEGED_IP_OPTIONS = r"""
import json, socket, sys

proto, unreachable = int(sys.argv[1]), sys.argv[2]
values = (b"", b"\x01\x01\x01\x00", b"\x00" * 41, b"\x44")

def attempt(sock):
    results = []
    for value in values:
        try:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, value)
            results.append(0)
        except OSError as e:
            results.append(e.errno)
    return results

seen = {}
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
seen["new"] = attempt(listener)
listener.bind(("127.0.0.1", 0))
seen["bound"] = attempt(listener)
listener.listen(4)
seen["listening"] = attempt(listener)
client = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
client.settimeout(30)
client.connect(listener.getsockname())
seen["connected"] = attempt(client)
child, _ = listener.accept()
seen["accepted"] = attempt(child)
pending = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
pending.setblocking(False)
pending.connect_ex((unreachable, 9))
seen["connecting"] = attempt(pending)
for sock in (pending, child, client, listener):
    sock.close()
print(json.dumps(seen))
"""


@pytest.fixture
def pair(netns_pair, hsp_module):
    return netns_pair


def test_ip_options__any_user_in_any_state_as_for_tcp(pair):
    """IP_OPTIONS makes generic IPv4 code call icsk_sync_mss on every
    connection socket: HSP must have one (a NULL one crashed the kernel)."""
    seen = {}
    for proto in PROTOCOLS:
        out = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                   sys.executable, "-c", UNPRIVILEGED_IP_OPTIONS, str(proto.number()),
                   "10.77.0.99"],
                  ns=pair.client).stdout
        seen[proto.name] = json.loads(out)
    assert seen["hsp"] == seen["tcp"]
    assert seen["tcp"]["listening"][:2] == [0, 0]


def test_ip_options__a_child_has_its_own_not_its_listeners(pair):
    """A child takes the options of its request (none: neither protocol
    echoes a SYN without options), never the listener's: sharing them would
    free them twice."""
    seen = {}
    for proto in PROTOCOLS:
        listener, _ = proto.listen(pair.server, pair.server_addr, 4)
        listener.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, IP_OPTIONS_NOPS)
        client = proto.socket(pair.client)
        client.settimeout(scaled(30))
        client.connect(listener.getsockname())
        child, _ = listener.accept()
        seen[proto.name] = (listener.getsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, 40),
                            child.getsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, 40))
        # Replacing the child's options frees what it holds: not the listener's.
        child.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, IP_OPTIONS_NOPS)
        for sock in (child, client, listener):
            sock.close()
    assert seen["hsp"] == seen["tcp"]
    assert seen["tcp"][0] != b"" and seen["tcp"][1] == b""


def attach_drop_all_filter(sock):
    """SO_ATTACH_FILTER with one classic BPF instruction: return 0 (drop)."""
    program = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0))  # BPF_RET|BPF_K
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                    struct.pack("HP", 1, ctypes.addressof(program)))


def test_socket_filter__drops_final_acks_and_syns_as_for_tcp(hsp_module):
    """A listener's socket filter sees every segment for the listener and
    for its requests, as TCP runs it (and cgroup ingress and the LSM) in
    tcp_filter(); each segment it drops counts in the listener's drops."""
    outcome = {}
    for proto in PROTOCOLS:
        with NetNSPair() as pair:
            listener, port = proto.listen(pair.server, pair.server_addr, 8)
            held = nft.output_rule(pair.client, f"{proto.final_ack_match(port)} drop")
            clients = [proto.socket(pair.client) for _ in range(2)]
            clients[0].setblocking(False)
            clients[0].connect_ex((pair.server_addr, port))
            wait_until(lambda: proto.requests(pair.server, port) == 1, what="the request")
            attach_drop_all_filter(listener)
            drops = proto.queues(pair.server, port)["drops"]
            # The final ACK, answering the next SYN-ACK retransmission, and
            # a new SYN: both for the filter.
            held.delete()
            clients[1].setblocking(False)
            clients[1].connect_ex((pair.server_addr, port))
            wait_until(lambda: proto.queues(pair.server, port)["drops"] - drops >= 2,
                       what=f"{proto.name}: the filter to drop an ACK and a SYN")
            queues = proto.queues(pair.server, port)
            outcome[proto.name] = {"syn_queue": queues["syn_queue"],
                                   "accept_queue": queues["accept_queue"]}
            for sock in clients + [listener]:
                sock.close()
    assert outcome["hsp"] == outcome["tcp"] == {"syn_queue": 1, "accept_queue": 0}


def test_nft_owner_match__sees_hsp_segments_as_tcp_segments(hsp_module):
    """nftables' meta skuid (like xt_owner and cgroup egress programs) needs
    the sending socket on the packet: a connect's SYN carries the client,
    a SYN-ACK the listener (through its request)."""
    outcome = {}
    for proto in PROTOCOLS:
        seen = {}
        for side in ("client", "server"):
            with NetNSPair() as pair:
                listener, port = proto.listen(pair.server, pair.server_addr, 8)
                ns = pair.client if side == "client" else pair.server
                owner = nft.output_rule(ns, "meta skuid 0 counter drop")
                client = proto.socket(pair.client)
                client.setblocking(False)
                client.connect_ex((pair.server_addr, port))
                wait_until(lambda: owner.counter() > 0,
                           what=f"{proto.name}: the {side}'s owner rule to match")
                # Whether a request is in the SYN queue at this moment is no
                # measure: a request whose SYN-ACK retransmission cannot be
                # sent is dropped by the request timer (TCP's too), and a
                # retransmitted SYN makes the next; how many of them were
                # seen depends on the time taken to get here.
                seen[side] = {"syn_reached_server": proto.segments_in(pair.server) > 0,
                              "accept_queue": proto.queues(pair.server, port)["accept_queue"]}
                client.close()
                listener.close()
        outcome[proto.name] = seen
    assert outcome["hsp"] == outcome["tcp"]
    # The client's SYN dropped: nothing reached the server; the SYN-ACK
    # dropped: the SYN did, and no connection was made either way.
    assert outcome["tcp"] == {"client": {"syn_reached_server": False, "accept_queue": 0},
                              "server": {"syn_reached_server": True, "accept_queue": 0}}


def count_output(ns, match):
    """An nftables counter in @ns's output hook, before the cgroup egress
    hook (ip_finish_output): it counts what a socket tried to send."""
    return nft.output_rule(ns, f"{match} counter").counter


def connect_from_cgroup(proto, pair, policy):
    """A listener outside @policy's cgroup and a non-blocking connect() to
    it from a client created inside: (listener, port, client, connect's
    errno, a counter of what the client tried to send)."""
    listener, port = proto.listen(pair.server, pair.server_addr, 8)
    sent = count_output(pair.client, proto.to_port_match(port))
    with policy.sockets_created():
        client = proto.socket(pair.client)
    client.setblocking(False)
    return listener, port, client, client.connect_ex((pair.server_addr, port)), sent


def test_cgroup_ingress_deny__stops_syns_at_the_listener_as_for_tcp(hsp_module):
    """A cgroup ingress program of the listener's cgroup runs on every
    segment for the listener (TCP: tcp_filter()); one that refuses all
    drops the SYN before a request exists, counted in the listener's drops."""
    outcome = {}
    for proto in PROTOCOLS:
        with NetNSPair() as pair, DenyCgroup("deny_ingress") as policy:
            with policy.sockets_created():
                listener, port = proto.listen(pair.server, pair.server_addr, 8)
            client = proto.socket(pair.client)
            client.setblocking(False)
            client.connect_ex((pair.server_addr, port))
            wait_until(lambda: proto.queues(pair.server, port)["drops"] >= 1,
                       what=f"{proto.name}: the listener to drop the SYN")
            outcome[proto.name] = {"requests": proto.requests(pair.server, port),
                                   "accept_queue": proto.queues(pair.server, port)["accept_queue"],
                                   "connected": connected(client)}
            client.close()
            listener.close()
    assert outcome["hsp"] == outcome["tcp"] == {"requests": 0, "accept_queue": 0,
                                                "connected": False}


def test_cgroup_egress_deny__stops_a_client_as_it_stops_tcp(hsp_module):
    """A cgroup egress program of the client's cgroup sees its SYNs (they
    carry the socket) and drops each: connect() is still in progress after
    the SYN was sent again, and the server never saw it."""
    outcome = {}
    for proto in PROTOCOLS:
        with NetNSPair() as pair, DenyCgroup("deny_egress") as policy:
            listener, port, client, err, sent = connect_from_cgroup(proto, pair, policy)
            wait_until(lambda: sent() >= 2, what=f"{proto.name}: the SYN to be sent again")
            outcome[proto.name] = {"connect": errno.errorcode.get(err, err),
                                   "requests": proto.requests(pair.server, port),
                                   "connected": connected(client)}
            client.close()
            listener.close()
    assert outcome["hsp"] == outcome["tcp"] == {"connect": "EINPROGRESS", "requests": 0,
                                                "connected": False}


def test_cgroup_egress_deny__stops_a_listeners_synacks_as_for_tcp(hsp_module):
    """The listener's cgroup egress program sees its SYN-ACKs (owned by the
    request, whose full socket is the listener) and drops each: the client
    never connects, and a SYN-ACK that could not be sent is not counted as
    sent again."""
    outcome = {}
    for proto in PROTOCOLS:
        with NetNSPair() as pair, DenyCgroup("deny_egress") as policy:
            with policy.sockets_created():
                listener, port = proto.listen(pair.server, pair.server_addr, 8)
            sent = count_output(pair.server, proto.from_port_match(port))
            retransmits = proto.synack_retransmits(pair.server)
            client = proto.socket(pair.client)
            client.setblocking(False)
            client.connect_ex((pair.server_addr, port))
            # The SYN-ACK and another: for the client's second SYN or the
            # request's timer.
            wait_until(lambda: sent() >= 2, what=f"{proto.name}: a SYN-ACK to be sent again")
            outcome[proto.name] = {
                "accept_queue": proto.queues(pair.server, port)["accept_queue"],
                "synack_retransmits": proto.synack_retransmits(pair.server) - retransmits,
                "connected": connected(client)}
            client.close()
            listener.close()
    assert outcome["hsp"] == outcome["tcp"] == {"accept_queue": 0, "synack_retransmits": 0,
                                                "connected": False}


def test_cgroup_connect4_deny__refuses_connect_as_for_tcp(hsp_module):
    """A cgroup connect4 program runs before the protocol's connect (TCP:
    tcp_v4_pre_connect); one that refuses makes connect() fail with EPERM
    before a SYN is sent."""
    outcome = {}
    for proto in PROTOCOLS:
        with NetNSPair() as pair, DenyCgroup("deny_connect4") as policy:
            listener, port, client, err, sent = connect_from_cgroup(proto, pair, policy)
            outcome[proto.name] = {"connect": errno.errorcode.get(err, err), "sent": sent(),
                                   "requests": proto.requests(pair.server, port)}
            client.close()
            listener.close()
    assert outcome["hsp"] == outcome["tcp"] == {"connect": "EPERM", "sent": 0, "requests": 0}


def test_reconnect_from_the_port_of_a_stale_request__as_for_tcp(hsp_module):
    """A client whose final ACK and reset were lost leaves a request behind
    (HSP has no TIME_WAIT, so its ports are reused at once). A new connect()
    from the same port meets it: the server answers its SYN with an ACK of
    the old handshake, the client resets the request and its next SYN gets
    through, after one retransmission, not after the request's minute-long
    life."""
    stale_isn = 7000
    outcome = {}
    for proto in PROTOCOLS:
        with NetNSPair() as pair:
            listener, port = proto.listen(pair.server, pair.server_addr, 8)
            probe = proto.socket(pair.client)
            probe.bind((pair.client_addr, 0))
            sport = probe.getsockname()[1]
            probe.close()
            # The stale handshake: a SYN from the port, and none of the
            # SYN-ACKs of its request ever reach the client's kernel (which
            # would reset the request itself); its ACK to a new SYN does.
            syn = proto.syn(pair.client_addr, pair.server_addr, sport, port, stale_isn)
            nft.input_rule(pair.client,
                           f"{proto.synack_acking_match(port, stale_isn + 1)} drop")
            with proto.raw_socket(pair.client) as raw:
                raw.sendto(syn, (pair.server_addr, 0))
            wait_until(lambda: proto.requests(pair.server, port) == 1, what="the stale request")

            retransmits = proto.syn_retransmits(pair.client)
            client = proto.socket(pair.client)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            client.bind((pair.client_addr, sport))
            client.settimeout(scaled(30))
            client.connect((pair.server_addr, port))
            child, peer = listener.accept()
            outcome[proto.name] = {"peer": peer == (pair.client_addr, sport),
                                   "syn_retransmits": proto.syn_retransmits(pair.client)
                                   - retransmits}
            for sock in (child, client, listener):
                sock.close()
    assert outcome["hsp"] == outcome["tcp"] == {"peer": True, "syn_retransmits": 1}


def ipv4_packet(src, dst, protocol, payload):
    """An IPv4 header with its checksum, then @payload."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, protocol, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload


def mac_address(ns, dev):
    return bytes.fromhex(run(["cat", f"/sys/class/net/{dev}/address"], ns=ns)
                         .stdout.strip().replace(":", ""))


def test_syn_to_an_ip_broadcast_in_a_unicast_frame__dropped_as_by_tcp(hsp_module):
    """A SYN whose IP destination is the subnet's broadcast address, in an
    Ethernet frame addressed to the server alone (so not dropped as a
    broadcast frame): the route says broadcast, and TCP drops it at the
    listener, counted; so must HSP, instead of opening a request."""
    broadcast, sport = "10.77.0.255", 40000
    outcome = {}
    for proto in PROTOCOLS:
        with NetNSPair() as pair:
            listener, port = proto.listen(pair.server, "0.0.0.0", 8)
            payload = proto.syn(pair.client_addr, broadcast, sport, port, 1000)
            frame = (mac_address(pair.server, pair.server_dev)
                     + mac_address(pair.client, pair.client_dev) + b"\x08\x00"
                     + ipv4_packet(pair.client_addr, broadcast, proto.number(), payload))
            with socket_in(pair.client, socket.AF_PACKET, socket.SOCK_RAW) as link:
                link.bind((pair.client_dev, 0))
                link.send(frame)
            wait_until(lambda: proto.queues(pair.server, port)["drops"] == 1,
                       what=f"{proto.name}: the listener to drop the SYN")
            outcome[proto.name] = proto.requests(pair.server, port)
            listener.close()
    assert outcome["hsp"] == outcome["tcp"] == 0


@pytest.fixture
def vrf_module():
    """The VRF driver (a module in Debian's kernel, built into the debug one)."""
    if not os.path.exists("/sys/module/vrf"):
        run(["modprobe", "vrf"])


def test_vrf__a_child_is_bound_to_the_vrf_its_syn_came_in_on(hsp_module, vrf_module):
    """With the server's link in a VRF and tcp_l3mdev_accept on, an unbound
    listener takes connections from the VRF, and each child is bound to the
    VRF its SYN arrived in (the request's ir_iif), not to the listener's
    device: its traffic must stay in that VRF."""
    outcome = {}
    for proto in PROTOCOLS:
        with NetNSPair() as pair:
            for cmd in (["ip", "link", "add", "qwvrf", "type", "vrf", "table", "10"],
                        ["ip", "link", "set", "qwvrf", "up"],
                        ["ip", "link", "set", pair.server_dev, "master", "qwvrf"],
                        ["sysctl", "-qw", "net.ipv4.tcp_l3mdev_accept=1"]):
                run(cmd, ns=pair.server)
            # The address now lives in the VRF's table: bind the wildcard.
            listener, port = proto.listen(pair.server, "0.0.0.0", 4)
            client = proto.socket(pair.client)
            client.settimeout(scaled(30))
            client.connect((pair.server_addr, port))
            child, _ = listener.accept()
            outcome[proto.name] = [sock.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16)
                                   for sock in (listener, child)]
            for sock in (child, client, listener):
                sock.close()
    assert outcome["hsp"] == outcome["tcp"] == [b"", b"qwvrf\0"]
