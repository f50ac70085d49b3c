# SPDX-License-Identifier: GPL-2.0
"""What the kernel itself says: the oracles qwatch is compared against."""

import errno
import os
import re

from .cmd import StoppableThread, run

# Messages that mean the kernel is unwell (the union netdev CI and MPTCP CI
# grep for, plus what the stock Debian kernel prints for leaks).
SPLAT = re.compile(
    r"WARNING:|BUG:|Oops|Call Trace|refcount_t:|\] RIP: |Slab cache still has objects"
    r"|Poison overwritten|Object already free|list_(add|del) corruption|usercopy:"
    r"|blocked for more than|soft lockup|rcu: INFO|unregister_netdevice: waiting for"
)


class KernelLog:
    """New /dev/kmsg records since the object was created."""

    def __init__(self):
        self._fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self._fd, 0, os.SEEK_END)

    def read_new(self):
        lines = []
        while True:
            try:
                record = os.read(self._fd, 8192)
            except OSError as e:
                if e.errno == errno.EAGAIN:
                    break
                if e.errno == errno.EPIPE:  # overwritten records: keep reading
                    continue
                raise
            if not record:
                break
            # "prio,seq,ts,flags;message\n continuation lines"
            lines.append(record.decode(errors="replace").split(";", 1)[-1].rstrip())
        return lines

    def close(self):
        os.close(self._fd)


def ss_listener(ns, port):
    """(Recv-Q, Send-Q, drops) of the TCP listener on @port in @ns, per ss."""
    out = run(["ss", "-Hltnm", f"sport = :{port}"], ns=ns).stdout
    fields = out.split()
    if not fields:
        raise LookupError(f"ss shows no TCP listener on port {port} in {ns}")
    drops = re.search(r"\bd(\d+)\)", out)
    return int(fields[1]), int(fields[2]), int(drops.group(1)) if drops else 0


def ss_syn_recv(ns, port):
    """The number of TCP request socks (SYN-RECV) for local port @port in @ns."""
    out = run(["ss", "-Htn", "state", "syn-recv", f"sport = :{port}"], ns=ns).stdout
    return len(out.splitlines())


# ss -o's timer of a socket: timer:(name,expires,retransmits).
_SS_TIMER = re.compile(r"timer:\((\w+),([^,]*),(\d+)\)")


def ss_milliseconds(text):
    """An ss timer's expiry as iproute2's print_ms_timer() writes it
    ("996ms", "1.234ms" for 1 s 234 ms, "5sec", "12sec", "1min3sec"), as
    (milliseconds, precision in milliseconds): past 9 s ss drops the
    milliseconds, past 9 min the seconds."""
    match = re.fullmatch(r"(?:(\d+)min)?(?:(\d+)(?:sec|\.))?(?:(\d+)ms)?", text)
    if not match:
        raise ValueError(f"not an ss timer: {text!r}")
    minutes, seconds, millis = (int(g) if g else 0 for g in match.groups())
    precision = 60000 if minutes > 9 else 1000 if minutes or seconds > 9 else 1
    return (minutes * 60 + seconds) * 1000 + millis, precision


def ss_syn_recv_requests(ns, port):
    """The TCP request socks (SYN-RECV) for local port @port in @ns, per
    ss -o: {(raddr, rport): {"retrans": SYN-ACKs sent again (the request's
    num_retrans), "timer_ms": time to its timer, "timer_precision_ms": how
    exact ss printed that}}."""
    out = run(["ss", "-Htno", "state", "syn-recv", f"sport = :{port}"], ns=ns).stdout
    requests = {}
    for line in out.splitlines():
        # One state asked for: no State column. Recv-Q Send-Q Local Peer timer
        fields = line.split()
        raddr, rport = fields[3].rsplit(":", 1)
        timer = _SS_TIMER.search(line)
        if not timer:
            raise LookupError(f"ss -o shows no timer for a request: {line}")
        timer_ms, precision = ss_milliseconds(timer.group(2))
        requests[(raddr.strip("[]"), int(rport))] = {
            "retrans": int(timer.group(3)), "timer_ms": timer_ms,
            "timer_precision_ms": precision}
    return requests


def ss_established_recv_q(ns, port):
    """{(raddr, rport): Recv-Q} of the ESTABLISHED TCP sockets on local
    port @port in @ns (a listener's children, accepted or not), per ss."""
    out = run(["ss", "-Htn", "state", "established", f"sport = :{port}"], ns=ns).stdout
    sockets = {}
    for line in out.splitlines():
        fields = line.split()
        raddr, rport = fields[3].rsplit(":", 1)
        sockets[(raddr.strip("[]"), int(rport))] = int(fields[0])
    return sockets


def nstat(ns, counter):
    """The absolute value of a /proc/net/{snmp,netstat} counter in @ns."""
    out = run(["nstat", "-asz", counter], ns=ns).stdout
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] == counter:
            return int(fields[1])
    raise LookupError(f"nstat has no counter {counter}")


def nstat_all(ns):
    """Every /proc/net/{snmp,netstat} counter of @ns at one moment: {name: value}."""
    out = run(["nstat", "-asz"], ns=ns).stdout
    values = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1].isdigit():
            values[fields[0]] = int(fields[1])
    return values


def ss_listeners_by_cookie(ns, port):
    """{socket cookie: (Recv-Q, Send-Q)} of every TCP listener on @port in
    @ns (several with SO_REUSEPORT), per ss -e."""
    out = run(["ss", "-Hltne", f"sport = :{port}"], ns=ns).stdout
    listeners = {}
    for line in out.splitlines():
        cookie = re.search(r"\bsk:([0-9a-f]+)", line)
        if not cookie:
            raise LookupError(f"ss -e shows no socket cookie: {line}")
        fields = line.split()
        listeners[int(cookie.group(1), 16)] = (int(fields[1]), int(fields[2]))
    return listeners


def slab_usage(cache):
    """(active objects, total objects, object size) of a slab cache from
    /proc/slabinfo. Exact only for caches with SLUB debugging on (no
    per-CPU slabs hiding objects), as the Makefile boots HSP's."""
    with open("/proc/slabinfo") as f:
        for line in f:
            fields = line.split()
            if fields and fields[0] == cache:
                return int(fields[1]), int(fields[2]), int(fields[3])
    raise LookupError(f"/proc/slabinfo has no cache {cache}")


class SlabPeak(StoppableThread):
    """Samples a cache's active objects until stopped; .peak is the most
    seen. As a context manager it stops on the way out, whatever happened."""

    def __init__(self, cache, interval=0.02):
        super().__init__()
        self.cache, self.interval = cache, interval
        self.baseline, _, self.object_size = slab_usage(cache)
        self.peak = self.baseline
        self._failure = None

    def run(self):
        try:
            while not self._finished.wait(self.interval):
                self.peak = max(self.peak, slab_usage(self.cache)[0])
        except LookupError as e:
            self._failure = e   # the cache went away: stop() says so

    def stop(self):
        self._finished.set()
        self.join()
        if self._failure:
            raise self._failure
        self.peak = max(self.peak, slab_usage(self.cache)[0])
        return self.peak
