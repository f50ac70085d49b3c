# SPDX-License-Identifier: GPL-2.0
"""A cgroup v2 with one of tests/bpf/policy_deny.bpf.c's programs attached:
the host policy a protocol must obey as TCP does."""

import os
import secrets
import shutil
from contextlib import contextmanager

from . import REPO
from .cmd import run

CGROUP_ROOT = "/sys/fs/cgroup"
BPFFS = "/sys/fs/bpf"
POLICY_OBJECT = os.path.join(REPO, "build", "tests", "policy_deny.bpf.o")
# bpftool's attach type of each program of POLICY_OBJECT.
ATTACH_TYPES = {"deny_ingress": "ingress", "deny_egress": "egress",
                "deny_connect4": "connect4"}


def _own_cgroup():
    with open("/proc/self/cgroup") as f:
        [line] = [line for line in f if line.startswith("0::")]
    return os.path.join(CGROUP_ROOT, line.strip()[3:].lstrip("/"))


class DenyCgroup:
    """A new cgroup with @program attached; sockets created inside
    .sockets_created() belong to it (the kernel records the cgroup of the
    creating process in the socket), and children a listener of it accepts
    too. Detached and removed on exit."""

    def __init__(self, program):
        self.path = os.path.join(CGROUP_ROOT, f"qw-{secrets.token_hex(4)}")
        self.pins = os.path.join(BPFFS, os.path.basename(self.path))
        self.program = program
        os.mkdir(self.path)
        try:
            run(["bpftool", "prog", "loadall", POLICY_OBJECT, self.pins])
            run(["bpftool", "cgroup", "attach", self.path, ATTACH_TYPES[program],
                 "pinned", os.path.join(self.pins, program)])
        except Exception:
            self.delete()
            raise

    @contextmanager
    def sockets_created(self):
        home = _own_cgroup()
        with open(os.path.join(self.path, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))
        try:
            yield
        finally:
            with open(os.path.join(home, "cgroup.procs"), "w") as procs:
                procs.write(str(os.getpid()))

    def delete(self):
        if os.path.exists(os.path.join(self.pins, self.program)):
            run(["bpftool", "cgroup", "detach", self.path, ATTACH_TYPES[self.program],
                 "pinned", os.path.join(self.pins, self.program)], check=False)
        shutil.rmtree(self.pins, ignore_errors=True)
        # A socket of the cgroup still open keeps it alive, not its directory.
        os.rmdir(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.delete()
