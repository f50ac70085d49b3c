# SPDX-License-Identifier: GPL-2.0
"""HSP's module life: what pins it, clean unloads, namespaces going away."""

import pytest

from lib import hsp
from lib.cmd import run, wait_until
from lib.netns import NetNSPair


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
