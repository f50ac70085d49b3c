# SPDX-License-Identifier: GPL-2.0
"""Adding an output mode to qwatch touches one new file: a mode written in
one .cpp, linked with the reader's objects, is an option, has its line in
--help, can have an option of its own and is held to the rules every mode
is held to."""

import glob
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(REPO, "build")

# A new --lines: one line per shown listener at each interval. It shows
# transitions over time (refused with --once), has a rule of its own and an
# option of its own (--lines-min N).
SAMPLE_MODE = r'''
#include <cstdio>
#include <cstring>

#include "cli.h"
#include "output_mode.h"

namespace {

class LinesOutput : public qwatch::Output {
 public:
  bool tick(const qwatch::WatchView &view) override
  {
    for (const qwatch::ListenerState *listener : view.listeners)
      std::printf("%u syn %u accept %u/%u\n", listener->latest.lport, listener->latest.syn_queue,
                  listener->latest.accept_queue, listener->latest.accept_max);
    std::fflush(stdout);
    return true;
  }
};

std::string refuse_lines(const qwatch::Options &options)
{
  return options.histograms ? "--hist prints histograms; --lines prints lines" : "";
}

std::string check_lines_min(const char *value)
{
  return std::strspn(value, "0123456789") == std::strlen(value) && *value
             ? ""
             : std::string("--lines-min: '") + value + "' is not a count";
}

const qwatch::ModeOption kLinesMin{
    .name = "lines-min",
    .value_name = "N",
    .help = "--lines: only listeners with N or more queued",
    .check = check_lines_min,
};

const qwatch::RegisterOutputMode kLines{{
    .option = "lines",
    .help = "one line per listener and interval: its two queues",
    .rank = 50,
    .live_only = true,
    .needs_latency = false,
    .refuse = refuse_lines,
    .create = [](const qwatch::OutputContext &) -> std::unique_ptr<qwatch::Output> {
      return std::make_unique<LinesOutput>();
    },
    .own_option = &kLinesMin,
}};

}  // namespace
'''


@pytest.fixture(scope="module")
def qwatch_with_lines(tmp_path_factory):
    # The reader's objects as the Makefile links them: one per user/*.cpp.
    sources = glob.glob(os.path.join(REPO, "user", "*.cpp"))
    objects = sorted(os.path.join(BUILD, "user", os.path.basename(source)[:-4] + ".o")
                     for source in sources)
    assert all(map(os.path.exists, objects)) and os.path.exists(
        os.path.join(BUILD, "qwatch.skel.h")), "the reader is not built: run `make user` first"
    tmp = tmp_path_factory.mktemp("lines")
    source = tmp / "output_lines.cpp"
    source.write_text(SAMPLE_MODE)
    binary = tmp / "qwatch"
    subprocess.run(["g++", "-std=c++20", "-Wall", "-Wextra", "-Werror", "-I", os.path.join(REPO, "user"),
                    "-I", os.path.join(REPO, "bpf"), "-isystem", BUILD, "-c", str(source),
                    "-o", str(tmp / "output_lines.o")], check=True)
    libbpf = subprocess.run(["pkg-config", "--libs", "libbpf"], capture_output=True, text=True,
                            check=True).stdout.split()
    subprocess.run(["g++", *objects, str(tmp / "output_lines.o"), *libbpf, "-o", str(binary)],
                   check=True)
    return str(binary)


def run(binary, *args):
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)


def refused(binary, *args):
    """The one line of a command line refused with status 2."""
    proc = run(binary, *args)
    assert proc.returncode == 2 and proc.stdout == "", proc
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    return proc.stderr


def test_new_mode__an_option_with_its_line_in_help(qwatch_with_lines):
    usage = run(qwatch_with_lines, "--help").stdout
    assert "[--json | --events | --quiet | --queues | --lines]" in usage
    assert "      --lines        one line per listener and interval: its two queues\n" in usage
    assert "[--queue-rows N] [--lines-min N]\n" in usage
    assert "      --lines-min N  --lines: only listeners with N or more queued\n" in usage
    # Nothing else of the help changed.
    reader = run(os.path.join(BUILD, "qwatch"), "--help").stdout
    without = usage.replace(" | --lines", "").replace(
        "      --lines        one line per listener and interval: its two queues\n", "").replace(
        " [--lines-min N]", "").replace(
        "      --lines-min N  --lines: only listeners with N or more queued\n", "")
    assert without == reader


def test_new_mode__exclusive_with_every_other_mode(qwatch_with_lines):
    for other in ("--json", "--events", "--quiet", "--queues"):
        assert "--json, --events, --quiet, --queues and --lines are different outputs: pick one" \
            in refused(qwatch_with_lines, "--lines", other)


def test_new_mode__live_only_refused_with_once(qwatch_with_lines):
    assert ("--once prints the listeners as they are now; --events, --lines, --hist and "
            "--metrics need a live run") in refused(qwatch_with_lines, "--lines", "--once")


def test_new_mode__its_own_rule(qwatch_with_lines):
    assert "--hist prints histograms; --lines prints lines" in \
        refused(qwatch_with_lines, "--lines", "--hist")


def test_new_mode__its_own_option_checked_and_refused_without_it(qwatch_with_lines):
    assert "--lines-min: 'x' is not a count" in \
        refused(qwatch_with_lines, "--lines", "--lines-min", "x")
    assert "--lines-min is an option of --lines: it needs --lines" in \
        refused(qwatch_with_lines, "--lines-min", "3")
    assert "--lines-min is an option of --lines: it needs --lines" in \
        refused(qwatch_with_lines, "--queues", "--lines-min", "3")
    # And the existing mode's own option is still its own.
    assert "--queue-rows is an option of --queues: it needs --queues" in \
        refused(qwatch_with_lines, "--lines", "--queue-rows", "3")


def test_existing_modes__rules_unchanged_by_the_new_one(qwatch_with_lines):
    assert "--json, --events, --quiet, --queues and --lines are different outputs" in \
        refused(qwatch_with_lines, "--json", "--events")
    assert "--quiet prints nothing: it needs --metrics ADDR:PORT to serve" in \
        refused(qwatch_with_lines, "--quiet")
    # --queues takes --json as its format with --once only.
    assert "--queues --json prints one dump: add --once" in \
        refused(qwatch_with_lines, "--queues", "--json")
    for other in ("--events", "--quiet"):
        assert "are different outputs: pick one" in \
            refused(qwatch_with_lines, "--queues", other, "--json", "--once")
