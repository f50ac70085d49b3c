# SPDX-License-Identifier: GPL-2.0
"""HSP's socket API under seeded random calls from an unprivileged user
(tests/fuzz/hsp_socket_fuzz.py): no kernel splat, no leak, the module can
still be unloaded. make fuzz SECONDS=N runs it for longer; HSP_FUZZ_SEED=S
replays a seed."""

import json
import os
import random
import subprocess
import sys

from lib import REPO, hsp
from lib.cmd import scaled, wait_until

FUZZER = os.path.join(REPO, "tests", "fuzz", "hsp_socket_fuzz.py")
SECONDS = float(os.environ.get("HSP_FUZZ_SECONDS", "120"))
SEED = int(os.environ.get("HSP_FUZZ_SEED", "0")) or random.SystemRandom().randrange(1, 2**32)


def test_socket_api_fuzz__no_splat_no_leak(netns_pair, hsp_module):
    baseline = hsp.refcount()
    # A peer in another namespace, for connects that leave the namespace.
    listener, port = hsp.listen(netns_pair.server, netns_pair.server_addr, 4)
    calls_log = os.path.join(REPO, "build", "fuzz", f"calls-{SEED}.log")
    os.makedirs(os.path.dirname(calls_log), exist_ok=True)
    # Shown if the test fails; after a crash the log holds the last calls.
    print(f"hsp fuzz: seed {SEED}, {SECONDS} s, every call in {calls_log}")
    with open(calls_log, "w") as log:
        proc = subprocess.run(
            ["ip", "netns", "exec", netns_pair.client.name,
             "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             sys.executable, FUZZER, str(SEED), str(SECONDS), netns_pair.server_addr, str(port),
             str(log.fileno())],
            pass_fds=(log.fileno(),), capture_output=True, text=True,
            timeout=scaled(SECONDS + 120))
    assert proc.returncode == 0, f"seed {SEED}: the fuzzer failed:\n{proc.stderr}"
    totals = json.loads(proc.stdout)
    print(f"hsp fuzz: {totals}")
    assert totals["calls"] > 0 and totals["sequences"] > 0
    listener.close()
    wait_until(lambda: hsp.refcount() <= baseline, timeout=60,
               what=f"hsp's refcount back to {baseline} after seed {SEED}: sockets leaked")
