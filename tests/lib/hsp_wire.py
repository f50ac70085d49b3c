# SPDX-License-Identifier: GPL-2.0
"""HSP segments built by hand and sent from a raw socket: the peer's view.

The raw socket also receives a copy of every HSP segment arriving in its
namespace, so a test sees exactly what the module answered.
"""

import select
import socket
import struct

from . import nft
from .cmd import scaled
from .hsp import loaded, protocol
from .netns import socket_in

SYN, ACK, RST, FIN = 0x01, 0x02, 0x04, 0x08
HEADER = struct.Struct("!HHIIBBH")


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def segment(src, dst, sport, dport, seq=0, ack_seq=0, flags=SYN, doff=4, payload=b"",
            bad_checksum=False):
    """An HSP segment from @src to @dst with a correct checksum unless told."""
    header = HEADER.pack(sport, dport, seq, ack_seq, doff, flags, 0)
    body = header + payload
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(
        "!BBH", 0, protocol(), len(body))
    check = checksum(pseudo + body)
    if bad_checksum:
        check ^= 0x5555
    return body[:14] + struct.pack("!H", check) + body[16:]


def parse(packet):
    """(source address, fields dict) of an IPv4 packet carrying HSP."""
    ihl = (packet[0] & 0x0F) * 4
    sport, dport, seq, ack_seq, doff, flags, _ = HEADER.unpack_from(packet, ihl)
    return socket.inet_ntoa(packet[12:16]), {
        "sport": sport, "dport": dport, "seq": seq, "ack_seq": ack_seq, "doff": doff,
        "flags": flags}


class RawPeer:
    """A raw HSP socket in a namespace: sends segments, collects replies."""

    def __init__(self, ns, addr):
        self.addr = addr
        self.sock = socket_in(ns, socket.AF_INET, socket.SOCK_RAW, protocol())

    def send(self, dst, data):
        self.sock.sendto(data, (dst, 0))

    def replies_until(self, is_last, timeout=10):
        """Segments received (from others) up to and including the one
        @is_last(fields) picks; raises TimeoutError if it never comes."""
        received = []
        while True:
            readable, _, _ = select.select([self.sock], [], [], scaled(timeout))
            if not readable:
                raise TimeoutError(f"no awaited reply; got {received}")
            src, fields = parse(self.sock.recv(65535))
            if src == self.addr:
                continue  # our own segment, looped back to the raw socket
            received.append(fields)
            if is_last(fields):
                return received

    def close(self):
        self.sock.close()


TCP_HEADER = struct.Struct("!HHIIBBHHH")
TCP_SYN, TCP_RST, TCP_ACK = 0x02, 0x04, 0x10


def tcp_syn(src, dst, sport, dport, seq):
    """A bare TCP SYN (no options), for the same floods against TCP."""
    return tcp_segment(src, dst, sport, dport, seq)


def tcp_segment(src, dst, sport, dport, seq, ack_seq=0, flags=TCP_SYN):
    """A bare TCP segment (no options, no payload)."""
    header = TCP_HEADER.pack(sport, dport, seq, ack_seq, 5 << 4, flags, 65535, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(
        "!BBH", 0, socket.IPPROTO_TCP, len(header))
    check = checksum(pseudo + header)
    return header[:16] + struct.pack("!H", check) + header[18:]


def raw_sender(ns, protocol, mark):
    """A raw socket for @protocol in @ns whose segments carry @mark."""
    sock = socket_in(ns, socket.AF_INET, socket.SOCK_RAW, protocol)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
    return sock


def drop_unmarked_resets(ns, mark):
    """The namespace's own TCP and HSP stacks would reset every SYN-ACK that
    answers a raw socket's SYN, killing the request: drop resets not
    carrying @mark (the raw socket's). Returns the lib.nft table: its
    delete() lets them through again; it goes at the end of the test.
    Without the module there is no HSP stack to silence (and no protocol
    number to name)."""
    rules = f"tcp flags & rst == rst meta mark != {mark} drop"
    if loaded():
        rules = (f"ip protocol {protocol()} @th,104,8 & {RST} == {RST} meta mark != {mark} "
                 f"drop; {rules}")
    return nft.output_rule(ns, rules)
