# SPDX-License-Identifier: GPL-2.0
"""Helpers for the in-VM tests, in the style of the kernel's selftests/net/lib/py."""
