# SPDX-License-Identifier: GPL-2.0
"""HSP's module life: what pins it, clean unloads, namespaces going away."""

import pytest

from lib import defer, hsp, nft
from lib.cmd import run, scaled, wait_until
from lib.kernel import ss_listener
from lib.netns import NetNSPair, connected
from lib.proto import HSP, TCP
from lib.qwatch import QWATCH, QwatchStream, once


@pytest.fixture
def reloadable(hsp_module):
    """The module loaded before and after the test, whatever the test did."""
    yield
    hsp.load()


def test_rmmod__busy_while_a_listener_and_its_connections_exist(reloadable):
    with NetNSPair() as pair:
        listener, client, child = hsp.open_connection(pair)
        for sock in (client, child, listener):
            proc = run(["rmmod", "hsp"], check=False)
            assert proc.returncode != 0 and "in use" in proc.stderr
            sock.close()
    hsp.unload()
    assert not hsp.loaded()


def test_insmod_rmmod__repeatable_and_leaves_no_objects(reloadable):
    hsp.unload()
    for _ in range(3):
        hsp.load()
        with NetNSPair() as pair:
            for sock in hsp.open_connection(pair):
                sock.close()
        # A leak would make proto_unregister() warn "Slab cache still has
        # objects", which the kernel-log check turns into a failure.
        hsp.unload()


def test_netns_delete__frees_listeners_requests_and_connections(hsp_module):
    baseline = hsp.refcount()
    pair = NetNSPair()
    listener, port = hsp.listen(pair.server, pair.server_addr)
    nft.output_rule(pair.client, f"{HSP.final_ack_match(port)} drop")
    clients = []
    for _ in range(3):
        client = hsp.hsp_socket(pair.client)
        client.setblocking(False)
        client.connect_ex((pair.server_addr, port))
        clients.append(client)
    wait_until(lambda: hsp.proc_requests(pair.server, port) == 3, what="3 pending requests")
    for sock in clients + [listener]:
        sock.close()
    pair.delete()
    # Every socket and request sock pins the module: back to the baseline
    # means all of them are gone.
    wait_until(lambda: hsp.refcount() == baseline, timeout=60,
               what="everything of the deleted namespaces to be freed")


def test_qwatch_without_the_module__watches_tcp_and_says_hsp_is_not(reloadable):
    hsp.unload()
    proc = run([QWATCH, "--once"])
    assert "watching tcp, hsp (module not loaded: listeners only)" in proc.stdout


def test_qwatch_follows_rmmod_and_insmod__tcp_throughout_hsp_again(reloadable):
    with NetNSPair() as pair, QwatchStream("--netns", str(pair.server.inode)) as qwatch:
        def listen_event_for(proto):
            listener, port = proto.listen(pair.server, pair.server_addr, 4)
            qwatch.wait_for(lambda q: q.latest(event="listen", lport=port, proto=proto.name),
                            what=f"a {proto.name} listen event")
            listener.close()

        listen_event_for(HSP)
        hsp.unload()
        gone = qwatch.wait_for(lambda q: q.latest(event="hsp_module"), what="hsp_module event")
        assert (gone["loaded"], gone["watched"]) == (False, False)
        listen_event_for(TCP)

        hsp.load()
        back = qwatch.wait_for(lambda q: q.latest(event="hsp_module", loaded=True),
                               what="hsp_module loaded again")
        assert back["watched"] is True
        listen_event_for(HSP)


@pytest.mark.parametrize("proto", [6, 17, 0, 255, 256, 262, -1])
def test_insmod_with_an_unusable_protocol_number__refused_and_nothing_changed(reloadable, proto):
    """TCP's and UDP's numbers are taken, 255 is raw IP and numbers past 255
    do not fit the IP header: each is refused with an error, and the
    protocol that owns the number still works."""
    hsp.unload()
    proc = run(["insmod", hsp.MODULE, f"proto={proto}"], check=False)
    assert proc.returncode != 0 and not hsp.loaded(), proc.stderr
    with NetNSPair() as pair:
        listener, _ = TCP.listen(pair.server, pair.server_addr, 1)
        client = TCP.socket(pair.client)
        client.settimeout(30)
        client.connect(listener.getsockname())
        child, _ = listener.accept()
        for sock in (child, client, listener):
            sock.close()


@pytest.fixture
def hsp_unloaded(hsp_module):
    """The module unloaded for the test, which loads it as it needs;
    afterwards, whatever the test did, the module of the session again
    (default parameters), once the test's sockets and processes are gone
    (lib.defer runs here first: they would keep the module in use)."""
    hsp.unload()
    yield
    try:
        defer.run_all()
    finally:
        hsp.unload()
        hsp.load()


def test_module_on_another_protocol_number__qwatch_lists_hsp_and_tcp_as_the_kernel(hsp_unloaded):
    """hsp.ko loaded with proto=254: qwatch --once lists an HSP listener as
    hsp with the queues /proc/net/hsp shows, and a TCP listener still as
    tcp with the queues ss shows."""
    hsp.load(proto=254)
    assert hsp.protocol() == 254
    with NetNSPair() as pair:
        server, client, addr = pair.server, pair.client, pair.server_addr
        hsp_listener, hsp_port = HSP.listen(server, addr, 4)
        tcp_listener, tcp_port = TCP.listen(server, addr, 4)
        # Two HSP children in the accept queue, one request in the SYN queue
        # (its final ACK dropped), one TCP child.
        hsp_clients = [hsp.connect(client, addr, hsp_port) for _ in range(2)]
        nft.output_rule(client, f"{HSP.final_ack_match(hsp_port)} drop")
        pending = HSP.socket(client)
        pending.setblocking(False)
        pending.connect_ex((addr, hsp_port))
        tcp_client = TCP.socket(client)
        tcp_client.settimeout(scaled(30))
        tcp_client.connect((addr, tcp_port))
        # Settled: the held client has sent its final ACK (its request
        # exists), and the server completed the three other handshakes.
        wait_until(lambda: connected(pending) and HSP.passive_opens(server) == 2
                   and TCP.passive_opens(server) == 1, what="the handshakes done",
                   state=lambda: (connected(pending), HSP.passive_opens(server),
                                  TCP.passive_opens(server)))

        rows = {}
        for row in once("--netns", str(server.inode)):
            rows.setdefault((row["proto"], row["lport"]), []).append(row)
        keys = ("syn_queue", "accept_queue", "accept_max", "drops")
        [hsp_row] = rows.get(("hsp", hsp_port), [])
        kernel = hsp.proc_listener(server, hsp_port)
        assert {k: hsp_row[k] for k in keys} == {k: kernel[k] for k in keys}
        assert (kernel["syn_queue"], kernel["accept_queue"]) == (1, 2)
        [tcp_row] = rows.get(("tcp", tcp_port), [])
        recv_q, send_q, drops = ss_listener(server, tcp_port)
        assert (tcp_row["accept_queue"], tcp_row["accept_max"], tcp_row["drops"]) == \
            (recv_q, send_q, drops)
        assert recv_q == 1
        assert set(rows) == {("hsp", hsp_port), ("tcp", tcp_port)}
        for sock in hsp_clients + [pending, tcp_client, hsp_listener, tcp_listener]:
            sock.close()


def test_qwatch_started_before_insmod__watches_hsp_once_it_loads(hsp_unloaded):
    """qwatch running while hsp.ko is absent follows its insmod: an HSP
    listener made afterwards and one handshake through it are listen,
    ack_complete and accept events, as many as /proc/net/hsp_stat counts,
    for the peer the test connected."""
    with NetNSPair() as pair, QwatchStream("--netns", str(pair.server.inode)) as qwatch:
        hsp.load()
        # Watched: its probes are attached, before anything of HSP happens.
        qwatch.wait_for(lambda q: q.latest(event="hsp_module", loaded=True, watched=True),
                        what="an hsp_module event: loaded and watched",
                        state=lambda q: q.select(event="hsp_module"))
        server, addr = pair.server, pair.server_addr
        opens = HSP.passive_opens(server)
        listener, port = HSP.listen(server, addr, 4)
        client = hsp.connect(pair.client, addr, port)
        child, peer = listener.accept()
        assert peer == client.getsockname()
        shown = ("listen", "ack_complete", "accept")
        qwatch.wait_for(lambda q: q.latest(event="accept", lport=port),
                        what="the HSP accept event",
                        state=lambda q: [e["event"] for e in q.select(lport=port)])
        events = [e for e in qwatch.select(netns=server.inode, lport=port)
                  if e["event"] in shown]
        assert [e["event"] for e in events] == list(shown)
        assert {e["proto"] for e in events} == {"hsp"}
        listen, completed, accepted = events
        assert listen["accept_max"] == hsp.proc_listener(server, port)["accept_max"]
        assert len(qwatch.select(event="ack_complete", lport=port)) == \
            HSP.passive_opens(server) - opens
        assert (completed["raddr"], completed["rport"]) == peer
        assert (accepted["raddr"], accepted["rport"]) == peer
        assert accepted["accept_queue"] == hsp.proc_listener(server, port)["accept_queue"] == 0
        for sock in (child, client, listener):
            sock.close()
