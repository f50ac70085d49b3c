# SPDX-License-Identifier: GPL-2.0
"""Fixtures for every test run inside the test VM (tests/vm/run)."""

import gc
import os
import traceback

import pytest

from lib import defer, hsp
from lib.cmd import one_cpu, wait_until
from lib.kernel import SPLAT, KernelLog
from lib.netns import NetNSPair

IN_VM = os.environ.get("VM_GUEST") == "1"

# Host checks of the harness run on the host; everything else needs the VM,
# and tests/install a VM whose root is writable (make test-install).
collect_ignore = ["vm"] + (["host"] if IN_VM else [
    name for name in os.listdir(os.path.dirname(__file__)) if name not in ("host", "lib")
]) + ([] if os.environ.get("VM_WRITABLE_ROOT") == "1" else ["install"])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Once a failure is reported, its traceback lets go of the test's
    locals: a socket the test did not get to close is closed now, before
    the leak oracle below runs, instead of failing every later test."""
    yield
    if call.excinfo is not None:
        traceback.clear_frames(call.excinfo.tb)


@pytest.fixture(autouse=True)
def kernel_stays_healthy():
    """Fails the test if the kernel logged a warning, BUG, Oops or trace meanwhile."""
    log = KernelLog()
    yield
    splats = [line for line in log.read_new() if SPLAT.search(line)]
    log.close()
    assert not splats, "the kernel logged during this test:\n" + "\n".join(splats)


@pytest.fixture(name="one_cpu")
def one_cpu_fixture():
    """The whole test on one CPU (lib.cmd.one_cpu)."""
    with one_cpu():
        yield


@pytest.fixture
def netns_pair():
    """A server and a client namespace joined by veth; always removed."""
    with NetNSPair() as pair:
        yield pair


@pytest.fixture(scope="session")
def hsp_module():
    """hsp.ko of the running kernel, loaded for the session; unloading it at the end must work."""
    hsp.load()
    yield
    hsp.unload()


@pytest.fixture(autouse=True)
def deferred(kernel_stays_healthy, hsp_sockets_all_freed):
    """Runs what the test queued with lib.defer (its sockets' close(), its
    background processes' stop(), its nft tables' deletion) when it ends,
    failed or not. It depends on the kernel-log check and the leak oracle
    so that it runs before their checks: a splat on close is this test's,
    and the leak oracle sees every socket the test made closed. (A test's
    own fixtures are torn down earlier; one that needs the test's sockets
    gone first, e.g. to unload the module, calls lib.defer.run_all().)"""
    yield
    defer.run_all()


@pytest.fixture(autouse=True)
def hsp_sockets_all_freed():
    """Leak oracle: every HSP socket and request sock holds a module
    reference, so after each test the module's refcount must come back to
    what it was (requests of closed listeners go at their next timer)."""
    baseline = hsp.refcount() if hsp.loaded() else None
    yield
    gc.collect()
    if baseline is not None and hsp.loaded():
        wait_until(lambda: hsp.refcount() <= baseline, timeout=60,
                   what=f"hsp's refcount back to {baseline}: HSP sockets leaked")
