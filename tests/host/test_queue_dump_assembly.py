# SPDX-License-Identifier: GPL-2.0
"""The reader's half of a queue dump (user/queue_dump.cpp): records the
BPF walks write become one entry per socket, under the listener's cookie,
in the kernel's orders, and a dump is whole only if every walk said so.
What the walks meet under concurrency (a bucket walked again, a listener
dumped twice, a map or table list full) cannot be provoked on demand in
the VM, so the records they write are fed here as the BPF side writes
them (bpf/qwatch.h, struct qwatch_queue_entry)."""

import os
import subprocess

import pytest

from lib import REPO  # noqa: E402

COMPLETE = 0x10  # QWATCH_ENTRY_COMPLETE
L1, L2 = 0xffff0001, 0xffff0002  # listener addresses
T1, T2 = 0xeeee0001, 0xeeee0002  # ehash tables


@pytest.fixture(scope="module")
def assemble(tmp_path_factory):
    driver = tmp_path_factory.mktemp("queue_dump") / "queue_dump_check"
    subprocess.run(["g++", "-std=c++20", "-Wall", "-Wextra", "-Werror",
                    "-I", os.path.join(REPO, "user"), "-I", os.path.join(REPO, "bpf"),
                    os.path.join(REPO, "tests", "host", "queue_dump_check.cpp"),
                    os.path.join(REPO, "user", "queue_dump.cpp"), "-o", str(driver)], check=True)

    def run(*records):
        text = "\n".join(" ".join(str(f) for f in r) for r in records) + "\n"
        out = subprocess.run([str(driver)], input=text, capture_output=True, text=True,
                             check=True).stdout
        dump = {}
        for line in out.splitlines():
            cookie, state, syn, accept = line.split()
            lists = [[int(s) for s in part.split("=")[1].split(",") if s] for part in (syn, accept)]
            dump[int(cookie)] = (state, *lists)
        return dump
    return run


def listener(address, cookie, table, children, whole=True):
    return ("listener", address, cookie, 0, table, children, COMPLETE if whole else 0)


def child(address, sock, position):
    return ("accept", address, 0, sock, 0, position, 0)


def request(address, sock, first_synack_us, table=T1):
    return ("syn", address, 0, sock, table, first_synack_us, 0)


def table(address, whole=True):
    return ("table", 0, 0, 0, address, 1024, COMPLETE if whole else 0)


def test_one_dump__lists_by_cookie_in_the_kernels_orders(assemble):
    dump = assemble(child(L1, 11, 0), child(L1, 12, 1), listener(L1, 100, T1, 2),
                    listener(L2, 200, T1, 0),
                    request(L1, 21, 5000), request(L1, 22, 3000), request(L1, 23, 0),
                    request(L2, 24, 4000), table(T1))
    # Oldest first by the first SYN-ACK (none sent yet: newest); accept()'s order.
    assert dump == {100: ("complete", [22, 21, 23], [11, 12]),
                    200: ("complete", [24], [])}


def test_entries_met_twice__listed_once(assemble):
    """A bucket walked again after its chain moved, and a listener dumped
    twice (the dumped-listeners map full): each socket once."""
    dump = assemble(child(L1, 11, 0), child(L1, 12, 1), listener(L1, 100, 0, 2),
                    child(L1, 11, 0), child(L1, 12, 1), listener(L1, 100, 0, 2),
                    request(L2, 21, 100, T2), request(L2, 21, 100, T2), request(L2, 22, 50, T2),
                    listener(L2, 200, T2, 0), table(T2))
    assert dump[100][1:] == ([], [11, 12])
    assert dump[200] == ("complete", [22, 21], [])


@pytest.mark.parametrize("why, records, lost", [
    ("accept queue walk stopped", [listener(L1, 100, T1, 1, whole=False), table(T1)], False),
    ("its table not whole", [listener(L1, 100, T1, 0), table(T1, whole=False)], False),
    ("its table never walked", [listener(L1, 100, T1, 0)], False),
    ("no room for it in the map or the table list", [listener(L1, 100, 0, 0)], False),
    ("records lost to a full ring buffer", [listener(L1, 100, T1, 0), table(T1)], True),
    ("dumped twice, once not whole", [listener(L1, 100, T1, 0), listener(L1, 100, T1, 0, whole=False),
                                      table(T1)], False),
])
def test_incomplete_dumps__say_so(assemble, why, records, lost):
    assert assemble(*records, *([("lost",)] if lost else []))[100][0] == "incomplete", why
    # And the same listener, whole, is complete: the case above is the cause.
    assert assemble(listener(L1, 100, T1, 0), table(T1))[100][0] == "complete"


def test_records_of_an_undumped_listener__dropped(assemble):
    """A request whose listener has no LISTENER record in this dump (a
    socket the walk met under another's address) is no one's entry."""
    dump = assemble(listener(L1, 100, T1, 0), request(L2, 21, 100), child(L2, 11, 0), table(T1))
    assert dump == {100: ("complete", [], [])}
