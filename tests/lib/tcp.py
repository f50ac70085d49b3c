# SPDX-License-Identifier: GPL-2.0
"""TCP workloads between the namespaces of a pair."""

import socket

from . import nft
from .cmd import StoppableThread
from .netns import socket_in


def tcp_listener(ns, addr, backlog, family=socket.AF_INET):
    """A TCP listener on an ephemeral port of @addr in @ns: (socket, port)."""
    listener = socket_in(ns, family, socket.SOCK_STREAM)
    listener.bind((addr, 0))
    listener.listen(backlog)
    return listener, listener.getsockname()[1]


def connect_many(ns, addr, port, count, family=socket.AF_INET):
    """@count non-blocking connects from @ns; the sockets are returned."""
    clients = []
    for _ in range(count):
        client = socket_in(ns, family, socket.SOCK_STREAM)
        client.setblocking(False)
        client.connect_ex((addr, port))
        clients.append(client)
    return clients


def fastopen_connect(sock, address, data):
    """A non-blocking connect sending @data in the SYN if @sock's namespace
    has a TFO cookie for @address (else after the handshake)."""
    sock.setblocking(False)
    try:
        sock.sendto(data, socket.MSG_FASTOPEN, address)
    except BlockingIOError:
        pass  # EINPROGRESS: the handshake goes on


def hold_final_acks(ns, port):
    """Drops the final ACKs @ns sends to @port: requests stay in the SYN
    queue (the client believes it is connected) until the returned lib.nft
    table is deleted (.delete(), or the end of the test)."""
    return nft.output_rule(ns, f"tcp dport {port} tcp flags & (syn | ack) == ack drop")


class ConnectLoop(StoppableThread):
    """Connects from @ns to @listener, accepts and closes both, over and over
    until the context is left: a steady stream of handshakes and accepts
    that never fills a queue; .connects counts them."""

    def __init__(self, ns, listener, family=socket.AF_INET):
        super().__init__()
        self.ns, self.listener, self.family = ns, listener, family
        self.target = listener.getsockname()
        self.connects = 0
        self.errors = []

    def run(self):
        while not self._finished.is_set():
            with socket_in(self.ns, self.family, socket.SOCK_STREAM) as client:
                client.settimeout(5)
                try:
                    client.connect(self.target)
                    self.listener.accept()[0].close()
                    self.connects += 1
                except OSError as e:
                    self.errors.append(e)
