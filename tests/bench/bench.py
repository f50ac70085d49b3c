#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""make bench, inside the test VM: handshake rates of TCP and HSP, and
qwatch's cost, measured side by side in interleaved rounds.

Each round runs build/loadgen (K clients doing connect -> accept -> close
between two namespaces for a fixed time) in four configurations, in this
order: TCP, HSP, TCP watched by qwatch through kprobes, TCP watched by
qwatch through fentry. Ratios are taken within a round and their medians
reported, so a machine that slows down between rounds moves both sides of a
ratio. Results go to build/bench/ (results.json, results.md, and
handshakes.svg when gnuplot is there); the last line printed is the summary.
"""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests"))

from lib import hsp  # noqa: E402
from lib.cmd import Background, run  # noqa: E402
from lib.netns import NetNSPair  # noqa: E402

LOADGEN = os.path.join(REPO, "build", "loadgen")
QWATCH = os.path.join(REPO, "build", "qwatch")
OUT = os.path.join(REPO, "build", "bench")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
CONFIGS = [("tcp", None), ("hsp", None), ("tcp", "kprobe"), ("tcp", "fentry")]


def name(proto, attach):
    return f"{proto}+qwatch({attach})" if attach else proto


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(pair, proto, attach):
    qwatch = None
    if attach:
        qwatch = Background([QWATCH, "--attach", attach, "--stats", "--netns", pair.server.name,
                             "--ready-fd", "{ready_fd}"], stdout=subprocess.DEVNULL)
        cpu_before = cpu_seconds(qwatch.proc.pid)
    started = time.monotonic()
    result = json.loads(run([LOADGEN, "--proto", proto, "--server-netns", pair.server.name,
                             "--client-netns", pair.client.name, "--clients", str(CLIENTS),
                             "--seconds", str(SECONDS)], timeout=SECONDS + 120).stdout)
    elapsed = time.monotonic() - started
    if qwatch:
        reader_cpu = (cpu_seconds(qwatch.proc.pid) - cpu_before) / elapsed * 100
        qwatch.proc.send_signal(signal.SIGINT)
        _, err = qwatch.proc.communicate(timeout=60)
        stats = json.loads(err.strip().splitlines()[-1])
        assert stats["attach"] == attach, stats
        result.update(reader_cpu_percent=reader_cpu, lost=stats["lost"], events=stats["events"],
                      delay_p50_ms=stats["delay_p50_ns"] / 1e6,
                      delay_p99_ms=stats["delay_p99_ns"] / 1e6)
    return result


def spread(values):
    return min(values), max(values)


def write_plot(runs):
    """handshakes/s over time, the first round of each configuration."""
    data = os.path.join(OUT, "handshakes.dat")
    with open(data, "w") as f:
        for proto, attach in CONFIGS:
            first = runs[name(proto, attach)][0]
            f.write(f'"{name(proto, attach)}"\n')
            for i, count in enumerate(first["buckets"][:-1]):
                f.write(f"{i * first['bucket_ms'] / 1000:.2f} {count * 1000 / first['bucket_ms']}\n")
            f.write("\n\n")
    if not shutil.which("gnuplot"):
        return None
    svg = os.path.join(OUT, "handshakes.svg")
    script = (f"set terminal svg size 900,500; set output '{svg}';"
              "set xlabel 'seconds'; set ylabel 'handshakes/s'; set key outside;"
              "set title 'connect -> accept -> close, 4 configurations (first round)';"
              f"plot for [i=0:{len(CONFIGS) - 1}] '{data}' index i with lines "
              "title columnheader(1)")
    subprocess.run(["gnuplot", "-e", script], check=True)
    return svg


def main():
    os.makedirs(OUT, exist_ok=True)
    hsp.load()
    runs = {name(p, a): [] for p, a in CONFIGS}
    with NetNSPair() as pair:
        for round_number in range(ROUNDS):
            for proto, attach in CONFIGS:
                result = measure(pair, proto, attach)
                runs[name(proto, attach)].append(result)
                print(f"bench: round {round_number + 1}/{ROUNDS} {name(proto, attach)}: "
                      f"{result['per_second']:.0f} handshakes/s", file=sys.stderr, flush=True)

    rate = {config: [r["per_second"] for r in results] for config, results in runs.items()}
    per_round = lambda a, b: statistics.median(x / y for x, y in zip(rate[a], rate[b]))
    observed = runs["tcp+qwatch(kprobe)"] + runs["tcp+qwatch(fentry)"]
    summary = {
        "hsp/tcp": per_round("hsp", "tcp"),
        "observed/unobserved(kprobe)": per_round("tcp+qwatch(kprobe)", "tcp"),
        "observed/unobserved(fentry)": per_round("tcp+qwatch(fentry)", "tcp"),
        "lost": sum(r["lost"] for r in observed),
        "reader_cpu_percent": statistics.median(r["reader_cpu_percent"] for r in observed),
        "p99_ms": statistics.median(r["delay_p99_ms"] for r in observed),
    }
    rows = ["| configuration | handshakes/s (median) | min | max | qwatch CPU % | lost | "
            "p50 ms | p99 ms |", "|---|---|---|---|---|---|---|---|"]
    for config, results in runs.items():
        low, high = spread(rate[config])
        row = f"| {config} | {statistics.median(rate[config]):.0f} | {low:.0f} | {high:.0f} |"
        if config.startswith("tcp+"):
            row += (f" {statistics.median(r['reader_cpu_percent'] for r in results):.1f} |"
                    f" {sum(r['lost'] for r in results)} |"
                    f" {statistics.median(r['delay_p50_ms'] for r in results):.2f} |"
                    f" {statistics.median(r['delay_p99_ms'] for r in results):.2f} |")
        else:
            row += " - | - | - | - |"
        rows.append(row)
    plot = write_plot(runs)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump({"rounds": ROUNDS, "seconds": SECONDS, "clients": CLIENTS, "runs": runs,
                   "summary": summary, "plot": plot}, f, indent=1)
    table = "\n".join(rows)
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write(f"{ROUNDS} interleaved rounds of {SECONDS:g} s, {CLIENTS} clients\n\n{table}\n")
    print(table)
    print(f"bench: hsp/tcp={summary['hsp/tcp']:.2f} "
          f"observed/unobserved(kprobe)={summary['observed/unobserved(kprobe)']:.2f} "
          f"observed/unobserved(fentry)={summary['observed/unobserved(fentry)']:.2f} "
          f"lost={summary['lost']} reader_cpu={summary['reader_cpu_percent']:.1f}% "
          f"p99_ms={summary['p99_ms']:.1f}")


if __name__ == "__main__":
    main()
