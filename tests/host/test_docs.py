# SPDX-License-Identifier: GPL-2.0
"""Documentation/ builds without a warning: what `make htmldocs` checks."""

import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_htmldocs__build_without_warnings(tmp_path):
    proc = subprocess.run(["make", "-s", "-C", REPO, "htmldocs", f"OUTPUT={tmp_path}"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(tmp_path / "htmldocs" / "kmod-api.html") as f:
        assert "hsp_check_req" in f.read(), "kernel-doc comments of kmod/ missing"
