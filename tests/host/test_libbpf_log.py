# SPDX-License-Identifier: GPL-2.0
"""qwatch names a program the verifier rejected, with the verifier's last
words, from what the installed libbpf prints (its own format strings)."""

import os
import subprocess

from lib import REPO  # noqa: E402
LIBBPF = "/usr/lib/x86_64-linux-gnu/libbpf.so.1"
# What 6.12's verifier said of 6.1's fexit/inet_csk_accept program.
VERIFIER_LOG = ("0: R1=ctx(off=0,imm=0) R10=fp0\n"
                "0: (79) r9 = *(u64 *)(r1 +32)\n"
                "func 'inet_csk_accept' doesn't have 4-th argument\n"
                "invalid bpf_context access off=32 size=8\n"
                "processed 3 insns (limit 1000000) max_states_per_insn 0 total_states 0 "
                "peak_states 0 mark_read 0\n")


def libbpf_format(start):
    """The NUL-terminated format string of libbpf that begins with @start."""
    with open(os.path.realpath(LIBBPF), "rb") as f:
        data = f.read()
    at = data.index(start.encode())
    return data[at:data.index(b"\0", at)].decode()


def test_rejected_program__named_with_the_verifiers_reason(tmp_path):
    driver = tmp_path / "libbpf_log_check"
    subprocess.run(["g++", "-std=c++20", "-Wall", "-Wextra", "-Werror", "-I", os.path.join(REPO, "user"),
                    os.path.join(REPO, "tests", "host", "libbpf_log_check.cpp"),
                    os.path.join(REPO, "user", "libbpf_handles.cpp"), "-lbpf", "-o", str(driver)],
                   check=True)
    load_failed = libbpf_format("libbpf: prog '%s': BPF program load failed")
    load_log = libbpf_format("libbpf: prog '%s': -- BEGIN PROG LOAD LOG --")
    out = subprocess.run([str(driver), load_failed, load_log, "inet_csk_accept_exit", VERIFIER_LOG],
                         capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == [
        "program inet_csk_accept_exit rejected by the verifier: func 'inet_csk_accept' "
        "doesn't have 4-th argument; invalid bpf_context access off=32 size=8", ""]
