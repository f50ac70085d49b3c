# SPDX-License-Identifier: GPL-2.0
"""A short smoke run of the benchmark's load generator (make bench runs it
for real): every handshake it counts is one the server's kernel counts."""

import json
import os

import pytest

from lib import hsp
from lib.cmd import run
from lib.kernel import nstat

LOADGEN = os.path.join(hsp.REPO, "build", "loadgen")


def passive_opens(proto, ns):
    if proto == "hsp":
        return hsp.stat(ns, "PassiveOpens")
    return nstat(ns, "TcpPassiveOpens")


@pytest.mark.parametrize("proto", ["tcp", "hsp"])
def test_loadgen__its_handshakes_are_the_servers_passive_opens(netns_pair, hsp_module, proto):
    before = passive_opens(proto, netns_pair.server)
    out = run([LOADGEN, "--proto", proto, "--server-netns", netns_pair.server.name,
               "--client-netns", netns_pair.client.name, "--clients", "2", "--seconds", "1"]).stdout
    result = json.loads(out)
    assert result["handshakes"] > 0 and result["errors"] == 0
    assert sum(result["buckets"]) == result["handshakes"]
    assert passive_opens(proto, netns_pair.server) - before == result["handshakes"]
