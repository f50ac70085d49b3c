# SPDX-License-Identifier: GPL-2.0
"""Cleanups queued while a test runs and run when it ends, as the kernel's
selftests/net/lib/py defer() does: whatever made a resource queues its
release right away, so a failing assertion cannot leave it behind.

socket_in() queues the close() of every socket it makes (and of every child
such a listener's accept() returns), Background the stop() of its process,
lib.nft the deletion of its tables. The autouse fixture ``deferred`` in
tests/conftest.py runs the queue after each test, before the leak oracle.

References are strong: a queued socket stays open until the test closes it
or ends. A socket a test no longer names is not closed behind its back by
the garbage collector at some point the interpreter chooses (with weak
references, `_ = a(); _ = b()` would close the first mid-test); a test that
wants a socket gone closes it. Cleanups are idempotent: a deferred close()
of a socket the test closed is a no-op.
"""

import threading

_queue = []
_lock = threading.Lock()
# Closed sockets are pruned from the queue once it grows past this: a test
# making thousands of short connections (ConnectLoop) keeps it small.
_PRUNE_AT = 512


class Deferred:
    """One queued cleanup: @func(*args, **kwargs), run at most once."""

    def __init__(self, func, args, kwargs):
        self.func, self.args, self.kwargs = func, args, kwargs
        self.done = False

    def exec(self):
        """Runs the cleanup now (if it has not run), and dequeues it."""
        if self.done:
            return
        self.done = True
        with _lock:
            if self in _queue:
                _queue.remove(self)
        self.func(*self.args, **self.kwargs)

    def cancel(self):
        """Dequeues the cleanup without running it."""
        self.done = True
        with _lock:
            if self in _queue:
                _queue.remove(self)

    def __repr__(self):
        return f"<deferred {getattr(self.func, '__qualname__', self.func)}{self.args}>"


def defer(func, *args, **kwargs):
    """Queues @func(*args, **kwargs) for the end of the test; returns a
    Deferred whose exec() runs it earlier and cancel() drops it."""
    item = Deferred(func, args, kwargs)
    with _lock:
        if len(_queue) >= _PRUNE_AT:
            _queue[:] = [d for d in _queue if not _closed_socket(d)]
        _queue.append(item)
    return item


def _closed_socket(item):
    owner = getattr(item.func, "__self__", None)
    return getattr(item.func, "__name__", "") == "close" and \
        callable(getattr(owner, "fileno", None)) and owner.fileno() == -1


def pending():
    """How many cleanups are queued."""
    with _lock:
        return len(_queue)


def run_all():
    """Runs every queued cleanup, the last queued first (as ExitStack
    does), each even if an earlier one failed; then raises the first
    failure, if any, naming how many there were."""
    errors = []
    while True:
        with _lock:
            if not _queue:
                break
            item = _queue[-1]
        try:
            item.exec()
        except Exception as e:  # pylint: disable=broad-except
            errors.append((item, e))
    if errors:
        item, first = errors[0]
        raise RuntimeError(f"{len(errors)} deferred cleanups failed; the first, {item!r}: "
                           f"{first!r}") from first
