# SPDX-License-Identifier: GPL-2.0
# Sphinx configuration for `make htmldocs` (Debian's python3-sphinx).

import glob
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sphinx"))

project = "qwatch and HSP"
copyright = "the qwatch and HSP authors"
extensions = ["hsp_kerneldoc"]
master_doc = "index"
exclude_patterns = ["evidence", "sphinx"]
primary_domain = "c"
highlight_language = "none"
html_theme = "alabaster"

# The kernel's own kernel-doc, from the target kernel's headers (the Makefile
# passes KVER's; any installed one otherwise).
hsp_kerneldoc_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
hsp_kerneldoc_script = os.environ.get("KERNELDOC") or next(
    iter(sorted(glob.glob("/usr/src/linux-headers-*-common/scripts/kernel-doc"))), "")
