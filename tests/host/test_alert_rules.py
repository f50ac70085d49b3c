# SPDX-License-Identifier: GPL-2.0
"""packaging/qwatch.rules.yml: Prometheus accepts the alert rules, their unit
tests (packaging/qwatch.rules.test.yml) pass, and fail against copies of the
rules broken on purpose (a threshold moved, a for: removed, an expression
inverted or emptied), so that they would catch those mistakes. Every metric
the rules and their tests name is one qwatch exports, as read from
user/metrics.cpp and user/output.h, and every label their annotations use is
one qwatch (or Prometheus' scrape) puts on the series."""

import os
import re
import shutil
import subprocess

import pytest

from lib import REPO  # noqa: E402
RULES = os.path.join(REPO, "packaging", "qwatch.rules.yml")
RULES_TEST = os.path.join(REPO, "packaging", "qwatch.rules.test.yml")
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

with open(RULES) as f:
    RULES_TEXT = f.read()
ALERTS = re.findall(r"^\s+- alert: (\w+)$", RULES_TEXT, re.M)


def read(*path):
    with open(os.path.join(REPO, *path)) as f:
        return f.read()


def promtool(*args):
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


def rule_block(text, alert):
    """Where @alert's rule is: from its `- alert:` line to the next rule's."""
    line = text.index(f"- alert: {alert}\n")
    start = text.rindex("\n", 0, line) + 1
    following = text.find("- alert: ", line + 1)
    end = len(text) if following < 0 else text.rindex("\n", 0, following) + 1
    return start, end


def mutate_rule(alert, pattern, replacement):
    """The rules with @pattern replaced once, in @alert's rule only."""
    start, end = rule_block(RULES_TEXT, alert)
    block, count = re.subn(pattern, replacement, RULES_TEXT[start:end], flags=re.M)
    assert count == 1, f"{pattern!r} matches {count} times in {alert}"
    return RULES_TEXT[:start] + block + RULES_TEXT[end:]


def run_unit_tests(tmp_path, rules_text):
    """promtool test rules: the unit tests, run against @rules_text."""
    (tmp_path / "qwatch.rules.yml").write_text(rules_text)
    shutil.copy(RULES_TEST, tmp_path / "qwatch.rules.test.yml")
    check = promtool("check", "rules", str(tmp_path / "qwatch.rules.yml"))
    assert check.returncode == 0, "the mutant must be valid rules: " + check.stdout + check.stderr
    return promtool("test", "rules", str(tmp_path / "qwatch.rules.test.yml"))


def assert_caught(proc, alert):
    """promtool test rules failed, and on an expectation about @alert."""
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, "the unit tests did not notice:\n" + output
    assert "FAILED:" in output and f"alertname: {alert}," in output, output


def test_rules__promtool_check_passes():
    proc = promtool("check", "rules", RULES)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in proc.stdout


def test_rules__the_alerts_operators_page_on():
    """Alert names are an interface: silences and routes name them."""
    assert ALERTS == ["QwatchAcceptQueueNearlyFull", "QwatchListenOverflows",
                      "QwatchSynQueueFullDrops", "QwatchSyncookiesSent", "QwatchLostEvents",
                      "QwatchCountsLost"]


def test_rules__every_alert_has_for_severity_summary_and_description():
    for alert in ALERTS:
        start, end = rule_block(RULES_TEXT, alert)
        block = RULES_TEXT[start:end]
        assert re.search(r"^\s+for: \d+m$", block, re.M), alert
        assert re.search(r"^\s+severity: (critical|warning)$", block, re.M), alert
        assert re.search(r"^\s+summary: ", block, re.M), alert
        assert re.search(r"^\s+description: ", block, re.M), alert


def test_rules__unit_tests_pass():
    proc = promtool("test", "rules", RULES_TEST)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_rules__unit_tests_pass_on_an_unchanged_copy(tmp_path):
    """The control for the mutants below: only their change can fail them."""
    proc = run_unit_tests(tmp_path, RULES_TEXT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("threshold", ["0.89", "0.91"])
def test_mutant__accept_queue_threshold_moved(tmp_path, threshold):
    rules = mutate_rule("QwatchAcceptQueueNearlyFull", r" > 0\.9$", f" > {threshold}")
    assert_caught(run_unit_tests(tmp_path, rules), "QwatchAcceptQueueNearlyFull")


def test_mutant__accept_queue_of_the_backlog_not_backlog_plus_one(tmp_path):
    rules = mutate_rule("QwatchAcceptQueueNearlyFull", r"\(qwatch_accept_queue_max \+ 1\)",
                        "qwatch_accept_queue_max")
    assert_caught(run_unit_tests(tmp_path, rules), "QwatchAcceptQueueNearlyFull")


@pytest.mark.parametrize("alert", ALERTS)
def test_mutant__for_removed(tmp_path, alert):
    rules = mutate_rule(alert, r"^\s+for: .*\n", "")
    assert_caught(run_unit_tests(tmp_path, rules), alert)


@pytest.mark.parametrize("alert", ALERTS)
def test_mutant__expression_inverted(tmp_path, alert):
    rules = mutate_rule(alert, r"^(\s+expr: .*) > ", r"\1 <= ")
    assert_caught(run_unit_tests(tmp_path, rules), alert)


@pytest.mark.parametrize("alert", ALERTS)
def test_mutant__expression_never_true(tmp_path, alert):
    rules = mutate_rule(alert, r"^(\s+expr: ).*$", r"\1vector(1) < 0")
    assert_caught(run_unit_tests(tmp_path, rules), alert)


def exported_metrics():
    """Every metric name qwatch --metrics serves, from its sources."""
    metrics_cpp, output_h = read("user", "metrics.cpp"), read("user", "output.h")
    # Counters of kCounterFields are served as qwatch_NAME_total.
    assert 'std::string("qwatch_") + counter.name' in metrics_cpp
    assert 'name + "_total"' in metrics_cpp
    counters = re.findall(r'\{"(\w+)",\s*&qwatch_counters::', output_h)
    names = {f"qwatch_{counter}_total" for counter in counters}
    names |= set(re.findall(r'Gauge\{"(qwatch_\w+)"', metrics_cpp))
    for name, kind in re.findall(r'out\.family\("(qwatch_\w+)", "(\w+)"', metrics_cpp):
        if kind == "counter":
            names.add(name + "_total")
        elif kind == "histogram":
            names |= {name + "_bucket", name + "_count", name + "_sum"}
        else:
            names.add(name)
    assert len(counters) >= 12 and len(names) >= 25, sorted(names)
    return names


def exported_labels():
    """The labels of a listener's series (labels_of() in user/metrics.cpp)."""
    metrics_cpp = read("user", "metrics.cpp")
    body = metrics_cpp[metrics_cpp.index("std::string labels_of("):]
    body = body[:body.index("\n}\n")]
    return set(re.findall(r"[{,](\w+)=", body))


def test_rules__use_only_metrics_qwatch_exports():
    code = "\n".join(line for line in RULES_TEXT.splitlines() if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\bqwatch_\w+", code))
    assert {"qwatch_accept_queue_length", "qwatch_listen_overflows_total"} <= used
    assert sorted(used - exported_metrics()) == []


def test_rules_test__feeds_only_metrics_qwatch_exports():
    series = set(re.findall(r"series: '(\w+)\{", read("packaging", "qwatch.rules.test.yml")))
    assert len(series) == 7
    assert sorted(series - exported_metrics()) == []


def test_rules__annotations_use_only_labels_the_series_have():
    labels = exported_labels()
    assert labels == {"netns", "proto", "laddr", "lport", "cookie", "pid", "comm"}
    used = set(re.findall(r"\$labels\.(\w+)", RULES_TEXT))
    # instance and job: what Prometheus adds to every scraped series.
    assert {"proto", "laddr", "lport", "netns", "comm", "instance"} <= used
    assert sorted(used - labels - {"instance", "job"}) == []
