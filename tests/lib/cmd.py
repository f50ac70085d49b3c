# SPDX-License-Identifier: GPL-2.0
"""Running commands: in a network namespace, in the background, with deadlines."""

import os
import select
import shlex
import subprocess
import threading
import time
from contextlib import contextmanager

from .defer import defer


# make test-debug runs the suites on a debug kernel (KASAN, lockdep) that is
# tens of times slower under emulation: every deadline here is stretched by
# QW_TIMEOUT_SCALE and loops shortened by QW_ITERATION_SCALE.
TIMEOUT_SCALE = float(os.environ.get("QW_TIMEOUT_SCALE", "1"))
ITERATION_SCALE = float(os.environ.get("QW_ITERATION_SCALE", "1"))


def scaled(seconds):
    """A deadline of @seconds on the stock kernel, for the kernel under test."""
    return seconds * TIMEOUT_SCALE


def iterations(count):
    """A loop count of @count on the stock kernel, for the kernel under test."""
    return max(1, round(count * ITERATION_SCALE))


@contextmanager
def one_cpu():
    """The calling thread (and what it starts meanwhile) on one CPU: veth and
    loopback hand a packet to the sending CPU's backlog, so what it sends is
    processed in order."""
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, affinity)


class CmdExitFailure(Exception):
    """A command exited non-zero; the message carries its whole output."""

    def __init__(self, cmd, proc):
        self.cmd = cmd
        self.proc = proc
        super().__init__(
            f"command failed with status {proc.returncode}: {cmd}\n"
            f"--- stdout ---\n{proc.stdout}--- stderr ---\n{proc.stderr}"
        )


def _argv(cmd, ns):
    argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    if ns is not None:
        argv = ["ip", "netns", "exec", str(ns)] + argv
    return argv


def run(cmd, ns=None, check=True, timeout=60, input=None):
    """Runs @cmd (a string or an argv list), in netns @ns if given.

    Returns the CompletedProcess; raises CmdExitFailure on a non-zero exit
    unless @check is false.
    """
    proc = subprocess.run(
        _argv(cmd, ns), capture_output=True, text=True, timeout=scaled(timeout), input=input
    )
    if check and proc.returncode != 0:
        raise CmdExitFailure(cmd, proc)
    return proc


def wait_until(condition, timeout=30.0, interval=0.05, what="condition", state=None):
    """Polls @condition until it returns a true value, which is returned.

    Raises TimeoutError naming @what when @timeout seconds pass first, with
    what @state() returns then, if given (the value that never came right).
    """
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            seen = f" (last seen: {state()})" if state else ""
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}{seen}")
        time.sleep(interval)


class Background:
    """A background process that signals readiness by writing to an fd.

    The command gets the write end of a pipe; "{ready_fd}" in its argv is
    replaced by that fd's number. Creating it waits until one byte arrives
    (or the process dies); leaving the context, or the end of the test
    (lib.defer), terminates the process.
    """

    def __init__(self, cmd, ns=None, ready=True, ready_timeout=60, stdout=subprocess.PIPE):
        self.cmd = cmd
        read_fd, write_fd = os.pipe() if ready else (None, None)
        argv = [a.replace("{ready_fd}", str(write_fd)) for a in _argv(cmd, ns)]
        self.proc = subprocess.Popen(
            argv,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=(write_fd,) if ready else (),
        )
        defer(self.stop)
        if ready:
            os.close(write_fd)
            self._wait_ready(read_fd, ready_timeout)

    def _wait_ready(self, read_fd, timeout):
        try:
            # poll(), not select(): a caller holding over 1024 fds (make
            # bench-scale) gets pipe fds select() cannot take.
            waiting = select.poll()
            waiting.register(read_fd, select.POLLIN)
            readable = waiting.poll(scaled(timeout) * 1000)
            if not readable or not os.read(read_fd, 1):
                self.stop()
                raise RuntimeError(
                    f"{self.cmd} never became ready: status {self.proc.returncode}, "
                    f"stderr: {self.proc.stderr.read() if self.proc.stderr else ''}"
                )
        finally:
            os.close(read_fd)

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(scaled(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class StoppableThread(threading.Thread):
    """A daemon thread whose run() loops until ._finished is set. As a
    context manager it starts the thread and stops it on the way out,
    whatever happened."""

    def __init__(self):
        super().__init__(daemon=True)
        self._finished = threading.Event()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self._finished.set()
        self.join()
