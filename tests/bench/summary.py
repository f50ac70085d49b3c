#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""make bench's summary line: written by bench.py as its last line (and
appended to build/bench/summaries.txt), read back here to say how
repeatable it is across runs.

The line's form is fixed so that runs can be compared:

  bench: hsp/tcp=X default(fentry)=A default(kprobe)=B events(fentry)=C
  events(kprobe)=D best_peer=E peer_name=NAME lost=N reader_cpu=P% p99_ms=Q

(one line). Ratios are to unobserved TCP, medians of per-round ratios;
"nan" stands for a figure whose configuration was not run.

Run as a script (make bench-repeat does), it reads the last N summaries of
build/bench/summaries.txt and prints each figure's values, median and
spread (max - min) across those runs.
"""

import math
import os
import re
import statistics
import sys

# (key in the line, key in bench.py's summary dict, format)
FIELDS = [
    ("hsp/tcp", "hsp/tcp", "{:.3f}"),
    ("default(fentry)", "default(fentry)", "{:.3f}"),
    ("default(kprobe)", "default(kprobe)", "{:.3f}"),
    ("events(fentry)", "events(fentry)", "{:.3f}"),
    ("events(kprobe)", "events(kprobe)", "{:.3f}"),
    ("best_peer", "best_peer", "{:.3f}"),
    ("peer_name", "peer_name", "{}"),
    ("lost", "lost", "{:d}"),
    ("reader_cpu", "reader_cpu_percent", "{:.1f}%"),
    ("p99_ms", "p99_ms", "{:.1f}"),
]
NUMBER = r"(nan|-?\d+(?:\.\d+)?)"
LINE = re.compile(
    r"^bench: " + " ".join(
        re.escape(key) + "=" + (r"(\S+)" if key == "peer_name" else
                                NUMBER + ("%" if key == "reader_cpu" else ""))
        for key, _, _ in FIELDS) + "$")
SUMMARIES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "build", "bench", "summaries.txt")


def _format(value, fmt):
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return fmt.format(value)


def format_line(summary):
    """The summary line of @summary (bench.py's dict)."""
    return "bench: " + " ".join(f"{key}={_format(summary[name], fmt)}"
                                for key, name, fmt in FIELDS)


def parse_line(line):
    """The figures of one summary line, by their key in the line; raises
    ValueError when @line is not one."""
    match = LINE.match(line.strip())
    if not match:
        raise ValueError(f"not a bench summary line: {line.strip()!r}")
    figures = {}
    for (key, _, _), text in zip(FIELDS, match.groups()):
        if key == "peer_name":
            figures[key] = text
        elif key == "lost":
            figures[key] = int(text)
        else:
            figures[key] = float(text)
    return figures


def repeatability(lines):
    """Per numeric figure of the summary @lines: (values, median, max - min)."""
    runs = [parse_line(line) for line in lines]
    report = {}
    for key, _, _ in FIELDS:
        if key == "peer_name":
            continue
        values = [run[key] for run in runs]
        known = [v for v in values if not math.isnan(v)]
        if known:
            report[key] = (values, statistics.median(known), max(known) - min(known))
        else:
            report[key] = (values, math.nan, math.nan)
    return report, [run["peer_name"] for run in runs]


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with open(SUMMARIES) as f:
        lines = [line.split("\t", 1)[-1] for line in f if "bench: " in line]
    if len(lines) < count:
        sys.exit(f"summary: {SUMMARIES} holds {len(lines)} summaries, {count} wanted")
    lines = lines[-count:]
    report, peers = repeatability(lines)
    print(f"repeatability of the last {count} make bench summaries:")
    for key, (values, median, spread) in report.items():
        shown = ", ".join("nan" if math.isnan(v) else f"{v:g}" for v in values)
        print(f"  {key:16} {shown:40} median {median:g} spread {spread:g}")
    print(f"  {'peer_name':16} {', '.join(peers)}")


if __name__ == "__main__":
    main()
