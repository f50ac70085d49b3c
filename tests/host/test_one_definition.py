# SPDX-License-Identifier: GPL-2.0
"""HSP's IP protocol number has one definition: IPPROTO_HSP in
kmod/include/uapi/linux/hsp.h, the module's default, which its proto=
parameter moves. Everything else takes the number at run time from the
loaded module, /sys/module/hsp/parameters/proto (tests/lib's
hsp.protocol(), the BPF programs' runtime global, the reader's copy), or
from the header at build time. So no source file of the repository spells
the number as a protocol number; documentation may state the default."""

import os
import re
import subprocess

import pytest

from lib import REPO  # noqa: E402
UAPI = "kmod/include/uapi/linux/hsp.h"

# Source files by name; files without one of these names count when they
# start with "#!" (tests/demo/run, tests/vm/run, ...).
SOURCE_SUFFIXES = (".c", ".h", ".cpp", ".cc", ".hpp", ".py", ".sh", ".bash", ".nft", ".mk",
                   ".bt", ".in")
SOURCE_NAMES = ("Makefile", "Kbuild", "rules")


def ipproto_hsp():
    """The number, from its one definition."""
    with open(os.path.join(REPO, UAPI)) as f:
        match = re.search(r"^#define\s+IPPROTO_HSP\s+(\d+)\b", f.read(), re.M)
    assert match, f"{UAPI}: no '#define IPPROTO_HSP <number>'"
    return int(match.group(1))


def spelling(number):
    """A regex for @number written as a protocol number in code: a whole
    literal (not inside 0x..., 1..., an address or a version) in a place
    a value goes: after = ( , [ { : or a quote, before ) , ] } ; or a
    quote, after proto/protocol/l4proto, -p or case, or as a #define's
    value. Also its hexadecimal form after a protocol keyword."""
    n = str(number)
    literal = rf"(?<![\w.]){n}(?![\w.])"
    keyword = r"(?:\b(?:ip_?)?(?:l4)?proto(?:col)?s?\b|\bcase\b|(?<!\w)-p\b)"
    return re.compile("|".join([
        rf"[=(,\[{{:\"']\s*{literal}",
        rf"{literal}\s*[),\]}};\"']",
        rf"{keyword}\s*[=:]?\s*{literal}",
        rf"^\s*#\s*define\s+\w+\s+{literal}",
        rf"{keyword}\s*[=:]?\s*(?i:0x0*{number:x})\b",
    ]), re.I | re.M)


def is_source(path):
    name = os.path.basename(path)
    if path.endswith((".rst", ".md", ".txt")) or path.startswith(("man/", "Documentation/")):
        return False
    if name.endswith(SOURCE_SUFFIXES) or name in SOURCE_NAMES:
        return True
    if "." in name:
        return False
    try:
        with open(os.path.join(REPO, path), "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return False


def source_files():
    """Tracked files, and new ones git does not ignore, that are source."""
    try:
        out = subprocess.run(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"],
                             capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"no git work tree to list: {error}")
    paths = sorted({p for p in out.decode().split("\0") if p})
    return [p for p in paths
            if p != UAPI and os.path.isfile(os.path.join(REPO, p)) and is_source(p)]


def test_pattern__finds_protocol_spellings_and_nothing_else():
    # Checked with another number, so that this file spells no HSP's.
    n = 147
    pattern = spelling(n)
    spelled = [f"socket(AF_INET, SOCK_STREAM, {n})", f"IPPROTO_HSP = {n}",
               f"constexpr int kIpprotoHsp = {n};", f"#define IPPROTO_HSP\t{n}",
               f"ip protocol {n} @th,0,16 45000-45999 drop;",
               f'os.environ.get("HSP_PROTO", "{n}")', f"meta l4proto {n} counter",
               f"iptables -p {n} -j DROP", f"case {n}:", f"proto={n}", f"{{'proto': {n}}}",
               f"ip protocol {n:#x} drop"]
    unrelated = [f"x = 0x{n}", f"port = 1{n}", f"count = {n}0", f"addr = '10.0.{n}.1'",
                 f"version 6.1.{n}", f"scale({n}.5)", f"ID_{n} = 1", f"# {n} requests in flight",
                 f"mask & {n:#x}"]
    assert [s for s in spelled if not pattern.search(s)] == []
    assert [s for s in unrelated if pattern.search(s)] == []


def test_source__spells_hsp_protocol_number_only_in_the_uapi_header():
    number = ipproto_hsp()
    pattern = spelling(number)
    files = source_files()
    assert any(p.startswith("tests/") for p in files) and any(p.endswith(".c") for p in files)
    found = []
    for path in files:
        with open(os.path.join(REPO, path), errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                if pattern.search(line):
                    found.append(f"{path}:{lineno}: {line.strip()}")
    assert not found, (
        f"HSP's protocol number {number} is spelled outside {UAPI}; read the loaded "
        "module's /sys/module/hsp/parameters/proto at run time (tests/lib: "
        "hsp.protocol()) or use IPPROTO_HSP from the header:\n  " + "\n  ".join(found))
