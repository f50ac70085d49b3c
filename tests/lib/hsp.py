# SPDX-License-Identifier: GPL-2.0
"""The HSP module: loading it and reading what it says about itself."""

import os
import socket

from . import REPO
from .cmd import run, scaled, wait_until
from .netns import socket_in

# make builds one module per kernel; make test-debug builds its own.
MODULE = os.environ.get("HSP_MODULE",
                        os.path.join(REPO, "build", os.uname().release, "kmod", "hsp.ko"))
PARAMS = "/sys/module/hsp/parameters"


def protocol():
    """The IP protocol number of the loaded module (its parameter proto=;
    the default is IPPROTO_HSP in kmod/include/uapi/linux/hsp.h, defined
    there alone). Read at each use: tests load the module with others."""
    try:
        with open(os.path.join(PARAMS, "proto")) as f:
            return int(f.read())
    except FileNotFoundError:
        raise RuntimeError("hsp's protocol number: the module is not loaded "
                           f"({PARAMS}/proto does not exist)") from None


def loaded():
    return os.path.exists("/sys/module/hsp/initstate")


def load(**params):
    if not loaded():
        run(["insmod", MODULE, *[f"{k}={v}" for k, v in params.items()]])


def unload():
    """rmmod, waiting out sockets that are still being freed (RCU, timers)."""
    if loaded():
        wait_until(lambda: refcount() == 0, timeout=60, what="hsp's refcount to drop to 0")
        run(["rmmod", "hsp"])


def refcount():
    with open("/sys/module/hsp/refcnt") as f:
        return int(f.read())


def get_param(name):
    with open(os.path.join(PARAMS, name)) as f:
        return int(f.read())


def set_param(name, value):
    with open(os.path.join(PARAMS, name), "w") as f:
        f.write(str(value))


def hsp_socket(ns):
    return socket_in(ns, socket.AF_INET, socket.SOCK_STREAM, protocol())


def proc_sockets(ns):
    """/proc/net/hsp of @ns as dicts (addresses decoded, numbers as ints)."""
    out = run(["cat", "/proc/net/hsp"], ns=ns).stdout.splitlines()[1:]
    rows = []
    for line in out:
        fields = line.split()
        local, remote = fields[1].split(":"), fields[2].split(":")
        rows.append({
            "laddr": socket.inet_ntoa(int(local[0], 16).to_bytes(4, "little")),
            "lport": int(local[1], 16),
            "raddr": socket.inet_ntoa(int(remote[0], 16).to_bytes(4, "little")),
            "rport": int(remote[1], 16),
            "state": int(fields[3], 16),
            "accept_queue": int(fields[4], 16),
            "accept_max": int(fields[5], 16),
            "syn_queue": int(fields[6], 16),
            "drops": int(fields[7], 16),
            "inode": int(fields[9]),
            # Requests: SYN-ACKs sent again (req->num_retrans); 0 otherwise.
            "retrans": int(fields[10]),
        })
    return rows


TCP_LISTEN = 0x0A
TCP_NEW_SYN_RECV = 0x0C


def proc_listener(ns, port):
    [row] = [r for r in proc_sockets(ns) if r["state"] == TCP_LISTEN and r["lport"] == port]
    return row


def proc_requests(ns, port):
    return len([r for r in proc_sockets(ns) if r["state"] == TCP_NEW_SYN_RECV
                and r["lport"] == port])


def stat(ns, counter):
    for line in run(["cat", "/proc/net/hsp_stat"], ns=ns).stdout.splitlines():
        name, value = line.split()
        if name == counter:
            return int(value)
    raise LookupError(f"/proc/net/hsp_stat has no {counter}")


def listen(ns, addr, backlog=8):
    """An HSP listener on an ephemeral port of @addr in @ns: (socket, port)."""
    listener = hsp_socket(ns)
    listener.bind((addr, 0))
    listener.listen(backlog)
    return listener, listener.getsockname()[1]


def connect(ns, addr, port, timeout=30):
    """An HSP socket in @ns connected (blocking) to @addr:@port."""
    client = hsp_socket(ns)
    client.settimeout(scaled(timeout))
    client.connect((addr, port))
    return client


def open_connection(pair, backlog=8):
    """A listener in pair.server and one accepted connection from pair.client.

    Returns (listener, client, child).
    """
    listener, port = listen(pair.server, pair.server_addr, backlog)
    client = connect(pair.client, pair.server_addr, port)
    child, _ = listener.accept()
    return listener, client, child
