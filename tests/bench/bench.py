#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""make bench, inside the test VM: what watching costs, qwatch next to the
peer tools that watch one of its quantities, measured side by side in
interleaved rounds of the same load.

Each round runs build/loadgen (K clients doing connect -> accept -> close
between two namespaces for a fixed time) once in every configuration:

  tcp, hsp              unobserved TCP (the reference) and HSP
  default(A)            qwatch's live table (stdout to /dev/null), A = fentry
                        or kprobe: the default mode, no event stream
  events(A)             qwatch --json (stdout to /dev/null): the event stream
  metrics(fentry)       qwatch --quiet --metrics: the service's default
  tcpsynbl.bt, tcpaccept.bt   bpftrace's tools (Debian bpftrace)
  tcpaccept-bpfcc       bcc's tool (Debian bpfcc-tools)
  floor(A)              bpftrace with programs that only return, on entry
                        and return of tcp_v4_conn_request and tcp_check_req
                        (A = kprobe: kprobes and kretprobes; fentry: kfunc
                        and kretfunc): what the probes of any per-listener
                        window cost before its programs do anything; not a
                        peer

Every watcher is started, and attached, before the load and stopped after
it: qwatch says so on --ready-fd, bpftrace on stderr once every probe is
attached (__BPFTRACE_NOTIFY_PROBES_ATTACHED), bcc's tool with its header
line (printed once it has compiled and attached). Each round starts at a
different configuration (the order rotates), so that none always follows
another. Ratios are taken within a round and their medians reported, so a
machine that slows down between rounds moves both sides of a ratio; the
min and max of the per-round ratios are the spread.

After the rounds, each watcher runs once more with kernel.bpf_stats_enabled
(not during the rounds: the statistics cost two clock reads per program
run) and `bpftool prog show` gives each of its programs' run count and
time: the per-program table.

Results go to build/bench/ (results.json, results.md, results.rst for
Documentation/bench-results.inc, handshakes.svg when gnuplot is there); the
summary is appended to build/bench/summaries.txt and is the last line
printed (tests/bench/summary.py has its form).
"""

import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, HERE)

from lib import hsp  # noqa: E402
from lib.cmd import Background, run, scaled, wait_until  # noqa: E402
from lib.netns import NetNSPair  # noqa: E402
import summary as summary_line  # noqa: E402

LOADGEN = os.path.join(REPO, "build", "loadgen")
QWATCH = os.path.join(REPO, "build", "qwatch")
OUT = os.path.join(REPO, "build", "bench")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "9"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
# Not counted at the start of each load: whatever attaching just changed
# (kernel text patched for the probes, which TCG must translate again;
# caches) settles first. Unobserved loads are cut the same way.
WARMUP = float(os.environ.get("BENCH_WARMUP", "1"))
PROFILE = os.environ.get("BENCH_PROFILE", "1") != "0"
# bcc compiles its C with clang at start-up: minutes under emulation.
ATTACH_TIMEOUT = float(os.environ.get("BENCH_ATTACH_TIMEOUT", "900"))
REFERENCE = "tcp"
PEER_NAMES = ("tcpsynbl.bt", "tcpaccept.bt", "tcpaccept-bpfcc")
# The handlers qwatch's windows open around, for the floor(A) configurations.
FLOOR_FUNCTIONS = ("tcp_v4_conn_request", "tcp_check_req")


def first_existing(*paths):
    for path in paths:
        if os.path.exists(path):
            return path
    return None


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Qwatch:
    """qwatch with @args through @attach, --stats on stderr at exit."""

    kind = "qwatch"

    def __init__(self, attach, *args):
        self.attach = attach
        self.args = args

    def start(self):
        self.process = Background([QWATCH, "--attach", self.attach, "--stats",
                                   "--ready-fd", "{ready_fd}", *self.args],
                                  stdout=subprocess.DEVNULL, ready_timeout=ATTACH_TIMEOUT)
        return self.process.proc.pid

    def stop(self):
        """Its --stats: events, lost, delays, the attach mode it used."""
        proc = self.process.proc
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=scaled(60))
        if proc.returncode != 0:
            raise RuntimeError(f"qwatch {' '.join(self.args)} exited {proc.returncode}: {err}")
        stats = json.loads(err.strip().splitlines()[-1])
        # --attach fentry never falls back; should that change, the figure
        # would be the wrong mode's.
        assert stats["attach"] == self.attach, stats
        return {"lost": stats["lost"], "events": stats["events"],
                "delay_p50_ms": stats["delay_p50_ns"] / 1e6,
                "delay_p99_ms": stats["delay_p99_ns"] / 1e6}


class Peer:
    """A peer tool: @argv, attached once one of @markers appears in its
    output.

    Its output goes to a file on the guest's tmpfs, as it would to a
    terminal, and is read only to see the marker and, at the end, for
    @seen(output): how much of the load it reported (lines about the load's
    connections, or a histogram at exit). A peer that saw nothing would
    cost nothing, and the comparison would be void.
    """

    kind = "peer"

    def __init__(self, name, argv, env, markers, seen):
        self.name, self.argv, self.env, self.markers, self.seen = name, argv, env, markers, seen

    def _output(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def start(self):
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{self.name}-", suffix=".log",
                                               dir="/tmp", delete=False)
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env={**os.environ, **self.env})
        try:
            wait_until(lambda: self.proc.poll() is not None or
                       any(m in self._output() for m in self.markers),
                       timeout=ATTACH_TIMEOUT, interval=0.2, what=f"{self.name} to attach",
                       state=lambda: self._output()[-500:])
        except TimeoutError:
            self._discard()
            raise
        if self.proc.poll() is not None:
            output = self._output()
            self._discard()
            raise RuntimeError(f"{self.name} exited {self.proc.returncode} before attaching: "
                               f"{output[-2000:]}")
        return self.proc.pid

    def _discard(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)

    def stop(self):
        """What it reported of the load (see the class)."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(scaled(60))
        except subprocess.TimeoutExpired:
            pass  # _discard() kills it
        exited = self.proc.poll() is not None
        output = self._output()
        self._discard()
        seen = self.seen(output)
        result = {"peer_seen": seen}
        if not seen:
            # Why, in results.json: killed before it printed, or nothing seen.
            result["peer_output_tail"] = output[-400:]
            result["peer_exited_on_sigint"] = exited
        return result


def lines_naming(address):
    """@seen for a tool printing a line per connection: how many name @address."""
    return lambda output: sum(address in line for line in output.splitlines())


def histogram_printed(output):
    """@seen for tcpsynbl.bt: 1 if it printed a @backlog[LIMIT] histogram at
    exit (its END line names @backlog too, with no number), else 0."""
    return int(re.search(r"^@backlog\[\d+\]:", output, re.M) is not None)


def peers():
    """The peer tools, by name, where Debian installs them."""
    bpftrace = shutil.which("bpftrace")
    tools = {}
    env = {"__BPFTRACE_NOTIFY_PROBES_ATTACHED": "1"}
    # BEGIN prints "Tracing ..." only after every probe is attached: the
    # second sign, should a bpftrace not know the variable.
    markers = ["__BPFTRACE_NOTIFY_PROBES_ATTACHED", "Tracing "]
    for name, seen in (("tcpsynbl.bt", histogram_printed),
                       ("tcpaccept.bt", lines_naming(NetNSPair.client_addr))):
        script = first_existing(f"/usr/sbin/{name}", f"/usr/share/bpftrace/tools/{name}")
        tools[name] = Peer(name, [bpftrace, script] if bpftrace and script else None, env,
                           markers, seen)
    # Not peers: what any per-listener counting window costs before its
    # programs do anything. A window opens when a SYN's and a final ACK's
    # handler is called and closes when it returns (the kernel counts the
    # drops in between), so at least an entry and a return probe on each of
    # the two; here with programs that only return.
    for attach, entry, exit_ in (("kprobe", "kprobe", "kretprobe"),
                                 ("fentry", "kfunc", "kretfunc")):
        # BEGIN runs once every probe is attached. Its "saw" is only that
        # (1): the programs count nothing. That they ran, once per
        # handshake each, is in the per-program table.
        script = 'BEGIN { printf("Tracing floor\\n"); } ' + " ".join(
            f"{probe}:{function} {{}}" for function in FLOOR_FUNCTIONS for probe in (entry, exit_))
        tools[f"floor({attach})"] = Peer(f"floor({attach})",
                                         [bpftrace, "-e", script] if bpftrace else None, env,
                                         markers, lambda output: int("Tracing floor" in output))
    bcc = first_existing("/usr/sbin/tcpaccept-bpfcc")
    # Python buffers its output to a file: unbuffered, the header arrives
    # when printed (a terminal would have it line by line too). It is
    # printed once the program is compiled and its kretprobe attached.
    tools["tcpaccept-bpfcc"] = Peer("tcpaccept-bpfcc", [bcc] if bcc else None,
                                    {"PYTHONUNBUFFERED": "1"}, ["PID "],
                                    lines_naming(NetNSPair.client_addr))
    return tools


def all_configs():
    """Every configuration, by name: (protocol, watcher or None)."""
    configs = {"tcp": ("tcp", None), "hsp": ("hsp", None)}
    for attach in ("fentry", "kprobe"):
        configs[f"default({attach})"] = ("tcp", Qwatch(attach))
        configs[f"events({attach})"] = ("tcp", Qwatch(attach, "--json"))
    configs["metrics(fentry)"] = ("tcp", Qwatch("fentry", "--quiet", "--metrics",
                                                "127.0.0.1:19464"))
    for name, peer in peers().items():
        configs[name] = ("tcp", peer)
    return configs


def chosen_configs():
    """BENCH_CONFIGS (comma-separated names) or all; tcp always."""
    configs = all_configs()
    wanted = os.environ.get("BENCH_CONFIGS")
    if wanted:
        names = [REFERENCE] + [n for n in wanted.split(",") if n and n != REFERENCE]
        unknown = [n for n in names if n not in configs]
        if unknown:
            sys.exit(f"bench: unknown configurations {unknown}; known: {list(configs)}")
        configs = {n: configs[n] for n in names}
    missing = [n for n, (_, w) in configs.items() if isinstance(w, Peer) and not w.argv]
    if missing:
        sys.exit(f"bench: peer tools not installed: {missing} (make bench installs Debian's "
                 "bpftrace and bpfcc-tools; BENCH_CONFIGS= leaves them out)")
    return configs


def loadgen(pair, proto, rate=None):
    """One load of WARMUP + SECONDS; its per_second is the SECONDS' after
    the warm-up (whole buckets only)."""
    argv = [LOADGEN, "--proto", proto, "--server-netns", pair.server.name,
            "--client-netns", pair.client.name, "--clients", str(CLIENTS),
            "--seconds", str(WARMUP + SECONDS)]
    if rate:
        argv += ["--rate", str(rate)]
    result = json.loads(run(argv, timeout=WARMUP + SECONDS + 120).stdout)
    bucket_s = result["bucket_ms"] / 1000
    first, end = round(WARMUP / bucket_s), round((WARMUP + SECONDS) / bucket_s)
    counted = result["buckets"][first:end]
    result["per_second"] = sum(counted) / (len(counted) * bucket_s)
    return result


def measure(pair, proto, watcher):
    """One load under @watcher (None: unobserved): loadgen's result, and the
    watcher's CPU share of the load's time and what it reports at stop."""
    if not watcher:
        return loadgen(pair, proto)
    pid = watcher.start()
    try:
        cpu_before = cpu_seconds(pid)
        started = time.monotonic()
        result = loadgen(pair, proto)
        elapsed = time.monotonic() - started
        result["watcher_cpu_percent"] = (cpu_seconds(pid) - cpu_before) / elapsed * 100
    finally:
        stats = watcher.stop()
    result.update(stats)
    return result


@contextmanager
def bpf_stats():
    """kernel.bpf_stats_enabled on meanwhile (run_time_ns and run_cnt)."""
    path = "/proc/sys/kernel/bpf_stats_enabled"
    with open(path) as f:
        before = f.read().strip()
    with open(path, "w") as f:
        f.write("1")
    try:
        yield
    finally:
        with open(path, "w") as f:
            f.write(before)


def bpf_programs():
    """Every loaded BPF program, by id, as bpftool shows it."""
    out = run(["bpftool", "prog", "show", "--json"]).stdout
    return {p["id"]: p for p in json.loads(out)}


def profile(pair, proto, watcher):
    """@watcher's programs under one load with kernel.bpf_stats_enabled:
    per program, runs and run time during the load, per handshake too."""
    with bpf_stats():
        before_start = set(bpf_programs())
        watcher.start()
        try:
            ours = lambda: {i: p for i, p in bpf_programs().items() if i not in before_start}
            before = ours()
            result = loadgen(pair, proto)
            after = ours()
        finally:
            watcher.stop()
    handshakes = max(1, result["handshakes"])
    rows = []
    for prog_id, prog in sorted(after.items()):
        start = before.get(prog_id, {})
        runs = prog.get("run_cnt", 0) - start.get("run_cnt", 0)
        ns = prog.get("run_time_ns", 0) - start.get("run_time_ns", 0)
        rows.append({"id": prog_id, "name": prog.get("name", "?"), "type": prog.get("type", "?"),
                     "runs": runs, "ns": ns, "ns_per_run": ns / runs if runs else 0.0,
                     "runs_per_handshake": runs / handshakes, "ns_per_handshake": ns / handshakes})
    return {"handshakes": result["handshakes"], "per_second": result["per_second"],
            "programs": rows, "ns_per_handshake": sum(r["ns_per_handshake"] for r in rows)}


def median_or_nan(values):
    values = list(values)
    return statistics.median(values) if values else math.nan


def summarise(runs, peer_names=PEER_NAMES):
    """The summary (see summary.py) and, per configuration, the per-round
    ratios to unobserved TCP, from @runs: {config: [result per round]}."""
    rates = {config: [r["per_second"] for r in results] for config, results in runs.items()}
    ratios = {config: [x / y for x, y in zip(rates[config], rates[REFERENCE])]
              for config in runs}
    ratio = lambda config: median_or_nan(ratios.get(config, []))
    peer_ratios = {name: ratio(name) for name in peer_names if name in runs}
    best = max(peer_ratios, key=peer_ratios.get) if peer_ratios else None
    qwatch_runs = [r for results in runs.values() for r in results if "lost" in r]
    summary = {
        "hsp/tcp": ratio("hsp"),
        "default(fentry)": ratio("default(fentry)"),
        "default(kprobe)": ratio("default(kprobe)"),
        "events(fentry)": ratio("events(fentry)"),
        "events(kprobe)": ratio("events(kprobe)"),
        "best_peer": peer_ratios[best] if best else math.nan,
        "peer_name": best or "none",
        "lost": sum(r["lost"] for r in qwatch_runs),
        "reader_cpu_percent": median_or_nan(
            r["watcher_cpu_percent"] for c in ("default(fentry)", "default(kprobe)")
            for r in runs.get(c, [])),
        "p99_ms": median_or_nan(
            r["delay_p99_ms"] for c in ("events(fentry)", "events(kprobe)")
            for r in runs.get(c, [])),
    }
    return summary, ratios


def goals(summary):
    """Issue 15's targets, each with its verdict."""
    peer = summary["best_peer"]
    checks = [("default(fentry)", ">= 0.97", 0.97), ("default(kprobe)", ">= 0.95", 0.95),
              ("default(fentry)", ">= best_peer", peer), ("default(kprobe)", ">= best_peer", peer),
              ("events(fentry)", ">= 0.90", 0.90)]
    verdicts = []
    for figure, target, bound in checks:
        value = summary[figure]
        if math.isnan(value) or math.isnan(bound):
            verdict = "not measured"
        else:
            verdict = "met" if value >= bound else "NOT met"
        verdicts.append(f"{figure} {target}: {verdict}")
    return verdicts


def config_rows(runs, ratios):
    """One row per configuration: rates, ratios and what its watcher said."""
    rows = []
    for config, results in runs.items():
        rate = [r["per_second"] for r in results]
        row = [config, f"{statistics.median(rate):.0f}", f"{min(rate):.0f}", f"{max(rate):.0f}",
               f"{statistics.median(ratios[config]):.3f}", f"{min(ratios[config]):.3f}",
               f"{max(ratios[config]):.3f}"]
        if "watcher_cpu_percent" in results[0]:
            row.append(f"{statistics.median(r['watcher_cpu_percent'] for r in results):.1f}")
        else:
            row.append("-")
        if "lost" in results[0]:
            row += [str(sum(r["lost"] for r in results)),
                    f"{statistics.median(r['delay_p50_ms'] for r in results):.2f}",
                    f"{statistics.median(r['delay_p99_ms'] for r in results):.2f}"]
        elif "peer_seen" in results[0]:
            row += [f"(saw {min(r['peer_seen'] for r in results)})", "-", "-"]
        else:
            row += ["-", "-", "-"]
        rows.append(row)
    return rows


CONFIG_HEADER = ["configuration", "handshakes/s (median)", "min", "max", "ratio (median)",
                 "min", "max", "watcher CPU %", "lost", "p50 ms", "p99 ms"]
PROGRAM_HEADER = ["configuration", "program", "type", "runs/handshake", "ns/run",
                  "ns/handshake"]


def program_rows(profiles):
    rows = []
    for config, prof in profiles.items():
        for p in prof["programs"]:
            if p["runs"]:
                rows.append([config, p["name"], p["type"], f"{p['runs_per_handshake']:.2f}",
                             f"{p['ns_per_run']:.0f}", f"{p['ns_per_handshake']:.0f}"])
        rows.append([config, "(all)", "", "", "", f"{prof['ns_per_handshake']:.0f}"])
    return rows


def markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def rst(header, rows):
    """A reStructuredText simple table."""
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    rule = " ".join("=" * w for w in widths)
    line = lambda cells: " ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([rule, line(header), rule] + [line(r) for r in rows] + [rule])


def write_plot(runs):
    """handshakes/s over time, the first round of each configuration."""
    data = os.path.join(OUT, "handshakes.dat")
    with open(data, "w") as f:
        for config, results in runs.items():
            first = results[0]
            f.write(f'"{config}"\n')
            for i, count in enumerate(first["buckets"][:-1]):
                f.write(f"{i * first['bucket_ms'] / 1000:.2f} {count * 1000 / first['bucket_ms']}\n")
            f.write("\n\n")
    if not shutil.which("gnuplot"):
        return None
    svg = os.path.join(OUT, "handshakes.svg")
    script = (f"set terminal svg size 900,500; set output '{svg}';"
              "set xlabel 'seconds'; set ylabel 'handshakes/s'; set key outside;"
              f"set title 'connect -> accept -> close, {len(runs)} configurations (first round)';"
              f"plot for [i=0:{len(runs) - 1}] '{data}' index i with lines "
              "title columnheader(1)")
    subprocess.run(["gnuplot", "-e", script], check=True)
    return svg


def machine():
    """What the figures were measured on."""
    with open("/proc/cmdline") as f:
        cmdline = f.read().strip()
    return {"kernel": os.uname().release, "cpus": os.cpu_count(),
            "icount": os.environ.get("BENCH_ICOUNT", ""), "cmdline": cmdline}


def main():
    os.makedirs(OUT, exist_ok=True)
    configs = chosen_configs()
    if "hsp" in configs:
        hsp.load()
    runs = {config: [] for config in configs}
    profiles = {}
    names = list(configs)
    with NetNSPair() as pair:
        # Each watcher once before the rounds: one that cannot attach fails
        # the run now, not after an hour, and file caches are warm.
        for config, (_, watcher) in configs.items():
            if watcher:
                watcher.start()
                watcher.stop()
                print(f"bench: {config} attaches", file=sys.stderr, flush=True)
        for round_number in range(ROUNDS):
            shift = round_number % len(names)
            for config in names[shift:] + names[:shift]:
                proto, watcher = configs[config]
                result = measure(pair, proto, watcher)
                runs[config].append(result)
                print(f"bench: round {round_number + 1}/{ROUNDS} {config}: "
                      f"{result['per_second']:.0f} handshakes/s", file=sys.stderr, flush=True)
        if PROFILE:
            for config, (proto, watcher) in configs.items():
                if watcher:
                    profiles[config] = profile(pair, proto, watcher)
                    print(f"bench: profiled {config}: {profiles[config]['ns_per_handshake']:.0f} "
                          "ns of BPF per handshake", file=sys.stderr, flush=True)

    summary, ratios = summarise(runs)
    rows = config_rows(runs, ratios)
    plot = write_plot(runs)
    line = summary_line.format_line(summary)
    verdicts = goals(summary)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump({"rounds": ROUNDS, "seconds": SECONDS, "warmup": WARMUP, "clients": CLIENTS,
                   "machine": machine(), "runs": runs, "ratios": ratios, "profiles": profiles,
                   "summary": summary, "summary_line": line, "goals": verdicts, "plot": plot},
                  f, indent=1)
    heading = (f"{ROUNDS} interleaved rounds of {SECONDS:g} s (after {WARMUP:g} s not counted), "
               f"{CLIENTS} clients, "
               f"{os.cpu_count()} CPUs, kernel {os.uname().release}, "
               f"icount: {os.environ.get('BENCH_ICOUNT') or 'off'}")
    table = markdown(CONFIG_HEADER, rows)
    programs = markdown(PROGRAM_HEADER, program_rows(profiles)) if profiles else ""
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write(f"{heading}\n\n{table}\n\n")
        if programs:
            f.write("BPF programs under kernel.bpf_stats_enabled=1 (one extra load each, "
                    f"not one of the rounds):\n\n{programs}\n\n")
        f.write("\n".join(verdicts) + f"\n\n{line}\n")
    with open(os.path.join(OUT, "results.rst"), "w") as f:
        f.write(".. SPDX-License-Identifier: GPL-2.0\n\n"
                f"{heading}:\n\n{rst(CONFIG_HEADER, rows)}\n\n")
        if profiles:
            f.write(f"Per program:\n\n{rst(PROGRAM_HEADER, program_rows(profiles))}\n\n")
        f.write(f"``{line}``\n")
    with open(os.path.join(OUT, "summaries.txt"), "a") as f:
        f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\t{line}\n")
    print(table)
    if programs:
        print(f"\n{programs}\n")
    for verdict in verdicts:
        print(f"goal: {verdict}")
    print(line)


if __name__ == "__main__":
    main()
