# SPDX-License-Identifier: GPL-2.0
"""Running qwatch: as a JSON event stream in the background, or once."""

import json
import os
import threading

from .cmd import Background, run, wait_until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QWATCH = os.path.join(REPO, "build", "qwatch")


def once(*args):
    """Every listener qwatch knows now (`--once --json`), as dicts."""
    out = run([QWATCH, "--once", "--json", *args]).stdout
    return [json.loads(line) for line in out.splitlines()]


class QwatchStream(Background):
    """`qwatch --json` in the background; its events collect in .events."""

    def __init__(self, *args):
        self.events = []
        self._lock = threading.Lock()
        super().__init__([QWATCH, "--json", "--ready-fd", "{ready_fd}", *args])
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            event = json.loads(line)
            with self._lock:
                self.events.append(event)

    def select(self, **match):
        """The events so far whose fields equal every item of @match."""
        with self._lock:
            return [e for e in self.events if all(e.get(k) == v for k, v in match.items())]

    def wait_for(self, condition, timeout=30, what="qwatch events"):
        """Polls @condition(self) until true; returns its value."""
        return wait_until(lambda: condition(self), timeout=timeout, what=what)

    def latest(self, **match):
        """The last event matching @match, or None."""
        found = self.select(**match)
        return found[-1] if found else None

    def stop(self, timeout=20):
        status = super().stop(timeout)
        self._reader.join(timeout)
        return status
