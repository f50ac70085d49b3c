# SPDX-License-Identifier: GPL-2.0
"""TCP and HSP side by side: one object per protocol with what a
differential test asks of it, each answered by the kernel's own account
(ss and nstat for TCP, /proc/net/hsp and /proc/net/hsp_stat for HSP).
Tests ask these objects instead of switching on a protocol's name."""

import socket

from . import hsp
from .hsp_wire import segment, tcp_syn
from .kernel import (nstat, ss_established_recv_q, ss_listener, ss_syn_recv,
                     ss_syn_recv_requests)
from .netns import socket_in


class Protocol:
    def listen(self, ns, addr, backlog, port=0):
        """A listener on @port (0: an ephemeral one) of @addr in @ns: (socket, port)."""
        listener = self.socket(ns)
        listener.bind((addr, port))
        listener.listen(backlog)
        return listener, listener.getsockname()[1]

    def start_connect(self, ns, addr, port, source=None):
        """A non-blocking client of @port (from @source if given), its SYN sent."""
        client = self.socket(ns)
        if source:
            client.bind((source, 0))
        client.setblocking(False)
        client.connect_ex((addr, port))
        return client

    def connect_all(self, ns, addr, port, count, source=None):
        """@count non-blocking connects at once (from @source if given): [client]."""
        return [self.start_connect(ns, addr, port, source) for _ in range(count)]

    def raw_socket(self, ns):
        """A raw socket of this protocol in @ns (it sends segments built by
        syn(), and receives a copy of every segment of the protocol)."""
        return socket_in(ns, socket.AF_INET, socket.SOCK_RAW, self.number())

    def accept_max(self, ns, port):
        return self.queues(ns, port)["accept_max"]

    def __repr__(self):
        return self.name


class Tcp(Protocol):
    name = "tcp"

    def number(self):
        return socket.IPPROTO_TCP

    def socket(self, ns, syn_retries=None):
        """A socket in @ns; @syn_retries: SYN retransmissions connect() makes."""
        sock = socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)
        if syn_retries is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, syn_retries)
        return sock

    def syn(self, src, dst, sport, dport, seq):
        """A bare SYN, for a raw socket."""
        return tcp_syn(src, dst, sport, dport, seq)

    def synack_acking_match(self, port, ack_seq):
        """nft: SYN-ACKs from @port acknowledging @ack_seq."""
        return f"tcp sport {port} tcp flags & (syn | ack) == syn | ack tcp ackseq {ack_seq}"

    def synack_match(self):
        """nft: every SYN-ACK."""
        return "tcp flags & (syn | ack) == syn | ack"

    def passive_opens(self, ns):
        """Handshakes completed by listeners in @ns."""
        return nstat(ns, "TcpPassiveOpens")

    def request_timer_runs(self, ns):
        """Runs of request timers in @ns: one per SYN-ACK retry or expiry
        (tcp_syn_ack_timeout(); in a namespace holding only listeners)."""
        return nstat(ns, "TcpExtTCPTimeouts")

    def syn_accounting(self, ns):
        """The counters a SYN flood moves in @ns, by name (for messages)."""
        return {name: nstat(ns, name) for name in ("TcpInSegs", "TcpExtListenDrops",
                                                   "TcpExtListenOverflows")}

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

    # A child has a receive queue: data sent before accept() waits in it.
    receives_data = True

    def request_peers(self, ns, port):
        """{(raddr, rport): SYN-ACKs sent again} of the request socks for
        local port @port in @ns (ss -o's timer retransmits, num_retrans)."""
        return {peer: r["retrans"] for peer, r in ss_syn_recv_requests(ns, port).items()}

    def request_timers(self, ns, port):
        """{(raddr, rport): (ms to the request's timer, precision in ms)}, per ss -o."""
        return {peer: (r["timer_ms"], r["timer_precision_ms"])
                for peer, r in ss_syn_recv_requests(ns, port).items()}

    def unread_bytes(self, ns, port):
        """{(raddr, rport): bytes in the receive queue} of the children of
        the listener on @port in @ns (ss Recv-Q)."""
        return ss_established_recv_q(ns, port)


class Hsp(Protocol):
    name = "hsp"

    def number(self):
        """The loaded module's protocol number (lib.hsp.protocol())."""
        return hsp.protocol()

    def socket(self, ns, syn_retries=None):
        """A socket in @ns; @syn_retries: SYN retransmissions connect()
        makes (HSP's syn_retries parameter, read when the socket is made)."""
        if syn_retries is None:
            return hsp.hsp_socket(ns)
        default = hsp.get_param("syn_retries")
        hsp.set_param("syn_retries", syn_retries)
        try:
            return hsp.hsp_socket(ns)
        finally:
            hsp.set_param("syn_retries", default)

    def syn(self, src, dst, sport, dport, seq):
        return segment(src, dst, sport, dport, seq=seq)

    # HSP header: source port at bytes 0-1, destination port at bytes 2-3,
    # sequence number at 4-7, acknowledgement number at 8-11, flags at 13.
    def to_port_match(self, port):
        return f"ip protocol {self.number()} @th,16,16 {port}"

    def from_port_match(self, port):
        return f"ip protocol {self.number()} @th,0,16 {port}"

    def final_ack_match(self, port):
        return f"ip protocol {self.number()} @th,16,16 {port} @th,104,8 0x02"

    def reset_match(self, port):
        return f"ip protocol {self.number()} @th,16,16 {port} @th,104,8 & 0x04 == 0x04"

    def synack_acking_match(self, port, ack_seq):
        return f"ip protocol {self.number()} @th,0,16 {port} @th,104,8 0x03 @th,64,32 {ack_seq}"

    def synack_match(self):
        return f"ip protocol {self.number()} @th,104,8 0x03"

    def passive_opens(self, ns):
        return hsp.stat(ns, "PassiveOpens")

    def request_timer_runs(self, ns):
        return hsp.stat(ns, "RequestTimeouts")

    def syn_accounting(self, ns):
        return {name: hsp.stat(ns, name) for name in ("SynsReceived", "SynQueueDrops",
                                                      "ListenOverflows")}

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

    # HSP carries no data: a child has no receive queue.
    receives_data = False

    def request_peers(self, ns, port):
        """{(raddr, rport): SYN-ACKs sent again} of the request socks for
        local port @port in @ns (/proc/net/hsp's retrans, num_retrans)."""
        return {(r["raddr"], r["rport"]): r["retrans"] for r in hsp.proc_sockets(ns)
                if r["state"] == hsp.TCP_NEW_SYN_RECV and r["lport"] == port}

    def request_timers(self, ns, port):
        """None: /proc/net/hsp does not show a request's timer."""
        return None

    def unread_bytes(self, ns, port):
        """None: HSP children have no receive queue."""
        return None


TCP, HSP = Tcp(), Hsp()
PROTOCOLS = [TCP, HSP]
