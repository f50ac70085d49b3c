# SPDX-License-Identifier: GPL-2.0
"""The VM harness, checked from the host: status, output, kernel, crashes."""

import os
import subprocess

from lib import REPO  # noqa: E402
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


FAKE_QEMU = r"""#!/bin/bash
# Stands in for qemu-system-x86_64: boot number N (counted in $FAKE_QEMU_DIR)
# writes the console line $FAKE_QEMU_BOOT_N, after the command's start
# marker when $FAKE_QEMU_AFTER_START is set; a boot without a line runs
# the command (status 0).
while [ $# -gt 0 ]; do
	case $1 in
	-serial) case $2 in file:*) log=${2#file:} ;; esac; shift ;;
	-append) for word in $2; do case $word in vmrun_*=*) declare "${word%%=*}=${word#*=}" ;; esac; done; shift ;;
	esac
	shift
done
boot=$(( $(cat "$FAKE_QEMU_DIR/boots" 2> /dev/null || echo 0) + 1 ))
echo "$boot" > "$FAKE_QEMU_DIR/boots"
job=$vmrun_repo/$vmrun_job
line_var=FAKE_QEMU_BOOT_$boot
if [ -z "${!line_var:-}" ]; then
	date +%s > "$job/started"
	echo 0 > "$job/rc"
	exit 0
fi
[ -z "${FAKE_QEMU_AFTER_START:-}" ] || date +%s > "$job/started"
echo "[    2.646474] ${!line_var}" > "$log"
echo "[    2.653317] Kernel panic - not syncing: Fatal exception in interrupt" >> "$log"
"""

INT3_OOPS = "Oops: int3: 0000 [#1] PREEMPT SMP NOPTI"


def vm_with_fake_qemu(tmp_path, boots, after_start=False):
    """tests/vm/run with a stand-in qemu whose boot N prints @boots[N-1]
    (None: the command runs). Returns (the run, how many boots)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "qemu-system-x86_64"
    fake.write_text(FAKE_QEMU)
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "VM_ACCEL": "tcg",
           "FAKE_QEMU_DIR": str(tmp_path)}
    env.update({f"FAKE_QEMU_BOOT_{n}": line for n, line in enumerate(boots, 1) if line})
    if after_start:
        env["FAKE_QEMU_AFTER_START"] = "1"
    proc = subprocess.run([VM_RUN, "--", "true"], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env=env)
    return proc, int((tmp_path / "boots").read_text())


def test_int3_oops_while_booting__boots_again_at_most_three_times(tmp_path):
    proc, boots = vm_with_fake_qemu(tmp_path, [INT3_OOPS, INT3_OOPS, None])
    assert (proc.returncode, boots) == (0, 3), proc.stderr
    assert proc.stderr.count("oopsed on an int3 while booting") == 2, proc.stderr
    assert "booting again (boot 3 of 3)" in proc.stderr


def test_int3_oops_three_boots_running__is_a_crash(tmp_path):
    proc, boots = vm_with_fake_qemu(tmp_path, [INT3_OOPS] * 3)
    assert (proc.returncode, boots) == (125, 3), proc.stderr
    assert "the kernel crashed" in proc.stderr


def test_other_oops_while_booting__is_a_crash_at_once(tmp_path):
    proc, boots = vm_with_fake_qemu(tmp_path, ["Oops: 0002 [#1] PREEMPT SMP NOPTI", None])
    assert (proc.returncode, boots) == (125, 1), proc.stderr


def test_int3_oops_once_the_command_has_started__is_a_crash_at_once(tmp_path):
    proc, boots = vm_with_fake_qemu(tmp_path, [INT3_OOPS, None], after_start=True)
    assert (proc.returncode, boots) == (125, 1), proc.stderr


ARGV_QEMU = r"""#!/bin/bash
# Stands in for qemu-system-x86_64: records its arguments, one a line, in
# $FAKE_QEMU_DIR/argv and runs the command (status 0).
printf '%s\n' "$@" > "$FAKE_QEMU_DIR/argv"
while [ $# -gt 0 ]; do
	case $1 in
	-append) for word in $2; do case $word in vmrun_*=*) declare "${word%%=*}=${word#*=}" ;; esac; done; shift ;;
	esac
	shift
done
date +%s > "$vmrun_repo/$vmrun_job/started"
echo 0 > "$vmrun_repo/$vmrun_job/rc"
"""


def qemu_argv(tmp_path, *options, **env):
    """What tests/vm/run with @options and @env passes to a stand-in qemu."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "qemu-system-x86_64"
    fake.write_text(ARGV_QEMU)
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "FAKE_QEMU_DIR": str(tmp_path),
           **env}
    proc = subprocess.run([VM_RUN, *options, "--", "true"], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=env)
    argv = (tmp_path / "argv").read_text().splitlines() if (tmp_path / "argv").exists() else []
    return proc, argv


def test_icount__single_threaded_tcg_with_that_icount(tmp_path):
    """make bench's repeatable clock: -icount needs TCG with one thread."""
    proc, argv = qemu_argv(tmp_path, "--icount", "shift=2", "--cpus", "2")
    assert proc.returncode == 0, proc.stderr
    accel = argv[argv.index("-accel") + 1]
    assert (accel, argv[argv.index("-icount") + 1]) == ("tcg,thread=single", "shift=2")
    assert argv[argv.index("-smp") + 1] == "2"


def test_icount__from_the_environment_and_refused_with_kvm(tmp_path):
    proc, argv = qemu_argv(tmp_path, VM_ICOUNT="shift=3")
    assert proc.returncode == 0 and argv[argv.index("-icount") + 1] == "shift=3", proc.stderr
    (tmp_path / "argv").unlink()
    # The stand-in qemu still first on PATH: a broken check boots nothing.
    proc = subprocess.run([VM_RUN, "--icount", "shift=2", "--", "true"], capture_output=True,
                          text=True, timeout=300, cwd=REPO,
                          env={**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
                               "FAKE_QEMU_DIR": str(tmp_path), "VM_ACCEL": "kvm"})
    assert proc.returncode == 2 and "--icount needs TCG" in proc.stderr
    assert not (tmp_path / "argv").exists()


def test_no_icount__no_icount_option(tmp_path):
    proc, argv = qemu_argv(tmp_path, VM_ACCEL="tcg")
    assert proc.returncode == 0, proc.stderr
    assert "-icount" not in argv and argv[argv.index("-accel") + 1] == "tcg"
