# SPDX-License-Identifier: GPL-2.0
"""Network namespaces and a veth link between two of them."""

import ctypes
import os
import secrets
import select
import socket
import threading
from contextlib import closing

from .cmd import run, scaled, wait_until
from .defer import defer


class NetNS:
    """A named network namespace with loopback up; deleted on exit."""

    def __init__(self, prefix="qw"):
        self.name = f"{prefix}-{secrets.token_hex(4)}"
        run(["ip", "netns", "add", self.name])
        try:
            run(["ip", "link", "set", "lo", "up"], ns=self.name)
            self.inode = os.stat(f"/run/netns/{self.name}").st_ino
        except Exception:
            self.delete()
            raise

    def delete(self):
        run(["ip", "netns", "del", self.name], check=False)
        wait_until(
            lambda: not os.path.exists(f"/run/netns/{self.name}"),
            what=f"netns {self.name} to go",
        )

    def __str__(self):
        return self.name

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.delete()


class NetNSPair:
    """Two namespaces joined by a veth link: 10.77.0.1 (server) and .2 (client)."""

    server_addr = "10.77.0.1"
    client_addr = "10.77.0.2"

    def __init__(self):
        self.server = NetNS("qw-srv")
        try:
            self.client = NetNS("qw-cli")
        except Exception:
            self.server.delete()
            raise
        try:
            veth = f"qw{secrets.token_hex(3)}"
            self.server_dev, self.client_dev = veth + "s", veth + "c"
            run(["ip", "link", "add", self.server_dev, "netns", self.server.name,
                 "type", "veth", "peer", "name", self.client_dev, "netns", self.client.name])
            for ns, dev, addr in ((self.server, self.server_dev, self.server_addr),
                                  (self.client, self.client_dev, self.client_addr)):
                run(["ip", "addr", "add", f"{addr}/24", "dev", dev], ns=ns)
                run(["ip", "link", "set", dev, "up"], ns=ns)
        except Exception:
            self.delete()
            raise

    def delete(self):
        self.client.delete()
        self.server.delete()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.delete()


def _setns(fd):
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class Socket(socket.socket):
    """A socket.socket whose close() is deferred to the end of the test
    (lib.defer), and so is that of every child its accept() returns."""

    def accept(self):
        child, address = super().accept()
        defer(child.close)
        return child, address


def socket_in(ns, *args, **kwargs):
    """A socket created inside netns @ns (None: the current one), closed at
    the end of the test at the latest (lib.defer).

    A socket belongs to the namespace it was created in, so the calling
    thread enters @ns just for the creation and returns at once.
    """
    if ns is None:
        sock = Socket(*args, **kwargs)
    else:
        with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{ns}") as target:
            _setns(target.fileno())
            try:
                sock = Socket(*args, **kwargs)
            finally:
                _setns(home.fileno())
    defer(sock.close)
    return sock


def connected(sock):
    """Whether a non-blocking connect() on @sock has completed: writable and
    with a peer. getpeername() fails in SYN_SENT and once a failed connect
    left the socket closed (which poll() calls writable); unlike reading
    SO_ERROR, asking does not clear the error the test may want to see."""
    if not select.select([], [sock], [], 0)[1]:
        return False
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


class AcceptThread(threading.Thread):
    """accept() on @listener in a thread of its own; .peer is the address
    of the connection it returned, .errno what it failed with."""

    def __init__(self, listener):
        super().__init__(daemon=True)
        self.listener = listener
        self.peer = None
        self.errno = None
        self.start()

    def run(self):
        try:
            child, self.peer = self.listener.accept()
            child.close()
        except OSError as e:
            self.errno = e.errno

    def blocked(self):
        """Whether the thread sleeps in accept(), waiting for a connection."""
        with open(f"/proc/{self.native_id}/wchan") as f:
            where = f.read()
        return "accept" in where or "wait_for_connect" in where


def backlog_drained(ns):
    """Returns once this CPU's network backlog has processed every packet
    queued on it before the call: a connect over @ns's loopback queues its
    SYN behind them (loopback and veth share the per-CPU backlog) and
    completes only once that SYN was taken, retried if the backlog dropped it."""
    with closing(socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)) as listener, \
            closing(socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)) as probe:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        probe.settimeout(scaled(30))
        probe.connect(listener.getsockname())
