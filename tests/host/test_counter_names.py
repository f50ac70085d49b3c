# SPDX-License-Identifier: GPL-2.0
"""The per-listener counters have one list, kCounterFields in user/output.h
(each a member of struct qwatch_counters in bpf/qwatch.h): the schema's
listener object, qwatch.rst's metrics table and its list of JSON members
must name exactly those, so that a counter added, renamed or dropped in one
place fails here rather than drifting in the others."""

import json
import os
import re

from lib import REPO  # noqa: E402


def read(*path):
    with open(os.path.join(REPO, *path)) as f:
        return f.read()


def counter_fields():
    names = re.findall(r'\{"(\w+)",\s*&qwatch_counters::(\w+)', read("user", "output.h"))
    assert len(names) >= 12, names
    for name, member in names:
        assert name == member, f"kCounterFields: {name!r} is served from member {member!r}"
    return [name for name, _ in names]


def test_every_counter_field__is_a_member_of_the_abi_struct():
    header = read("bpf", "qwatch.h")
    struct = re.search(r"struct qwatch_counters \{(.*?)\n\};", header, re.S).group(1)
    members = re.findall(r"__u64 (\w+);", struct)
    missing = [name for name in counter_fields() if name not in members]
    assert not missing, f"not in struct qwatch_counters: {missing}"


def test_schema_listener__has_exactly_the_counters():
    schema = json.loads(read("Documentation", "qwatch.schema.json"))
    properties = schema["$defs"]["listener"]["properties"]
    counts = [name for name, spec in properties.items()
              if isinstance(spec, dict) and spec.get("$ref") == "#/$defs/count"]
    assert counts == counter_fields(), \
        f"schema listener counters {counts} != kCounterFields {counter_fields()}"


def test_docs_metrics_table__lists_exactly_the_counters():
    doc = read("Documentation", "qwatch.rst")
    served = re.findall(r"^qwatch_(\w+)_total\s+counter\s", doc, re.M)
    # Reader-wide counters, not per listener (the table says "no labels").
    reader = {name for name in served
              if re.search(rf"^qwatch_{name}_total\s.*\(no labels\)", doc, re.M)}
    per_listener = [name for name in served if name not in reader]
    assert per_listener == counter_fields(), \
        f"qwatch.rst metrics {per_listener} != kCounterFields {counter_fields()}"


def test_docs_json_members__list_exactly_the_counters():
    doc = read("Documentation", "qwatch.rst")
    prose = re.search(r"its name: (.*?)\.\n", doc, re.S).group(1)
    listed = re.findall(r"``(\w+)``", prose)
    assert listed == counter_fields(), \
        f"qwatch.rst's list of JSON counters {listed} != kCounterFields {counter_fields()}"
