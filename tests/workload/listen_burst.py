#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A listener that never accepts and a burst of clients against it.

The sample workload for watching qwatch: the accept queue fills to
backlog + 1, the remaining clients' SYNs overflow and are retried.
Runs until killed or until --seconds pass.
"""

import argparse
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from lib import hsp  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--backlog", type=int, default=4)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--proto", choices=("tcp", "hsp"), default="tcp",
                        help="hsp needs hsp.ko loaded (build/KVER/kmod/hsp.ko)")
    args = parser.parse_args()
    protocol = hsp.protocol() if args.proto == "hsp" else socket.IPPROTO_TCP

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, protocol)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.addr, args.port))
    listener.listen(args.backlog)
    clients = []
    for _ in range(args.clients):
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM, protocol)
        client.setblocking(False)
        client.connect_ex((args.addr, args.port))
        clients.append(client)
    print(f"listen_burst: {args.clients} {args.proto} clients against {args.addr}:{args.port} "
          f"(backlog {args.backlog}), nobody accepts", file=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    time.sleep(args.seconds)


if __name__ == "__main__":
    main()
