# SPDX-License-Identifier: GPL-2.0
"""qwatch refuses what it cannot do with one line and a non-zero exit."""

import pytest

from lib.cmd import run
from lib.qwatch import QWATCH


@pytest.mark.parametrize("args, complaint", [
    (["--port", "70000"], "--port"),
    (["--proto", "udp"], "--proto"),
    (["--netns", "no-such-namespace"], "--netns"),
    (["--interval", "0"], "interval"),
    (["--ring-buffer", "3"], "--ring-buffer"),
    (["--bogus"], "--bogus"),
    (["1", "2", "3"], "unexpected argument"),
])
def test_bad_arguments__one_line_and_status_2(args, complaint):
    proc = run([QWATCH, *args], check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and complaint in proc.stderr


def test_without_root__one_line_reason():
    proc = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                QWATCH, "--once"], check=False)
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "root" in proc.stderr


@pytest.mark.parametrize("mode", ["kprobe", "fentry", "auto"])
def test_attach_modes__named_in_the_footer(mode):
    out = run([QWATCH, "--once", "--attach", mode]).stdout
    # This kernel has BPF trampolines: auto takes fentry.
    expected = "kprobes" if mode == "kprobe" else "fentry"
    [footer] = [line for line in out.splitlines() if " lost events, watching " in line]
    assert footer.endswith(f"; probes: {expected}")


def test_bad_attach_mode__one_line_and_status_2():
    proc = run([QWATCH, "--attach", "uprobe"], check=False)
    assert proc.returncode == 2 and "--attach" in proc.stderr and proc.stdout == ""
