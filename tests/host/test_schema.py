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


def test_parse__names_the_broken_field():
    obj = {**VALID[0], "lport": 70000}
    with pytest.raises(ValueError, match="70000 is greater than the maximum of 65535"):
        parse(json.dumps(obj))
