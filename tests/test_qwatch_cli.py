# SPDX-License-Identifier: GPL-2.0
"""qwatch's command line: what it refuses (one line, a non-zero exit),
attach modes, and what a terminal gets."""

import os
import pty

import pytest

from lib.cmd import run
from lib.qwatch import QWATCH
from lib.tcp import tcp_listener


@pytest.mark.parametrize("args, complaint", [
    (["--port", "70000"], "--port"),
    (["--proto", "udp"], "--proto"),
    (["--netns", "no-such-namespace"], "--netns"),
    (["--interval", "0"], "interval"),
    (["--interval", "1e-10"], "interval"),
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


def table_through_a_terminal(*args):
    """qwatch's first screen as a terminal receives it (through a pty)."""
    pid, fd = pty.fork()
    if pid == 0:
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        os.execve(QWATCH, [QWATCH, *args, "0.2", "1"], dict(env, TERM="xterm"))
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child is gone
            break
        if not chunk:
            break
        out += chunk
    os.close(fd)
    os.waitpid(pid, 0)
    return out.decode(errors="replace")


def test_terminal__full_screen_with_coloured_bars_unless_told_not_to(netns_pair):
    listener, _ = tcp_listener(netns_pair.server, netns_pair.server_addr, 4)
    coloured = table_through_a_terminal("--netns", netns_pair.server.name)
    plain = table_through_a_terminal("--netns", netns_pair.server.name, "--no-color")
    listener.close()
    assert "\033[H\033[2J" in coloured and "\033[32m[" in coloured
    assert "\033[H\033[2J" in plain and "\033[3" not in plain and "[........]" in plain
