#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Bare TCP or HSP SYNs from one CPU: one sender of a flood several CPUs send.

veth and loopback hand a packet to the sending CPU's backlog, so senders
pinned to different CPUs make those CPUs process the listener at once.
Run it in the sending namespace; the segments carry --mark (for the
receiver's tests to tell the flood's resets from the kernel's).
"""

import argparse
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from lib import hsp  # noqa: E402
from lib.hsp_wire import raw_sender, segment, tcp_syn  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", required=True)
    parser.add_argument("--dst", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--first-sport", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--cpu", type=int, required=True)
    parser.add_argument("--mark", type=int, default=0)
    parser.add_argument("--proto", choices=("tcp", "hsp"), default="tcp")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    if args.proto == "hsp":
        sender = raw_sender(None, hsp.protocol(), args.mark)
        build = lambda sport: segment(args.src, args.dst, sport, args.port, seq=sport)
    else:
        sender = raw_sender(None, socket.IPPROTO_TCP, args.mark)
        build = lambda sport: tcp_syn(args.src, args.dst, sport, args.port, sport)
    for sport in range(args.first_sport, args.first_sport + args.count):
        sender.sendto(build(sport), (args.dst, 0))


if __name__ == "__main__":
    main()
