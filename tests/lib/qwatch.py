# SPDX-License-Identifier: GPL-2.0
"""Running qwatch: as a JSON event stream in the background, or once."""

import json
import os
import socket
import threading
import urllib.request

import jsonschema

from . import REPO
from .cmd import Background, run, wait_until

QWATCH = os.path.join(REPO, "build", "qwatch")
with open(os.path.join(REPO, "Documentation", "qwatch.schema.json")) as _schema:
    SCHEMA = jsonschema.Draft202012Validator(json.load(_schema))


def parse(line):
    """One line of qwatch's JSON output, checked against the documented
    schema (Documentation/qwatch.schema.json); raises ValueError if off."""
    obj = json.loads(line)
    errors = list(SCHEMA.iter_errors(obj))
    if errors:
        raise ValueError(f"qwatch printed an object outside its schema: {line.strip()}: "
                         + "; ".join(e.message for e in errors))
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
        self._lock = threading.Lock()
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
            with self._lock:
                self.events.append(event)

    def select(self, **match):
        """The events so far whose fields equal every item of @match."""
        with self._lock:
            return [e for e in self.events if all(e.get(k) == v for k, v in match.items())]

    def wait_for(self, condition, timeout=30, what="qwatch events", state=None):
        """Polls @condition(self) until true; returns its value. On timeout
        the message has @state(self), and how many events and lost events
        qwatch reported."""
        def seen():
            lost = self.latest(event="lost_events")
            mine = f"{state(self)}; " if state else ""
            return f"{mine}{len(self.events)} objects, {lost['total'] if lost else 0} events lost"
        return wait_until(lambda: condition(self), timeout=timeout, what=what, state=seen)

    def latest(self, **match):
        """The last event matching @match, or None."""
        found = self.select(**match)
        return found[-1] if found else None

    def stop(self, timeout=20):
        """Stops qwatch; fails if any object it printed was off its schema."""
        status = super().stop(timeout)
        self._reader.join(timeout)
        assert not self.schema_errors, (f"{len(self.schema_errors)} objects off the schema, "
                                        "the first: " + "\n".join(self.schema_errors[:3]))
        return status


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
