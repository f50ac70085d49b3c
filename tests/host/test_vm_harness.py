# SPDX-License-Identifier: GPL-2.0
"""The VM harness, checked from the host: status, output, kernel, crashes."""

import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VM_RUN = os.path.join(REPO, "tests", "vm", "run")


def vm(*argv, timeout=600, kernel=None):
    options = ["--kernel", kernel] if kernel else []
    return subprocess.run([VM_RUN, *options, "--", *argv], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def target_kernels():
    return subprocess.run([os.path.join(REPO, "tests", "vm", "kver")], capture_output=True,
                          text=True, check=True).stdout.split()


def test_exit_status__propagates():
    assert vm("false").returncode == 1
    assert vm("sh", "-c", "exit 42").returncode == 42


def test_output__arrives_with_the_first_target_kernel_by_default():
    proc = vm("uname", "-r")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == target_kernels()[0] != os.uname().release


def test_every_target_kernel__boots_and_loads_its_own_hsp():
    """Each kernel of tests/vm/kver (6.1, 6.12: xz and zstd images) boots,
    and insmod of the hsp.ko make built for it works there."""
    for kernel in target_kernels():
        proc = vm("sh", "-c", 'uname -r; insmod "build/$(uname -r)/kmod/hsp.ko" && '
                  "cat /sys/module/hsp/initstate", kernel=kernel)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [kernel, "live"], proc.stderr


def test_guest__runs_as_root_in_the_repository_with_a_writable_tree():
    proc = vm("sh", "-c", "id -u; pwd; touch build/vm/guest-wrote-this && echo ok")
    assert proc.stdout.split() == ["0", REPO, "ok"], proc.stderr
    os.unlink(os.path.join(REPO, "build", "vm", "guest-wrote-this"))


def test_kernel_crash__ends_the_vm_and_is_reported():
    proc = vm("sh", "-c", "echo c > /proc/sysrq-trigger; sleep 600", timeout=120)
    assert proc.returncode == 125
    assert "crashed" in proc.stderr
