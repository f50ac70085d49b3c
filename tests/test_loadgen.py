# SPDX-License-Identifier: GPL-2.0
"""A short smoke run of the benchmark's load generator (make bench runs it
for real): every handshake it counts is one the server's kernel counts."""

import json
import os

import pytest

from lib import REPO
from lib.cmd import one_cpu, run, wait_until
from lib.proto import PROTOCOLS

LOADGEN = os.path.join(REPO, "build", "loadgen")


@pytest.mark.parametrize("proto", PROTOCOLS, ids=lambda p: p.name)
def test_loadgen__its_handshakes_are_the_servers_passive_opens(netns_pair, hsp_module, proto):
    before = proto.passive_opens(netns_pair.server)
    # One CPU: a client's final ACK and its close's RST then cannot swap
    # places in the veth queues, which would turn a handshake the client
    # counted into a request the server dropped.
    with one_cpu():
        out = run([LOADGEN, "--proto", proto.name,
                   "--server-netns", netns_pair.server.name,
                   "--client-netns", netns_pair.client.name,
                   "--clients", "2", "--seconds", "1"]).stdout
    result = json.loads(out)
    assert result["handshakes"] > 0 and result["errors"] == 0
    assert sum(result["buckets"]) == result["handshakes"]
    # The last final ACKs may still be on their way when loadgen exits.
    wait_until(lambda: proto.passive_opens(netns_pair.server) - before == result["handshakes"],
               what=f"{result['handshakes']} passive opens")
