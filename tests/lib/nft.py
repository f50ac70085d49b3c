# SPDX-License-Identifier: GPL-2.0
"""nftables tables in a namespace, always deleted again.

    with nft.table(ns, "chain output { type filter hook output priority 0; "
                       "tcp dport 80 drop; }") as t:
        ...

adds an inet table holding @body and deletes it when the block is left,
however it is left; without `with`, the table goes at the end of the test
(lib.defer), or at .delete(). A table of a namespace already deleted went
with it.
"""

import json
import os
import secrets

from .cmd import run
from .defer import defer


class Table:
    """An inet table in @ns made of @body (chains and their rules)."""

    def __init__(self, ns, body, name=None):
        self.ns = ns
        self.name = name or f"qw{secrets.token_hex(4)}"
        # nft 1.0.6 (Debian 12) wants a newline, not a blank, after a block.
        run(["nft", "-f", "-"], ns=ns, input=f"table inet {self.name} {{\n{body}\n}}\n")
        self._deferred = defer(self._delete)

    def _delete(self):
        if self.ns is None or os.path.exists(f"/run/netns/{self.ns}"):
            run(["nft", "delete", "table", "inet", self.name], ns=self.ns)

    def delete(self):
        """Deletes the table now (once)."""
        self._deferred.exec()

    def insert_rule(self, chain, rule):
        """Inserts @rule (a string) at the head of @chain."""
        run(["nft", "insert", "rule", "inet", self.name, chain, *rule.split()], ns=self.ns)

    def counter(self):
        """Packets counted by the table's one counter."""
        out = json.loads(run(["nft", "-j", "list", "table", "inet", self.name],
                             ns=self.ns).stdout)
        [counter] = [expr["counter"] for item in out["nftables"] if "rule" in item
                     for expr in item["rule"]["expr"] if "counter" in expr]
        return counter["packets"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.delete()


def table(ns, body, name=None):
    """A Table in @ns holding @body: a context manager, deleted on exit."""
    return Table(ns, body, name)


def output_rule(ns, rule, name=None):
    """A table whose output filter chain has @rule alone."""
    return Table(ns, f"chain output {{ type filter hook output priority 0; {rule}; }}", name)


def input_rule(ns, rule, name=None):
    """A table whose input filter chain has @rule alone."""
    return Table(ns, f"chain input {{ type filter hook input priority 0; {rule}; }}", name)


def freeze_input(ns):
    """Drops every packet @ns receives from now on (until the table goes),
    so that its counters stop moving."""
    return Table(ns, "chain input { type filter hook input priority 0; policy drop; }",
                 "qwfreeze")
