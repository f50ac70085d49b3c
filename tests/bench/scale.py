#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""make bench-scale, inside the test VM: what qwatch's resync costs on a big
host, and the highest handshake rate its event stream keeps up with.

Resync: this process holds N listeners (127.0.0.1, port 0) and F other open
sockets (RLIMIT_NOFILE raised), for N in SCALE_LISTENERS and F in SCALE_FDS,
each step against a baseline of none. Every resync walks every fd of every
task (the task_file iterator), so its cost must grow at most linearly with
both. Per step:

  once     `qwatch --once --json` (attach, one snapshot, print): wall time
           and CPU (RUSAGE_CHILDREN), medians of SCALE_ONCE runs, and the
           number of listeners it printed (all N must be there);
  live     the live table (stdout to /dev/null) with -i SCALE_INTERVAL for
           SCALE_LIVE_SECONDS: its --stats resync_p50_ns / resync_max_ns
           (the resync alone: snapshot, counters, drain) and the reader's
           CPU share, table rendering included.

The growth exponent between two steps is log(c2/c1) / log(n2/n1) of the
cost above the baseline: 1 is linear.

Lossless rate: `qwatch --json` (stdout to /dev/null) under build/loadgen
--rate R, R doubling from SCALE_RATE_START until qwatch loses events (then
bisected SCALE_BISECT times) or the load no longer reaches 90 % of R (the
machine is saturated before qwatch loses anything), for each attach mode
in SCALE_ATTACH.

Results: build/bench/scale.json and scale.md; the last line printed is the
summary.
"""

import json
import math
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests"))

from lib.cmd import Background, run, scaled  # noqa: E402
from lib.netns import NetNSPair  # noqa: E402

LOADGEN = os.path.join(REPO, "build", "loadgen")
QWATCH = os.path.join(REPO, "build", "qwatch")
OUT = os.path.join(REPO, "build", "bench")


def env_list(name, default):
    return [int(x) for x in os.environ.get(name, default).split(",") if x]


LISTENERS = env_list("SCALE_LISTENERS", "1000,10000")
FDS = env_list("SCALE_FDS", "10000,100000")
ONCE_RUNS = int(os.environ.get("SCALE_ONCE", "3"))
LIVE_SECONDS = float(os.environ.get("SCALE_LIVE_SECONDS", "5"))
INTERVAL = os.environ.get("SCALE_INTERVAL", "0.25")
RATE_START = float(os.environ.get("SCALE_RATE_START", "250"))
RATE_SECONDS = float(os.environ.get("SCALE_RATE_SECONDS", "5"))
RATE_CLIENTS = int(os.environ.get("SCALE_RATE_CLIENTS", "8"))
BISECT = int(os.environ.get("SCALE_BISECT", "3"))
ATTACH = [a for a in os.environ.get("SCALE_ATTACH", "fentry,kprobe").split(",") if a]
# qwatch's first snapshot of 100k fds under emulation may take a while.
READY_TIMEOUT = 600


def raise_fd_limit(needed):
    """RLIMIT_NOFILE to @needed and some (root may raise the hard limit up
    to fs.nr_open)."""
    limit = needed + 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < limit:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, max(hard, limit)))
        except ValueError as e:
            raise RuntimeError(f"RLIMIT_NOFILE {soft}/{hard} cannot be raised to {limit} "
                               "(root, and fs.nr_open at least that, are needed)") from e


def open_listeners(count):
    held = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        held.append(sock)
    return held


def open_sockets(count):
    """@count TCP sockets that never listen or connect: fds the snapshot's
    walk must look at and pass over."""
    return [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure_once():
    """`qwatch --once --json`: wall and CPU seconds (medians), listeners printed."""
    walls, cpus, printed = [], [], []
    for _ in range(ONCE_RUNS):
        cpu_before = children_cpu()
        started = time.monotonic()
        out = run([QWATCH, "--once", "--json"], timeout=READY_TIMEOUT).stdout
        walls.append(time.monotonic() - started)
        cpus.append(children_cpu() - cpu_before)
        printed.append(sum(1 for line in out.splitlines() if line.strip()))
    return {"once_wall_s": statistics.median(walls), "once_cpu_s": statistics.median(cpus),
            "once_listeners": min(printed)}


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_for_stats(background):
    """SIGINT to a qwatch run with --stats; its stats line."""
    proc = background.proc
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=scaled(120))
    if proc.returncode != 0:
        raise RuntimeError(f"qwatch exited {proc.returncode}: {err}")
    return json.loads(err.strip().splitlines()[-1])


def measure_live():
    """The live table for LIVE_SECONDS: its resyncs' times and its CPU share."""
    qwatch = Background([QWATCH, "--stats", "-i", INTERVAL, "--ready-fd", "{ready_fd}"],
                        stdout=subprocess.DEVNULL, ready_timeout=READY_TIMEOUT)
    cpu_before = cpu_seconds(qwatch.proc.pid)
    started = time.monotonic()
    # A measurement window: time-based by nature.
    time.sleep(LIVE_SECONDS)
    cpu = cpu_seconds(qwatch.proc.pid) - cpu_before
    elapsed = time.monotonic() - started
    stats = stop_for_stats(qwatch)
    return {"resyncs": stats["resyncs"], "resync_p50_ms": stats["resync_p50_ns"] / 1e6,
            "resync_max_ms": stats["resync_max_ns"] / 1e6,
            "live_cpu_percent": cpu / elapsed * 100}


def measure_step(listeners, fds):
    print(f"scale: {listeners} listeners, {fds} other sockets", file=sys.stderr, flush=True)
    held = open_listeners(listeners) + open_sockets(fds)
    try:
        result = {"listeners": listeners, "fds": fds, **measure_once(), **measure_live()}
    finally:
        for sock in held:
            sock.close()
    if result["once_listeners"] < listeners:
        raise RuntimeError(f"qwatch --once listed {result['once_listeners']} listeners of "
                           f"{listeners} held")
    return result


def exponent(base, low, high, key, axis):
    """Growth exponent of @key above @base between steps @low and @high."""
    c1, c2 = low[key] - base[key], high[key] - base[key]
    n1, n2 = low[axis], high[axis]
    if c1 <= 0 or c2 <= 0 or n1 == n2:
        return math.nan
    return math.log(c2 / c1) / math.log(n2 / n1)


def at_rate(pair, attach, rate):
    """qwatch --json under a paced load of @rate handshakes/s."""
    qwatch = Background([QWATCH, "--json", "--attach", attach, "--stats",
                         "--ready-fd", "{ready_fd}"], stdout=subprocess.DEVNULL,
                        ready_timeout=READY_TIMEOUT)
    try:
        load = json.loads(run([LOADGEN, "--proto", "tcp", "--server-netns", pair.server.name,
                               "--client-netns", pair.client.name,
                               "--clients", str(RATE_CLIENTS), "--seconds", str(RATE_SECONDS),
                               "--rate", f"{rate:.0f}"], timeout=RATE_SECONDS + 120).stdout)
    finally:
        stats = stop_for_stats(qwatch)
    step = {"target": rate, "per_second": load["per_second"], "lost": stats["lost"],
            "events": stats["events"], "delay_p99_ms": stats["delay_p99_ns"] / 1e6}
    print(f"scale: {attach} at {rate:.0f}/s: {load['per_second']:.0f}/s, "
          f"{stats['lost']} lost", file=sys.stderr, flush=True)
    return step


def lossless_rate(pair, attach):
    """The highest rate reached with nothing lost, and what bounded it."""
    steps = []
    good, bad = None, None
    rate = RATE_START
    while True:
        step = at_rate(pair, attach, rate)
        steps.append(step)
        if step["lost"]:
            bad = rate
            break
        good = step
        if step["per_second"] < 0.9 * rate:
            break
        rate *= 2
    for _ in range(BISECT if bad and good else 0):
        rate = (good["target"] + bad) / 2
        step = at_rate(pair, attach, rate)
        steps.append(step)
        if step["lost"]:
            bad = rate
        else:
            good = step
    if bad is None:
        bound = "load saturated, nothing lost"
    else:
        bound = f"events lost at {bad:.0f}/s"
    return {"rate": good["per_second"] if good else 0.0, "bound": bound, "steps": steps}


def main():
    os.makedirs(OUT, exist_ok=True)
    raise_fd_limit(max(LISTENERS + [0]) + max(FDS + [0]))
    base = measure_step(0, 0)
    by_listeners = [measure_step(n, 0) for n in LISTENERS]
    by_fds = [measure_step(0, f) for f in FDS]
    growth = {}
    for name, steps, axis in (("listeners", by_listeners, "listeners"), ("fds", by_fds, "fds")):
        if len(steps) >= 2:
            growth[name] = {key: exponent(base, steps[0], steps[-1], key, axis)
                            for key in ("resync_p50_ms", "once_wall_s", "once_cpu_s")}
    rates = {}
    with NetNSPair() as pair:
        for attach in ATTACH:
            rates[attach] = lossless_rate(pair, attach)

    rows = ["| listeners | other sockets | resync p50 ms | resync max ms | resyncs | "
            "reader CPU % | --once wall s | --once CPU s | listed |", "|" + "---|" * 9]
    for step in [base] + by_listeners + by_fds:
        rows.append(f"| {step['listeners']} | {step['fds']} | {step['resync_p50_ms']:.2f} | "
                    f"{step['resync_max_ms']:.2f} | {step['resyncs']} | "
                    f"{step['live_cpu_percent']:.1f} | {step['once_wall_s']:.2f} | "
                    f"{step['once_cpu_s']:.2f} | {step['once_listeners']} |")
    growth_lines = [f"growth exponent with {name} (1 = linear): " +
                    ", ".join(f"{k} {v:.2f}" for k, v in g.items()) for name, g in growth.items()]
    rate_lines = [f"lossless event-stream rate ({attach}): {r['rate']:.0f} handshakes/s "
                  f"({r['bound']})" for attach, r in rates.items()]
    table = "\n".join(rows)
    with open(os.path.join(OUT, "scale.json"), "w") as f:
        json.dump({"base": base, "by_listeners": by_listeners, "by_fds": by_fds,
                   "growth": growth, "rates": rates, "interval_s": float(INTERVAL),
                   "cpus": os.cpu_count(), "kernel": os.uname().release,
                   "icount": os.environ.get("BENCH_ICOUNT", "")}, f, indent=1)
    with open(os.path.join(OUT, "scale.md"), "w") as f:
        f.write(f"{table}\n\n" + "\n".join(growth_lines + rate_lines) + "\n")
    print(table)
    for line in growth_lines + rate_lines:
        print(line)

    def at(steps, key, axis):
        return " ".join(f"{step[axis]}={step[key]:.2f}" for step in steps)
    print(f"scale: resync_ms(listeners) {at(by_listeners, 'resync_p50_ms', 'listeners')} "
          f"exponent={growth.get('listeners', {}).get('resync_p50_ms', math.nan):.2f} "
          f"resync_ms(fds) {at(by_fds, 'resync_p50_ms', 'fds')} "
          f"exponent={growth.get('fds', {}).get('resync_p50_ms', math.nan):.2f} " +
          " ".join(f"lossless({a})={r['rate']:.0f}" for a, r in rates.items()))


if __name__ == "__main__":
    main()
