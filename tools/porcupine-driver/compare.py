#!/usr/bin/env python3
"""Side-by-side timing of lincheck and Porcupine on generated small-domain histories.

    compare.py [--seeds 100] [--repeat N] [--class NAME=OPS,PROCS,DOMAIN,INFO ...]
               [--ours LABEL=BIN ...] [--porcupine BIN] [--dir DIR] [--rows FILE]
    compare.py --from-rows FILE     # the tables again, from the rows a run wrote

Generates each class's histories with lincheck's generator (the `gen_history` example: one key,
values drawn from 1..=DOMAIN, INFO the share of indefinite operations), then for every seed runs
each lincheck binary (the `lincheck` example, `--threads=1`) and Porcupine's driver on the same
file one after the other, so a noisy machine slows both alike. Time is the wall time of the
child process (read + check); memory its peak RSS (GNU time's %M when /usr/bin/time exists,
else getrusage, which cannot report less than this interpreter's own RSS, about 15 MB). Prints per class: median, p90,
p99 and max of time and memory for each checker, how many seeds each lincheck was slower than
Porcupine, and the worst ratio.

Porcupine's driver: --porcupine, else $PORCUPINE_DRIVER (main.go built against Porcupine outside
this repository; see README.md). Without it the
table says Porcupine is unavailable and shows lincheck alone.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


# Linux carries the RSS high-water mark of the process that execs into the new program's
# ru_maxrss, so a child forked from this interpreter reports at least the interpreter's own
# (about 15 MB). GNU time, when installed, forks the checker from a small process instead.
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run(cmd):
    """Runs cmd; returns (verdict, seconds, peak RSS in MB)."""
    rss_file = None
    if GNU_TIME:
        fd, rss_file = tempfile.mkstemp(prefix="compare-rss-")
        os.close(fd)
        cmd = [GNU_TIME, "-f", "%M", "-o", rss_file] + cmd
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = p.stdout.read().decode()
    _, status, ru = os.wait4(p.pid, 0)
    secs = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    fields = out.split("\t")
    verdict = fields[1].strip() if len(fields) > 1 else f"error (exit {p.returncode})"
    mb = ru.ru_maxrss / 1024
    if rss_file:
        with open(rss_file) as f:
            lines = f.read().split()
        os.unlink(rss_file)
        if lines and lines[-1].isdigit():
            mb = int(lines[-1]) / 1024
    return verdict, secs, mb


def pct(xs, q):
    xs = sorted(xs)
    # Nearest rank: p99 of 100 seeds is the 99th smallest.
    k = max(0, min(len(xs) - 1, -(-q * len(xs) // 100) - 1))
    return xs[int(k)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1,
                    help="run every checker this many times per seed, in turns, and keep the "
                    "fastest run (and the largest RSS): on a shared machine the fastest is the "
                    "one least slowed by other work")
    ap.add_argument("--class", dest="classes", action="append",
                    help="NAME=OPS,PROCS,DOMAIN,INFO (default: the three of issue 16)")
    ap.add_argument("--ours", action="append", help="LABEL=BIN (default: target/release)")
    ap.add_argument("--gen", help="gen_history binary")
    ap.add_argument("--porcupine", default=os.environ.get("PORCUPINE_DRIVER"))
    ap.add_argument("--dir", default="/tmp/lincheck-vs-porcupine")
    ap.add_argument("--rows", help="write every measurement (TSV) here")
    ap.add_argument("--from-rows", help="print the tables of a --rows file (seeds every "
                    "checker finished) and exit")
    a = ap.parse_args()
    if a.from_rows:
        by = {}
        for line in open(a.from_rows):
            name, seed, label, v, secs, mb = line.rstrip("\n").split("\t")
            by.setdefault(name, {}).setdefault(int(seed), {})[label] = (v, float(secs), float(mb))
        for name, seeds in by.items():
            labels = sorted({lab for r in seeds.values() for lab in r},
                            key=lambda lab: (lab == "porcupine", lab))
            done = sorted(s for s, r in seeds.items() if len(r) == len(labels))
            res = {lab: [(s,) + seeds[s][lab] for s in done] for lab in labels}
            table(name, f"{len(done)} seeds", res, "porcupine" in labels)
        return
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "examples"
    gen = a.gen or str(target / "gen_history")
    ours = [o.split("=", 1) for o in (a.ours or [f"lincheck={target / 'lincheck'}"])]
    classes = a.classes or ["d4p10=4000,10,4,0.2", "d4p20=4000,20,4,0.2", "d3p10=4000,10,3,0.2"]
    porc = a.porcupine if a.porcupine and os.access(a.porcupine, os.X_OK) else None
    if not porc:
        print("Porcupine: unavailable (set PORCUPINE_DRIVER or --porcupine to main.go built "
              "against Porcupine, see tools/porcupine-driver/README.md); lincheck alone.\n")
    rows = open(a.rows, "w") if a.rows else None
    checkers = [(label, [b, "--threads=1"]) for label, b in ours]
    if porc:
        checkers.append(("porcupine", [porc]))
    for spec in classes:
        name, params = spec.split("=")
        n, procs, domain, info = params.split(",")
        d = Path(a.dir) / name
        d.mkdir(parents=True, exist_ok=True)
        res = {label: [] for label, _ in checkers}
        for seed in range(a.first_seed, a.first_seed + a.seeds):
            f = d / f"s{seed}.jsonl"
            if not f.exists():
                with open(f, "wb") as out:
                    subprocess.run([gen, n, "1", procs, info, str(seed), f"--domain={domain}"],
                                   stdout=out, check=True)
            best = {}
            for _ in range(max(1, a.repeat)):
                for label, cmd in checkers:
                    v, secs, mb = run(cmd + [str(f)])
                    if label in best:
                        v0, s0, m0 = best[label]
                        v = v0 if v0 == v else f"{v0}/{v}"
                        secs, mb = min(secs, s0), max(mb, m0)
                    best[label] = (v, secs, mb)
            for label, _ in checkers:
                v, secs, mb = best[label]
                res[label].append((seed, v, secs, mb))
                if rows:
                    rows.write(f"{name}\t{seed}\t{label}\t{v}\t{secs:.4f}\t{mb:.1f}\n")
                    rows.flush()
        table(name, f"1 key, {n} ops, {procs} processes, domain {domain}, {float(info):.0%} "
              f"info; {a.seeds} seeds"
              + (f", fastest of {a.repeat} runs each" if a.repeat > 1 else ""), res, bool(porc))


def table(name, what, res, porc):
    """Prints one class's table; res: label -> [(seed, verdict, seconds, MB)] in seed order."""
    print(f"## {name}: {what}\n")
    print("| checker | verdicts | time median | p90 | p99 | max (seed) | "
          "peak RSS median (MB) | p90 | p99 | max | seeds slower than Porcupine | "
          "worst time ratio (seed) | p99 ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label in res:
        r = res[label]
        ts = [x[2] for x in r]
        ms = [x[3] for x in r]
        verdicts = {}
        for x in r:
            verdicts[x[1]] = verdicts.get(x[1], 0) + 1
        worst = max(r, key=lambda x: x[2])
        slower = worst_ratio = p99r = "-"
        if porc and label != "porcupine":
            ratios = [(x[2] / p[2], x[0]) for x, p in zip(r, res["porcupine"])]
            slower = str(sum(1 for q, _ in ratios if q > 1))
            wr = max(ratios)
            worst_ratio = f"{wr[0]:.2f} ({wr[1]})"
            p99r = f"{pct([q for q, _ in ratios], 99):.2f}"
        vs = ", ".join(f"{k} {c}" for k, c in sorted(verdicts.items()))
        print(f"| {label} | {vs} | {pct(ts, 50):.3f} | {pct(ts, 90):.3f} | {pct(ts, 99):.3f} "
              f"| {worst[2]:.3f} ({worst[0]}) | {pct(ms, 50):.0f} | {pct(ms, 90):.0f} "
              f"| {pct(ms, 99):.0f} | {max(ms):.0f} | {slower} | {worst_ratio} | {p99r} |")
    print()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
