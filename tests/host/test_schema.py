# SPDX-License-Identifier: GPL-2.0
"""The tests check qwatch's JSON with two validators of
Documentation/qwatch.schema.json: fastjsonschema for speed, jsonschema
(the reference implementation of draft 2020-12) for the message. They must
agree on every object, or the fast one could let through what the schema
forbids."""

import copy
import json
import os

import fastjsonschema
import jsonschema
import pytest

from lib import REPO  # noqa: E402
from lib.qwatch import parse  # noqa: E402

with open(os.path.join(REPO, "Documentation", "qwatch.schema.json")) as f:
    DOCUMENT = json.load(f)
REFERENCE = jsonschema.Draft202012Validator(DOCUMENT)
FAST = fastjsonschema.compile(DOCUMENT)

QUEUES = {"id": 1, "proto": "hsp", "family": "inet", "netns": 4026531840,
          "laddr": "10.0.0.1", "lport": 8080, "syn_queue": 3, "syn_young": 2,
          "accept_queue": 1, "accept_max": 128, "drops": 0, "cookie": 4097}
# --queues: one entry of each list (tests/test_queue_dumps.py checks real ones).
SYN_ENTRY = {"raddr": "10.0.0.2", "rport": 45014, "age_ms": 14884.31, "synack_retransmits": 3,
             "timeouts": 3, "young": False, "timer_ms": -4.0}
ACCEPT_ENTRY = {"raddr": "::ffff:10.0.0.2", "rport": 54768, "age_ms": 6756.0, "rx_bytes": 1}
EVENT_FIELDS = {"ts_ns": 123456789, "raddr": "10.0.0.2", "rport": 40000}
STAGED = ("overflow", "syn_drop", "ack_drop")
TIMED = ("ack_complete", "accept")


def transitions():
    for event in DOCUMENT["$defs"]["transition"]["properties"]["event"]["enum"]:
        obj = {**EVENT_FIELDS, "event": event, **QUEUES}
        if event in STAGED:
            obj["stage"] = "syn"
            obj["cause"] = "listen_overflows"
        if event == "ack_complete":
            obj["path"] = "syncookie"
        if event in TIMED:
            obj["latency_ns"] = 1500
        if event in ("snapshot", "listen", "accept"):
            obj["pid"] = 42
        yield obj


VALID = [*transitions(),
         {**QUEUES, "pid": 0, "comm": None, "peak_syn_queue": 5, "peak_accept_queue": 2,
          "handshakes": 7, "accepts": 6, "synack_retransmits": 1, "expired_requests": 0,
          "listen_overflows": 2, "listen_drops": 3, "syn_queue_full_drops": 0,
          "syn_queue_full_cookies": 4, "syncookies_sent": 9, "syncookies_recv": 5,
          "syncookies_failed": 1, "tfo_children": 0},
         {**QUEUES, "pid": 42, "comm": "nginx", "peak_syn_queue": 5, "peak_accept_queue": 2,
          "handshakes": 7, "accepts": 6, "synack_retransmits": 1, "expired_requests": 0,
          "listen_overflows": 2, "listen_drops": 3, "syn_queue_full_drops": 0,
          "syn_queue_full_cookies": 4, "syncookies_sent": 9, "syncookies_recv": 5,
          "syncookies_failed": 1, "tfo_children": 0},
         {**QUEUES, "pid": 42, "comm": "nginx", "peak_syn_queue": 5, "peak_accept_queue": 2,
          "handshakes": 7, "accepts": 6, "synack_retransmits": 1, "expired_requests": 0,
          "listen_overflows": 2, "listen_drops": 3, "syn_queue_full_drops": 0,
          "syn_queue_full_cookies": 4, "syncookies_sent": 9, "syncookies_recv": 5,
          "syncookies_failed": 1, "tfo_children": 0,
          "syn_queue_entries": [SYN_ENTRY, {**SYN_ENTRY, "age_ms": None, "timer_ms": None}],
          "accept_queue_entries": [ACCEPT_ENTRY, {**ACCEPT_ENTRY, "rx_bytes": None}],
          "queue_dump_complete": True},
         {"ts_ns": 1, "event": "lost_events", "total": 3},
         {"ts_ns": 1, "event": "hsp_module", "loaded": True, "watched": False}]

WRONG_VALUES = [None, -1, 0, 1 << 32, 65536, "", "x", True, 1.5, [], {}]


def mutants():
    """Every valid object with each field removed, replaced by each wrong
    value, and with one field too many."""
    for obj in VALID:
        for key in obj:
            yield {k: v for k, v in obj.items() if k != key}
            for value in WRONG_VALUES:
                yield {**obj, key: value}
        yield {**obj, "unexpected": 1}
        if "stage" not in obj and "event" in obj:
            yield {**obj, "stage": "syn"}
            yield {**obj, "cause": "listen_drops"}
        if "path" not in obj and "event" in obj:
            yield {**obj, "path": "handshake"}


def entry_mutants():
    """A --queues listener with each entry field removed, replaced by each
    wrong value, one field too many, and the lists without each other."""
    [listener] = [obj for obj in VALID if "syn_queue_entries" in obj]
    for key, entry in (("syn_queue_entries", SYN_ENTRY), ("accept_queue_entries", ACCEPT_ENTRY)):
        for field in entry:
            yield {**listener, key: [{k: v for k, v in entry.items() if k != field}]}
            for value in WRONG_VALUES:
                yield {**listener, key: [{**entry, field: value}]}
        yield {**listener, key: [{**entry, "unexpected": 1}]}
        yield {**listener, key: [1]}
    for key in ("syn_queue_entries", "accept_queue_entries", "queue_dump_complete"):
        yield {k: v for k, v in listener.items() if k != key}


def fast_verdict(obj):
    try:
        FAST(copy.deepcopy(obj))
    except fastjsonschema.JsonSchemaException:
        return False
    return True


@pytest.mark.parametrize("obj", VALID, ids=lambda o: o.get("event", "listener"))
def test_valid_objects__accepted_by_both(obj):
    assert REFERENCE.is_valid(obj), list(REFERENCE.iter_errors(obj))
    assert fast_verdict(obj)


def test_mutants__both_validators_give_the_same_verdict():
    disagreements, rejected, total = [], 0, 0
    for obj in mutants():
        total += 1
        reference = REFERENCE.is_valid(obj)
        rejected += not reference
        if fast_verdict(obj) != reference:
            disagreements.append((reference, obj))
    assert not disagreements, f"{len(disagreements)} of {total}, e.g. {disagreements[:3]}"
    # The mutations are not vacuous: most of them break the schema.
    assert rejected > total // 2


def test_queue_entries__both_validators_agree_and_reject_what_is_off():
    disagreements, accepted = [], []
    for obj in entry_mutants():
        reference = REFERENCE.is_valid(obj)
        if fast_verdict(obj) != reference:
            disagreements.append((reference, obj))
        if reference:
            accepted.append(obj)
    assert not disagreements, f"{len(disagreements)}, e.g. {disagreements[:3]}"
    # What stays valid: a number where a number goes (1.5, 0, 1 << 32 for
    # a time or rx_bytes), null for a time or rx_bytes, a negative timer.
    for obj in accepted:
        for key in ("syn_queue_entries", "accept_queue_entries"):
            for entry in obj[key]:
                assert set(entry) in ({*SYN_ENTRY}, {*ACCEPT_ENTRY}), entry
    [listener] = [obj for obj in VALID if "syn_queue_entries" in obj]
    for wrong in ({**SYN_ENTRY, "synack_retransmits": 256}, {**SYN_ENTRY, "age_ms": -1},
                  {**SYN_ENTRY, "rport": 0}, {**SYN_ENTRY, "young": 1}):
        assert not REFERENCE.is_valid({**listener, "syn_queue_entries": [wrong]}), wrong
    assert REFERENCE.is_valid({**listener, "syn_queue_entries": [], "accept_queue_entries": []})


def test_parse__names_the_broken_field():
    obj = {**VALID[0], "lport": 70000}
    with pytest.raises(ValueError, match="70000 is greater than the maximum of 65535"):
        parse(json.dumps(obj))

