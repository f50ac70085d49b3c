# SPDX-License-Identifier: GPL-2.0
"""qwatch's event names have one definition, QWATCH_EVENT_LIST(X) in
bpf/qwatch.h: the BPF programs, the reader and its JSON take them from
there. The schema's event enum (Documentation/qwatch.schema.json) and the
Events table of Documentation/qwatch.rst are written by hand, so these
tests hold them to the list: same names, same order."""

import json
import os
import re

from lib import REPO  # noqa: E402
HEADER = "bpf/qwatch.h"
SCHEMA = "Documentation/qwatch.schema.json"
DOC = "Documentation/qwatch.rst"


def read(path):
    with open(os.path.join(REPO, path)) as f:
        return f.read()


def event_list():
    """(enumerator, name) of every X() entry of QWATCH_EVENT_LIST, in order."""
    text = read(HEADER)
    match = re.search(r"^#define QWATCH_EVENT_LIST\(X\)((?:.*\\\n)*.*)$", text, re.M)
    assert match, f"{HEADER}: no '#define QWATCH_EVENT_LIST(X)'"
    body = re.sub(r"/\*.*?\*/", "", match.group(1), flags=re.S)
    entries = re.findall(r"\bX\(\s*(\w+)\s*,\s*\"([^\"]*)\"\s*\)", body)
    assert entries, f"{HEADER}: QWATCH_EVENT_LIST has no X(QWATCH_..., \"name\") entries"
    # Every X( must have been understood, or a malformed entry would be
    # silently missing from the list compared below.
    assert len(entries) == len(re.findall(r"\bX\(", body)), \
        f"{HEADER}: an X() entry of QWATCH_EVENT_LIST is not X(QWATCH_NAME, \"name\")"
    return entries


def kernel_events():
    return [name for _, name in event_list()]


def schema():
    return json.loads(read(SCHEMA))


def reader_events():
    """Events the reader makes itself (not in the BPF list): each has its
    own object in the schema, whose "event" is a const."""
    names = []
    for definition in schema()["$defs"].values():
        event = definition.get("properties", {}).get("event", {})
        if "const" in event:
            names.append(event["const"])
    return names


def drift(what, expected, found):
    """A message naming each name that is missing, extra or out of place."""
    missing = [name for name in expected if name not in found]
    extra = [name for name in found if name not in expected]
    parts = []
    if missing:
        parts.append(f"missing {missing}")
    if extra:
        parts.append(f"not in {HEADER}'s QWATCH_EVENT_LIST: {extra}")
    if not parts:
        first = next((i for i, (a, b) in enumerate(zip(expected, found)) if a != b), None)
        if first is None:
            parts.append("a name listed twice")
        else:
            parts.append(f"out of order from {found[first]!r} (the list has "
                         f"{expected[first]!r} there)")
    return f"{what} drifted from QWATCH_EVENT_LIST: " + "; ".join(parts) + \
        f"\n  QWATCH_EVENT_LIST: {expected}\n  {what}: {found}"


def doc_event_rows():
    """The first column of the table under the Events heading of qwatch.rst."""
    text = read(DOC)
    match = re.search(r"^Events\n=+\n(.*?)(?=^\S[^\n]*\n[=\-~^]+\n)", text, re.M | re.S)
    assert match, f"{DOC}: no 'Events' section"
    lines = match.group(1).splitlines()
    borders = [i for i, line in enumerate(lines) if re.fullmatch(r"=+( +=+)+", line)]
    assert len(borders) >= 3, f"{DOC}: the Events section has no simple table"
    column = len(lines[borders[0]].split()[0])
    header = lines[borders[0] + 1][:column].strip()
    assert header == "event", f"{DOC}: the Events table's first column is {header!r}"
    rows = lines[borders[1] + 1:borders[2]]
    return [row[:column].strip() for row in rows if row[:column].strip()]


def test_header__lists_unique_names_of_lowercase_words():
    entries = event_list()
    names = [name for _, name in entries]
    assert len(set(names)) == len(names), f"duplicate event names in {HEADER}: {names}"
    for enumerator, name in entries:
        assert re.fullmatch(r"[a-z][a-z_]*", name), f"{HEADER}: event name {name!r}"
        assert enumerator == "QWATCH_" + name.upper(), \
            f"{HEADER}: X({enumerator}, \"{name}\"): the enumerator is not QWATCH_{name.upper()}"


def test_schema__transition_event_enum_is_the_list_in_order():
    found = schema()["$defs"]["transition"]["properties"]["event"]["enum"]
    assert found == kernel_events(), drift(f"{SCHEMA} transition.event enum",
                                           kernel_events(), found)


def test_schema__reader_events_are_not_kernel_events():
    clash = set(reader_events()) & set(kernel_events())
    assert not clash, f"{SCHEMA}: {sorted(clash)} are both reader-only objects and BPF events"


def test_doc__events_table_lists_the_list_in_order_then_the_readers_own():
    expected = kernel_events() + reader_events()
    found = doc_event_rows()
    assert found == expected, drift(f"{DOC} Events table", expected, found)
