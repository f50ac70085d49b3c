#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""The `make demo` workload: slow servers and bursts of clients.

server:  a TCP listener (backlog 16) and an HSP listener (backlog 8) that
         accept one connection every 0.4 s and 0.6 s: the accept queues
         fill during a burst and drain between bursts.
clients: every 2 s a burst of TCP and HSP clients; a quarter of them bind
         to source ports whose final ACKs the demo's nft rule holds back,
         so their requests wait in the SYN queue until their SYN-ACKs run
         out of retries.
"""

import argparse
import itertools
import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from lib import hsp  # noqa: E402

SERVER, TCP_PORT, HSP_PORT = "10.99.0.1", 8080, 9090
HELD_PORTS = range(45000, 46000)  # final ACKs from these are dropped (tests/demo/run)



def serve(seconds):
    listeners = []
    for protocol, port, backlog, every in ((socket.IPPROTO_TCP, TCP_PORT, 16, 0.4),
                                           (hsp.protocol(), HSP_PORT, 8, 0.6)):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, protocol)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((SERVER, port))
        listener.listen(backlog)
        listeners.append([listener, every, time.monotonic()])
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        now = time.monotonic()
        due = [entry for entry in listeners if entry[2] <= now]
        for entry in due:
            ready, _, _ = select.select([entry[0]], [], [], 0)
            if ready:
                entry[0].accept()[0].close()
            entry[2] = now + entry[1]
        time.sleep(max(0.0, min(entry[2] for entry in listeners) - time.monotonic()))


def burst(protocol, port, count, held_ports):
    clients = []
    for i in range(count):
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM, protocol)
        if i % 4 == 0:
            client.bind(("0.0.0.0", next(held_ports)))
        client.setblocking(False)
        client.connect_ex((SERVER, port))
        clients.append(client)
    return clients


def clients(seconds):
    held_ports = itertools.cycle(HELD_PORTS)
    hsp_number = hsp.protocol()
    open_clients = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        open_clients.append((time.monotonic(), burst(socket.IPPROTO_TCP, TCP_PORT, 24, held_ports)
                             + burst(hsp_number, HSP_PORT, 12, held_ports)))
        while open_clients and open_clients[0][0] < time.monotonic() - 6:
            for client in open_clients.pop(0)[1]:
                client.close()
        time.sleep(2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=("server", "clients"))
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    (serve if args.role == "server" else clients)(args.seconds)


if __name__ == "__main__":
    main()
