# SPDX-License-Identifier: GPL-2.0
"""Documentation/ builds without a warning: what `make htmldocs` checks."""

import os
import re
import subprocess

from lib import REPO  # noqa: E402


def test_htmldocs__build_without_warnings(tmp_path):
    proc = subprocess.run(["make", "-s", "-C", REPO, "htmldocs", f"OUTPUT={tmp_path}"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(tmp_path / "htmldocs" / "kmod-api.html") as f:
        assert "hsp_check_req" in f.read(), "kernel-doc comments of kmod/ missing"


def test_kernel_versions_table__names_the_series_make_test_targets():
    """Documentation/qwatch.rst's table of tested kernels and
    tests/vm/kver's supported series are the same list."""
    series = subprocess.run([os.path.join(REPO, "tests", "vm", "kver"), "--series"],
                            capture_output=True, text=True, check=True).stdout.split()
    with open(os.path.join(REPO, "Documentation", "qwatch.rst")) as f:
        section = f.read().split("Kernel versions\n===============\n", 1)[1].split("\n\n\n")[0]
    rows = re.findall(r"^   \* - (\d+\.\d+) \(Debian", section, re.M)
    assert rows == series
