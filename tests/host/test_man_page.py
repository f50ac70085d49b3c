# SPDX-License-Identifier: GPL-2.0
"""man/qwatch.8 renders cleanly and documents every option qwatch has."""

import os
import re
import subprocess

from lib import REPO  # noqa: E402
MAN_PAGE = os.path.join(REPO, "man", "qwatch.8")


def test_man_page__renders_without_warnings():
    proc = subprocess.run(["groff", "-man", "-ww", "-z", MAN_PAGE], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == ""


def test_man_page__documents_every_option_of_the_help():
    usage = subprocess.run([os.path.join(REPO, "build", "qwatch"), "--help"], capture_output=True,
                           text=True, timeout=60, check=True).stdout
    options = set(re.findall(r"^\s+(?:-\w, )?(--[\w-]+)", usage, re.MULTILINE))
    assert len(options) > 10
    with open(MAN_PAGE) as f:
        page = f.read().replace("\\-", "-")
    assert not [option for option in sorted(options) if option not in page]
