# SPDX-License-Identifier: GPL-2.0
"""Seeded, reproducible fuzzing of HSP's socket API, run as an unprivileged
user inside a network namespace (tests/test_hsp_fuzz.py starts it).

usage: hsp_socket_fuzz.py SEED SECONDS PEER_ADDR PEER_PORT LOG_FD

Random sequences of socket, bind, listen, connect, accept, shutdown, close,
poll, ioctl, sendmsg, recvmsg, setsockopt and getsockopt (every option
number of SOL_SOCKET, SOL_IP and HSP's own level, with valid, empty, short,
long and garbage values) on a pool of HSP sockets in every state: new,
bound, listening, connecting, connected, accepted, shut down, closed. Peers
are its own listeners over loopback and PEER_ADDR:PEER_PORT, a listener in
another namespace. Addresses are passed as raw bytes through libc, so
malformed ones reach the kernel too.

Every call is written to LOG_FD before it is made ("SEED INDEX call"), so a
crash leaves the sequence that caused it on disk. Prints one JSON line of
totals at the end.
"""

import ctypes
import errno
import json
import os
import random
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from lib import hsp  # noqa: E402

IPPROTO_HSP = hsp.protocol()
POOL = 12
LEVELS = (socket.SOL_SOCKET, socket.IPPROTO_IP, IPPROTO_HSP, socket.IPPROTO_TCP, 0x7fffffff)
OPTNAMES = {socket.SOL_SOCKET: range(0, 80), socket.IPPROTO_IP: range(0, 80)}
IOCTLS = (0x541B, 0x5411, 0x8905, 0x8906, 0x8907, 0x5421, 0x8915, 0x8933, 0x89E0,
          0xC020660B, 0, 0xFFFFFFFF)
MSG_FLAGS = (0, socket.MSG_DONTWAIT, socket.MSG_PEEK | socket.MSG_DONTWAIT,
             socket.MSG_OOB | socket.MSG_DONTWAIT, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT,
             socket.MSG_TRUNC | socket.MSG_DONTWAIT, 0xFFFF | socket.MSG_DONTWAIT)

libc = ctypes.CDLL(None, use_errno=True)


def sockaddr_in(addr, port, family=socket.AF_INET):
    return struct.pack("=HH4s8x", family, socket.htons(port), socket.inet_aton(addr))


class Fuzzer:
    def __init__(self, seed, peer, log):
        self.rng = random.Random(seed)
        self.seed, self.peer, self.log = seed, peer, log
        self.socks = []
        self.ports = [0, 1, 9, 65535]
        self.calls = 0
        self.errors = {}

    def record(self, text):
        self.calls += 1
        os.write(self.log, f"{self.seed} {self.calls} {text}\n".encode())

    def pick(self):
        return self.rng.choice(self.socks) if self.socks else None

    def value(self):
        """An option value: an int of the usual sizes, empty, short, long or garbage."""
        kind = self.rng.randrange(7)
        if kind == 0:
            return struct.pack("i", self.rng.choice((0, 1, -1, 2, 255, 65536, 2**31 - 1, -2**31)))
        if kind == 1:
            return b""
        if kind == 2:
            return os.urandom(self.rng.randrange(1, 4))
        if kind == 3:
            return struct.pack("ii", self.rng.randrange(-2, 3), self.rng.randrange(-2, 100))
        if kind == 4:
            return os.urandom(self.rng.randrange(4, 300))
        if kind == 5:
            return b"\x01\x01\x01\x00" * self.rng.randrange(1, 11)  # IP options: NOPs
        return b"\x00" * self.rng.randrange(1, 64)

    def address(self):
        """Where to bind or connect: ours, the peer's, nobody's, or malformed."""
        kind = self.rng.randrange(8)
        if kind == 0:
            return sockaddr_in("127.0.0.1", self.rng.choice(self.ports))
        if kind == 1:
            return sockaddr_in(self.peer[0], self.peer[1])
        if kind == 2:
            return sockaddr_in("127.0.0.1", 0)
        if kind == 3:
            return sockaddr_in("0.0.0.0", self.rng.choice(self.ports))
        if kind == 4:
            return struct.pack("=H14x", socket.AF_UNSPEC)
        if kind == 5:
            return sockaddr_in(self.rng.choice(("255.255.255.255", "224.0.0.1", "10.77.0.255",
                                                "10.77.0.99")), self.rng.randrange(65536))
        if kind == 6:
            return os.urandom(self.rng.randrange(0, 40))
        return sockaddr_in("127.0.0.1", self.rng.randrange(65536), socket.AF_INET6)

    def syscall(self, name, *args):
        result = getattr(libc, name)(*args)
        if result < 0:
            self.count(ctypes.get_errno())
        return result

    def count(self, err):
        self.errors[errno.errorcode.get(err, str(err))] = \
            self.errors.get(errno.errorcode.get(err, str(err)), 0) + 1

    def op_socket(self):
        if len(self.socks) >= POOL:
            return self.op_close()
        self.record("socket")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_HSP)
        sock.setblocking(False)
        self.socks.append(sock)

    def op_close(self):
        sock = self.pick()
        if sock:
            self.record(f"close fd={sock.fileno()}")
            self.socks.remove(sock)
            sock.close()

    def op_bind(self):
        sock = self.pick()
        if sock:
            addr = self.address()
            length = self.rng.choice((len(addr), len(addr), 0, 2, 15, 128))
            buf = ctypes.create_string_buffer(addr, max(len(addr), length, 1))
            self.record(f"bind fd={sock.fileno()} addr={addr.hex()} len={length}")
            if self.syscall("bind", sock.fileno(), buf, length) == 0:
                port = sock.getsockname()[1]
                if port not in self.ports:
                    self.ports.append(port)

    def op_listen(self):
        sock = self.pick()
        if sock:
            backlog = self.rng.choice((0, 1, 4, -1, 2**31 - 1))
            self.record(f"listen fd={sock.fileno()} backlog={backlog}")
            if self.syscall("listen", sock.fileno(), backlog) == 0:
                port = sock.getsockname()[1]
                if port not in self.ports:
                    self.ports.append(port)

    def op_connect(self):
        sock = self.pick()
        if sock:
            addr = self.address()
            length = self.rng.choice((len(addr), len(addr), 0, 2, 15))
            buf = ctypes.create_string_buffer(addr, max(len(addr), length, 1))
            self.record(f"connect fd={sock.fileno()} addr={addr.hex()} len={length}")
            self.syscall("connect", sock.fileno(), buf, length)

    def op_accept(self):
        sock = self.pick()
        if sock:
            # Never blocking; an invalid flag set now and then.
            flags = self.rng.choice((os.O_NONBLOCK, os.O_NONBLOCK | os.O_CLOEXEC, 0x7FFFFFFF))
            self.record(f"accept4 fd={sock.fileno()} flags={flags:#x}")
            fd = self.syscall("accept4", sock.fileno(), None, None, flags)
            if fd >= 0:
                child = socket.socket(fileno=fd)
                if len(self.socks) < POOL:
                    self.socks.append(child)
                else:
                    child.close()

    def op_shutdown(self):
        sock = self.pick()
        if sock:
            how = self.rng.choice((0, 1, 2, 3, -1))
            self.record(f"shutdown fd={sock.fileno()} how={how}")
            self.syscall("shutdown", sock.fileno(), how)

    def op_poll(self):
        if self.socks:
            self.record("poll")
            poller = select.poll()
            for sock in self.socks:
                poller.register(sock, select.POLLIN | select.POLLOUT | select.POLLPRI
                                | select.POLLRDHUP)
            poller.poll(0)

    def op_ioctl(self):
        sock = self.pick()
        if sock:
            request = self.rng.choice(IOCTLS)
            buf = ctypes.create_string_buffer(os.urandom(64), 64)
            self.record(f"ioctl fd={sock.fileno()} request={request:#x}")
            self.syscall("ioctl", sock.fileno(), ctypes.c_ulong(request), buf)

    def op_sendmsg(self):
        sock = self.pick()
        if sock:
            flags = self.rng.choice(MSG_FLAGS)
            data = os.urandom(self.rng.randrange(0, 64))
            ancillary = []
            if self.rng.random() < 0.3:
                ancillary = [(socket.IPPROTO_IP, self.rng.randrange(0, 30), self.value())]
            self.record(f"sendmsg fd={sock.fileno()} flags={flags:#x} len={len(data)} "
                        f"cmsg={[(l, t, v.hex()) for l, t, v in ancillary]}")
            try:
                sock.sendmsg([data], ancillary, flags)
            except OSError as e:
                self.count(e.errno)

    def op_recvmsg(self):
        sock = self.pick()
        if sock:
            flags = self.rng.choice(MSG_FLAGS) | socket.MSG_DONTWAIT
            self.record(f"recvmsg fd={sock.fileno()} flags={flags:#x}")
            try:
                sock.recvmsg(self.rng.choice((0, 1, 4096)), self.rng.choice((0, 64)), flags)
            except OSError as e:
                self.count(e.errno)

    def op_setsockopt(self):
        sock = self.pick()
        if sock:
            level = self.rng.choice(LEVELS)
            optname = self.rng.choice(OPTNAMES.get(level, range(0, 40)))
            value = self.value()
            self.record(f"setsockopt fd={sock.fileno()} level={level} opt={optname} "
                        f"value={value.hex()}")
            buf = ctypes.create_string_buffer(value, max(len(value), 1))
            self.syscall("setsockopt", sock.fileno(), level, optname, buf, len(value))

    def op_getsockopt(self):
        sock = self.pick()
        if sock:
            level = self.rng.choice(LEVELS)
            optname = self.rng.choice(OPTNAMES.get(level, range(0, 40)))
            size = self.rng.choice((0, 1, 4, 8, 40, 256))
            self.record(f"getsockopt fd={sock.fileno()} level={level} opt={optname} len={size}")
            buf = ctypes.create_string_buffer(max(size, 1))
            length = ctypes.c_uint(size)
            self.syscall("getsockopt", sock.fileno(), level, optname, buf, ctypes.byref(length))

    OPS = ("socket", "socket", "close", "bind", "bind", "listen", "listen", "connect",
           "connect", "connect", "accept", "accept", "shutdown", "poll", "ioctl", "sendmsg",
           "recvmsg", "setsockopt", "setsockopt", "setsockopt", "getsockopt", "getsockopt")

    def run(self, seconds):
        deadline = time.monotonic() + seconds
        sequences = 0
        while time.monotonic() < deadline:
            # A sequence: a fresh pool, a few dozen calls, everything closed.
            sequences += 1
            for _ in range(self.rng.randrange(10, 60)):
                getattr(self, "op_" + self.rng.choice(self.OPS))()
            while self.socks:
                self.op_close()
        return sequences


def main():
    seed, seconds = int(sys.argv[1]), float(sys.argv[2])
    peer = (sys.argv[3], int(sys.argv[4]))
    log = int(sys.argv[5])
    fuzzer = Fuzzer(seed, peer, log)
    sequences = fuzzer.run(seconds)
    print(json.dumps({"seed": seed, "calls": fuzzer.calls, "sequences": sequences,
                      "errors": fuzzer.errors}))


if __name__ == "__main__":
    main()
