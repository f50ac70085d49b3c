# SPDX-License-Identifier: GPL-2.0
"""make bench's arithmetic and its summary line, from made-up rounds (the
measurements themselves need the VM): the line keeps its documented form,
parses back, and the ratios are medians of per-round ratios."""

import math
import os
import sys

import pytest

from lib import REPO  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "tests", "bench"))
import bench  # noqa: E402
import summary  # noqa: E402


def rounds(*rates, **extra):
    return [{"per_second": rate, "buckets": [1, 2], "bucket_ms": 100, **extra} for rate in rates]


def made_up_runs():
    watched = {"lost": 0, "delay_p50_ms": 1.0, "delay_p99_ms": 4.0, "watcher_cpu_percent": 2.0}
    return {
        "tcp": rounds(1000, 2000, 1000),
        "hsp": rounds(1500, 3000, 1600),
        "default(fentry)": rounds(980, 1900, 990, **watched),
        "default(kprobe)": rounds(950, 1800, 960, **watched),
        "events(fentry)": rounds(900, 1700, 910, **watched),
        "events(kprobe)": rounds(800, 1600, 820, **{**watched, "lost": 3}),
        "tcpsynbl.bt": rounds(970, 1960, 975, peer_seen=1),
        "tcpaccept.bt": rounds(900, 1800, 900, peer_seen=100),
        "tcpaccept-bpfcc": rounds(700, 1400, 700, peer_seen=100),
    }


def test_summary__medians_of_per_round_ratios_and_the_best_peer():
    result, ratios = bench.summarise(made_up_runs())
    assert ratios["default(fentry)"] == pytest.approx([0.98, 0.95, 0.99])
    assert result["default(fentry)"] == pytest.approx(0.98)
    assert result["hsp/tcp"] == pytest.approx(1.5)
    assert (result["peer_name"], result["best_peer"]) == ("tcpsynbl.bt", pytest.approx(0.975))
    assert result["lost"] == 9
    assert bench.goals(result) == [
        "default(fentry) >= 0.97: met", "default(kprobe) >= 0.95: met",
        "default(fentry) >= best_peer: met", "default(kprobe) >= best_peer: NOT met",
        "events(fentry) >= 0.90: met"]


def test_summary_line__has_the_documented_form_and_parses_back():
    result, _ = bench.summarise(made_up_runs())
    line = summary.format_line(result)
    assert line == ("bench: hsp/tcp=1.500 default(fentry)=0.980 default(kprobe)=0.950 "
                    "events(fentry)=0.900 events(kprobe)=0.800 best_peer=0.975 "
                    "peer_name=tcpsynbl.bt lost=9 reader_cpu=2.0% p99_ms=4.0")
    assert summary.parse_line(line)["best_peer"] == 0.975


def test_summary_line__without_peers_or_hsp__says_nan():
    runs = {k: v for k, v in made_up_runs().items() if k in ("tcp", "default(fentry)")}
    result, _ = bench.summarise(runs)
    figures = summary.parse_line(summary.format_line(result))
    assert figures["peer_name"] == "none"
    assert math.isnan(figures["best_peer"]) and math.isnan(figures["hsp/tcp"])
    assert "default(fentry) >= best_peer: not measured" in bench.goals(result)


def test_repeatability__spread_across_runs():
    lines = []
    for best in (0.90, 0.92, 0.95):
        result, _ = bench.summarise(made_up_runs())
        result["best_peer"] = best
        lines.append(summary.format_line(result))
    report, peers = summary.repeatability(lines)
    values, median, spread = report["best_peer"]
    assert (values, median, spread) == ([0.9, 0.92, 0.95], 0.92, pytest.approx(0.05))
    assert peers == ["tcpsynbl.bt"] * 3


def test_tables__markdown_and_rst_have_a_row_per_configuration():
    runs = made_up_runs()
    _, ratios = bench.summarise(runs)
    rows = bench.config_rows(runs, ratios)
    assert [r[0] for r in rows] == list(runs)
    assert len(bench.markdown(bench.CONFIG_HEADER, rows).splitlines()) == 2 + len(runs)
    table = bench.rst(bench.CONFIG_HEADER, rows).splitlines()
    assert table[0] == table[2] == table[-1] and len(table) == 4 + len(runs)
