# SPDX-License-Identifier: GPL-2.0
"""Running qwatch: as a JSON event stream in the background, or once."""

import json
import os
import re
import socket
import threading
import time
import urllib.request

import fastjsonschema
import jsonschema

from . import REPO
from .cmd import Background, run, scaled

QWATCH = os.path.join(REPO, "build", "qwatch")
with open(os.path.join(REPO, "Documentation", "qwatch.schema.json")) as _schema:
    SCHEMA_DOCUMENT = json.load(_schema)
# jsonschema names what is wrong; fastjsonschema's compiled check is ~8x
# faster, which is what keeps a reader under emulation ahead of a flood's
# thousands of objects. tests/host/test_schema.py holds the two to one verdict.
SCHEMA = jsonschema.Draft202012Validator(SCHEMA_DOCUMENT)
_fast_check = fastjsonschema.compile(SCHEMA_DOCUMENT)


def schema_error(obj):
    """What is wrong with @obj in the terms of the kind of object it comes
    closest to (the schema is one of several kinds), or None if valid."""
    errors = list(SCHEMA.iter_errors(obj))
    if not errors:
        return None
    top = jsonschema.exceptions.best_match(errors)
    if top.validator != "oneOf" or not top.context:
        return top
    by_kind = {}
    for error in top.context:
        by_kind.setdefault(error.schema_path[0], []).append(error)
    closest = min(by_kind.values(), key=len)
    return jsonschema.exceptions.best_match(closest)


def parse(line):
    """One line of qwatch's JSON output, checked against the documented
    schema (Documentation/qwatch.schema.json); raises ValueError if off."""
    obj = json.loads(line)
    try:
        _fast_check(obj)
    except fastjsonschema.JsonSchemaException:
        error = schema_error(obj)
        reason = error.message if error else "only the compiled schema check rejects it"
        where = "/".join(str(p) for p in error.absolute_path) if error else ""
        raise ValueError(f"qwatch printed an object outside its schema: {line.strip()}: "
                         f"{where or 'the object'}: {reason}") from None
    return obj


def once(*args):
    """Every listener qwatch knows now (`--once --json`), as dicts."""
    out = run([QWATCH, "--once", "--json", *args]).stdout
    return [parse(line) for line in out.splitlines()]


class QwatchStream(Background):
    """`qwatch --json` in the background; its events collect in .events."""

    def __init__(self, *args):
        self.events = []
        self.schema_errors = []
        self._changed = threading.Condition()
        super().__init__([QWATCH, "--json", "--ready-fd", "{ready_fd}", *args])
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                event = parse(line)
            except ValueError as e:
                self.schema_errors.append(str(e))
                continue
            with self._changed:
                self.events.append(event)
                self._changed.notify_all()

    def select(self, **match):
        """The events so far whose fields equal every item of @match."""
        with self._changed:
            events = list(self.events)
        return [e for e in events if all(e.get(k) == v for k, v in match.items())]

    def wait_for(self, condition, timeout=30, what="qwatch events", state=None):
        """Waits until @condition(self) is true; returns its value. On timeout
        the message has @state(self), and how many events and lost events
        qwatch reported.

        @condition is tried again when events arrived, at least once a
        second (it may look beyond them), and never in more than a third of
        the time: a scan of thousands of events under emulation takes long
        enough to starve the reader thread of the interpreter otherwise.
        """
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        while True:
            started = time.monotonic()
            with self._changed:
                tried_at = len(self.events)
            value = condition(self)
            if value:
                return value
            now = time.monotonic()
            if now >= deadline:
                lost = self.latest(event="lost_events")
                mine = f"{state(self)}; " if state else ""
                raise TimeoutError(
                    f"timed out after {timeout} s waiting for {what} (last seen: {mine}"
                    f"{len(self.events)} objects, {lost['total'] if lost else 0} events lost)")
            time.sleep(min(2 * (now - started), deadline - now))
            with self._changed:
                self._changed.wait_for(lambda: len(self.events) != tried_at,
                                       timeout=max(0.0, min(1.0, deadline - time.monotonic())))

    def latest(self, **match):
        """The last event matching @match, or None."""
        found = self.select(**match)
        return found[-1] if found else None

    def stop(self, timeout=20):
        """Stops qwatch; fails if any object it printed was off its schema
        (once: stopping again, as lib.defer does, says nothing new)."""
        status = super().stop(timeout)
        reader = getattr(self, "_reader", None)  # none if qwatch never became ready
        if reader:
            reader.join(timeout)
        errors, self.schema_errors = self.schema_errors, []
        assert not errors, (f"{len(errors)} objects off the schema, "
                            "the first: " + "\n".join(errors[:3]))
        return status


SCREEN_START = re.compile(r"^qwatch \d\d:\d\d:\d\d$")
SCREEN_END = re.compile(r"^\d+ listeners?, \d+ lost events, watching ")


def screens(lines):
    """The complete screens in @lines (text output, not a terminal): each a
    list of its lines from the clock line to the footer, both included."""
    found, current = [], None
    for line in lines:
        if SCREEN_START.match(line):
            current = [line]
        elif current is not None:
            current.append(line)
            if SCREEN_END.match(line):
                found.append(current)
                current = None
    return found


class TextStream(Background):
    """qwatch running live with @args, printing text (not to a terminal);
    its lines collect in .lines as they come."""

    def __init__(self, *args):
        self.lines = []
        self._lock = threading.Lock()
        super().__init__([QWATCH, "--ready-fd", "{ready_fd}", *args])
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def join_reader(self, timeout=20):
        """Once the process has exited: waits until .lines has all it printed."""
        self._reader.join(scaled(timeout))
        assert not self._reader.is_alive(), f"{self.cmd}: output still open"

    def mark(self):
        with self._lock:
            return len(self.lines)

    def screens_since(self, mark):
        """The complete screens printed from line @mark on."""
        with self._lock:
            return screens(self.lines[mark:])


def scrape(port):
    """The text qwatch --metrics serves on 127.0.0.1:@port."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        return reply.read().decode()


def metric_value(text, name, **labels):
    """The value of the first sample of @name with @labels in @text, or None."""
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def free_port():
    """A TCP port nobody listens on now, for --metrics."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
