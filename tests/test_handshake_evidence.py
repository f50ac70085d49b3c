# SPDX-License-Identifier: GPL-2.0
"""The evidence in Documentation/handshake.rst, captured from a real run.

Each test drives TCP between the namespaces, checks the behaviour the page
describes against ss and qwatch, and writes what it saw, without times and
other run-specific values, to Documentation/evidence/: a changed file in
`git status` after `make test` means the kernel's behaviour changed.
"""

import os
import socket

import pytest

from lib import hsp
from lib.cmd import run, wait_until
from lib.kernel import ss_listener
from lib.netns import AcceptThread, socket_in
from lib.qwatch import QwatchStream

EVIDENCE = os.path.join(hsp.REPO, "Documentation", "evidence")
SHOWN = ("syn_recv", "ack_complete", "accept")


@pytest.fixture
def one_cpu():
    """SYNs sent from one CPU are taken in order: the evidence is stable."""
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})
    yield
    os.sched_setaffinity(0, affinity)


def syn_recv_ports(ns, port):
    """Peer ports of the request socks ss lists for @port."""
    out = run(["ss", "-Htn", "state", "syn-recv", f"sport = :{port}"], ns=ns).stdout
    return sorted(int(line.split()[-1].rsplit(":", 1)[1]) for line in out.splitlines())


class HeldClients:
    """TCP clients from fixed source ports whose final ACKs the client's
    namespace drops until let through one by one."""

    def __init__(self, pair, port, sports):
        self.pair = pair
        run(["nft", "-f", "-"], ns=pair.client, input=f"""table inet qwevidence {{
            chain output {{ type filter hook output priority 0;
                tcp sport {sports[0]}-{sports[-1]} tcp flags & (syn | ack) == ack drop; }}; }}""")
        self.sockets = []
        for sport in sports:
            client = socket_in(pair.client, socket.AF_INET, socket.SOCK_STREAM)
            client.bind((pair.client_addr, sport))
            client.setblocking(False)
            client.connect_ex((pair.server_addr, port))
            self.sockets.append(client)

    def let_through(self, sport):
        # The client sends its ACK again when the server's SYN-ACK
        # retransmission arrives; from now on that one passes.
        run(["nft", "insert", "rule", "inet", "qwevidence", "output", "tcp", "sport",
             str(sport), "accept"], ns=self.pair.client)

    def close(self):
        for sock in self.sockets:
            sock.close()


def line(event):
    return (f"{event['event']:<13} peer {event['raddr']}:{event['rport']}  "
            f"syn_queue {event['syn_queue']}  accept_queue {event['accept_queue']}")


def write_evidence(name, lines):
    with open(os.path.join(EVIDENCE, name), "w") as f:
        f.write("\n".join(lines) + "\n")


def test_an_ack_completes_exactly_its_own_request(netns_pair, one_cpu):
    server, port, sports = netns_pair.server, 8080, list(range(40001, 40006))
    listener = socket_in(server, socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((netns_pair.server_addr, port))
    listener.listen(8)
    with QwatchStream("--netns", server.name, "--port", str(port)) as qwatch:
        shown = lambda: [e for e in qwatch.select(lport=port) if e["event"] in SHOWN]
        clients = HeldClients(netns_pair, port, sports)
        qwatch.wait_for(lambda q: len(shown()) == len(sports), what="five syn_recv events")
        assert syn_recv_ports(server, port) == sports
        lines = [f"# {len(sports)} clients from ports {sports[0]}-{sports[-1]}, final ACKs held"]
        lines += [line(e) for e in shown()]
        lines.append(f"# ss -tn state syn-recv: peers {' '.join(map(str, sports))}")

        clients.let_through(40003)
        lines.append("# only the final ACK from port 40003 is let through")
        qwatch.wait_for(lambda q: len(shown()) == len(sports) + 1, timeout=60,
                        what="the one ack_complete")
        wait_until(lambda: ss_listener(server, port)[0] == 1, what="one child per ss")
        [completed] = shown()[len(sports):]
        assert (completed["event"], completed["rport"]) == ("ack_complete", 40003)
        assert (completed["syn_queue"], completed["accept_queue"]) == (len(sports) - 1, 1)
        left = [p for p in sports if p != 40003]
        assert syn_recv_ports(server, port) == left
        lines.append(line(completed))
        lines.append(f"# ss -tn state syn-recv: peers {' '.join(map(str, left))}")
    write_evidence("ack-finds-its-request.txt", lines)
    clients.close()
    listener.close()


def test_accept_sleeps_until_one_handshake_completes(netns_pair, one_cpu):
    server, port, sports = netns_pair.server, 8081, [40011, 40012, 40013]
    listener = socket_in(server, socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((netns_pair.server_addr, port))
    listener.listen(8)
    with QwatchStream("--netns", server.name, "--port", str(port)) as qwatch:
        shown = lambda: [e for e in qwatch.select(lport=port) if e["event"] in SHOWN]
        clients = HeldClients(netns_pair, port, sports)
        qwatch.wait_for(lambda q: len(shown()) == len(sports), what="three syn_recv events")
        lines = [f"# {len(sports)} clients from ports {sports[0]}-{sports[-1]}, final ACKs held"]
        lines += [line(e) for e in shown()]

        accepter = AcceptThread(listener)
        wait_until(accepter.blocked, what="accept() to block")
        assert syn_recv_ports(server, port) == sports and ss_listener(server, port)[0] == 0
        lines.append(f"# accept() called: it sleeps in the kernel "
                     f"(wchan {open(f'/proc/{accepter.native_id}/wchan').read()}) with "
                     f"{len(sports)} requests in the SYN queue and none in the accept queue")

        clients.let_through(40012)
        lines.append("# only the final ACK from port 40012 is let through")
        accepter.join(60)
        assert not accepter.is_alive() and accepter.peer == (netns_pair.client_addr, 40012)
        qwatch.wait_for(lambda q: len(shown()) == len(sports) + 2, what="ack_complete, accept")
        completed, accepted = shown()[len(sports):]
        assert (completed["event"], completed["rport"]) == ("ack_complete", 40012)
        assert (accepted["event"], accepted["rport"]) == ("accept", 40012)
        left = [p for p in sports if p != 40012]
        assert syn_recv_ports(server, port) == left
        lines += [line(completed), line(accepted)]
        lines.append(f"# accept() returned {accepter.peer[0]}:{accepter.peer[1]}; "
                     f"ss -tn state syn-recv: peers {' '.join(map(str, left))}")
    write_evidence("accept-sleeps-on-the-accept-queue.txt", lines)
    clients.close()
    listener.close()
