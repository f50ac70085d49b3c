# SPDX-License-Identifier: GPL-2.0
"""hsp.ko declares no module alias, deliberately (Documentation/hsp.rst,
"Loading, and why the module has no autoload alias"): with
MODULE_ALIAS_NET_PF_PROTO_TYPE any user's socket() would load it on every
host where the package is installed, and the alias would name the default
protocol number where proto= may have moved it. An administrator opts in
with an alias in /etc/modprobe.d/hsp.conf."""

import glob
import os
import re
import shutil
import subprocess

import pytest

from lib import REPO  # noqa: E402


def built_modules():
    return sorted(glob.glob(os.path.join(REPO, "build", "*", "kmod", "hsp.ko")))


def test_source__declares_no_module_alias():
    found = []
    for path in sorted(glob.glob(os.path.join(REPO, "kmod", "**", "*.[ch]"), recursive=True)):
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                if re.search(r"\bMODULE_ALIAS\w*\s*\(", line):
                    found.append(f"{os.path.relpath(path, REPO)}:{lineno}: {line.strip()}")
    assert not found, "HSP must not be autoloadable (Documentation/hsp.rst):\n  " + \
        "\n  ".join(found)


@pytest.mark.parametrize("module", built_modules() or [None],
                         ids=lambda m: os.path.relpath(m, REPO) if m else "none")
def test_built_module__has_no_alias(module):
    if module is None:
        pytest.skip("no build/*/kmod/hsp.ko: run make kmod")
    modinfo = shutil.which("modinfo") or shutil.which("modinfo", path="/usr/sbin:/sbin")
    if not modinfo:
        pytest.skip("no modinfo (kmod)")
    proc = subprocess.run([modinfo, "-F", "alias", module], capture_output=True, text=True)
    assert proc.returncode == 0, f"modinfo {module}: {proc.stderr.strip()}"
    assert proc.stdout.strip() == "", \
        f"{os.path.relpath(module, REPO)} declares aliases, so it would autoload: " \
        f"{proc.stdout.split()}"
