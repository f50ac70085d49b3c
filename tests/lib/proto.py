# SPDX-License-Identifier: GPL-2.0
"""TCP and HSP side by side: one object per protocol with what a
differential test asks of it, each answered by the kernel's own account
(ss and nstat for TCP, /proc/net/hsp and /proc/net/hsp_stat for HSP)."""

import socket

from . import hsp
from .kernel import nstat, ss_listener, ss_syn_recv
from .netns import socket_in


class Protocol:
    def listen(self, ns, addr, backlog):
        """A listener on an ephemeral port of @addr in @ns: (socket, port)."""
        listener = self.socket(ns)
        listener.bind((addr, 0))
        listener.listen(backlog)
        return listener, listener.getsockname()[1]


class Tcp(Protocol):
    name = "tcp"

    def socket(self, ns):
        return socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)

    def to_port_match(self, port):
        return f"tcp dport {port}"

    def from_port_match(self, port):
        return f"tcp sport {port}"

    def final_ack_match(self, port):
        return f"tcp dport {port} tcp flags & (syn | ack) == ack"

    def reset_match(self, port):
        return f"tcp dport {port} tcp flags & rst == rst"

    def requests(self, ns, port):
        return ss_syn_recv(ns, port)

    def syn_retransmits(self, ns):
        """SYNs connect() sent again in @ns (a client sends no other)."""
        return nstat(ns, "TcpRetransSegs")

    def queues(self, ns, port):
        accept_queue, accept_max, drops = ss_listener(ns, port)
        return {"syn_queue": ss_syn_recv(ns, port), "accept_queue": accept_queue,
                "accept_max": accept_max, "drops": drops}

    def synack_retransmits(self, ns):
        return nstat(ns, "TcpExtTCPSynRetrans")

    def segments_in(self, ns):
        """Segments the protocol received in @ns (HSP counts them before its
        header checks, TCP after: the same for well-formed segments)."""
        return nstat(ns, "TcpInSegs")


class Hsp(Protocol):
    name = "hsp"

    def socket(self, ns):
        return hsp.hsp_socket(ns)

    # HSP header: source port at bytes 0-1, destination port at bytes 2-3,
    # flags at byte 13.
    def to_port_match(self, port):
        return f"ip protocol {hsp.IPPROTO_HSP} @th,16,16 {port}"

    def from_port_match(self, port):
        return f"ip protocol {hsp.IPPROTO_HSP} @th,0,16 {port}"

    def final_ack_match(self, port):
        return f"ip protocol {hsp.IPPROTO_HSP} @th,16,16 {port} @th,104,8 0x02"

    def reset_match(self, port):
        return f"ip protocol {hsp.IPPROTO_HSP} @th,16,16 {port} @th,104,8 & 0x04 == 0x04"

    def requests(self, ns, port):
        return hsp.proc_requests(ns, port)

    def syn_retransmits(self, ns):
        return hsp.stat(ns, "SynRetransmits")

    def queues(self, ns, port):
        row = hsp.proc_listener(ns, port)
        return {key: row[key] for key in ("syn_queue", "accept_queue", "accept_max", "drops")}

    def synack_retransmits(self, ns):
        return hsp.stat(ns, "SynAckRetransmits")

    def segments_in(self, ns):
        return hsp.stat(ns, "InSegs")


PROTOCOLS = [Tcp(), Hsp()]
