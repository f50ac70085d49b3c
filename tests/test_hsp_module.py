# SPDX-License-Identifier: GPL-2.0
"""HSP's module life: what pins it, clean unloads, namespaces going away."""

import socket

import pytest

from lib import hsp
from lib.cmd import run, wait_until
from lib.netns import NetNSPair, socket_in
from lib.qwatch import QwatchStream


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
    run(["nft", "-f", "-"], ns=pair.client, input=f"""table inet qwhold {{
        chain output {{ type filter hook output priority 0;
            ip protocol {hsp.IPPROTO_HSP} @th,16,16 {port} @th,104,8 0x02 drop; }}; }}""")
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
    proc = run(["build/qwatch", "--once"])
    assert "watching tcp, hsp (module not loaded: listeners only)" in proc.stdout


def test_qwatch_follows_rmmod_and_insmod__tcp_throughout_hsp_again(reloadable):
    with NetNSPair() as pair, QwatchStream("--netns", str(pair.server.inode)) as qwatch:
        def listen_event_for(proto):
            if proto == "hsp":
                listener, port = hsp.listen(pair.server, pair.server_addr)
            else:
                listener = socket_in(pair.server, socket.AF_INET, socket.SOCK_STREAM)
                listener.bind((pair.server_addr, 0))
                listener.listen(4)
                port = listener.getsockname()[1]
            qwatch.wait_for(lambda q: q.latest(event="listen", lport=port, proto=proto),
                            what=f"a {proto} listen event")
            listener.close()

        listen_event_for("hsp")
        hsp.unload()
        gone = qwatch.wait_for(lambda q: q.latest(event="hsp_module"), what="hsp_module event")
        assert (gone["loaded"], gone["watched"]) == (False, False)
        listen_event_for("tcp")

        hsp.load()
        back = qwatch.wait_for(lambda q: q.latest(event="hsp_module", loaded=True),
                               what="hsp_module loaded again")
        assert back["watched"] is True
        listen_event_for("hsp")


@pytest.mark.parametrize("proto", [6, 17, 0, 255, 256, 262, -1])
def test_insmod_with_an_unusable_protocol_number__refused_and_nothing_changed(reloadable, proto):
    """TCP's and UDP's numbers are taken, 255 is raw IP and numbers past 255
    do not fit the IP header: each is refused with an error, and the
    protocol that owns the number still works."""
    hsp.unload()
    proc = run(["insmod", hsp.MODULE, f"proto={proto}"], check=False)
    assert proc.returncode != 0 and not hsp.loaded(), proc.stderr
    with NetNSPair() as pair:
        listener = socket_in(pair.server, socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((pair.server_addr, 0))
        listener.listen(1)
        client = socket_in(pair.client, socket.AF_INET, socket.SOCK_STREAM)
        client.settimeout(30)
        client.connect(listener.getsockname())
        child, _ = listener.accept()
        for sock in (child, client, listener):
            sock.close()
