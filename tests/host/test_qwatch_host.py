# SPDX-License-Identifier: GPL-2.0
"""qwatch on a kernel that cannot run it: one line saying why, status 1."""

import os
import subprocess

import pytest

from lib import REPO  # noqa: E402


@pytest.mark.skipif(os.path.exists("/sys/bus/event_source/devices/kprobe"),
                    reason="this host's kernel has kprobes")
def test_kernel_without_kprobes__one_line_reason():
    proc = subprocess.run([os.path.join(REPO, "build", "qwatch"), "--once"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "kprobes" in proc.stderr
