# SPDX-License-Identifier: GPL-2.0
"""Helpers for the in-VM tests, in the style of the kernel's selftests/net/lib/py."""

import os

# The repository the VM mounts at the same path as on the host.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
