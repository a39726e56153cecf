"""Peak memory of predict, evaluate and prepare on inputs built to stress it.

    python benchmarks/memory.py --model RUN_DIR --work DIR

RUN_DIR is a trained model (e.g. agnews7k's: `classify prepare --from ../shared/data/agnews7k
--out D && classify train --data D --out RUN_DIR`). The script writes its inputs to DIR
(about 1.9 GB: 48 lines of 15M characters as text and CSV, 304k short CSV rows, a 400 MB CSV
whose quote never closes) and prints, per command, the exit code, the wall time and the peak
resident memory of the whole process tree (the command and its forked workers), sampled from
/proc every 20 ms. Linux only. The README's "Bounded memory" numbers come from here.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import time
from pathlib import Path

CLASSES = ["World", "Sports", "Business", "Sci/Tech"]


def tree_rss(root: int, anon: bool = False) -> int:
    """Resident bytes of ``root`` and every process below it; with ``anon``, only their
    anonymous memory (RssAnon: not the file pages they map, which the kernel may drop)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        if anon:
            try:
                with open(f"/proc/{entry}/status") as fh:
                    rss[pid] = next(int(x.split()[1]) << 10 for x in fh if x.startswith("RssAnon:"))
            except (OSError, StopIteration):
                rss[pid] = 0
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def measure(
    argv: list[str], anon: bool = False
) -> tuple[int, float, float, str] | tuple[int, float, float, float, str]:
    """Exit code, wall seconds, peak MB of the tree (and with ``anon``, its peak anonymous MB),
    last line of stderr."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = peak_anon = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        if anon:
            peak_anon = max(peak_anon, tree_rss(proc.pid, anon=True))
        time.sleep(0.02)
    stderr = proc.stderr.read().strip().splitlines() if proc.stderr else []
    last = stderr[-1] if stderr else ""
    if anon:
        return proc.returncode, time.perf_counter() - started, peak / 2**20, peak_anon / 2**20, last
    return proc.returncode, time.perf_counter() - started, peak / 2**20, last


def write_inputs(work: Path, seed: int = 0) -> dict[str, Path]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(50_000)]
    line = " ".join(rng.choice(words) for _ in range(2_600_000))[:15_000_000]
    paths = {name: work / name for name in ("long.txt", "long.csv", "many/test.csv", "quote.csv")}
    (work / "many").mkdir(parents=True, exist_ok=True)
    with open(paths["long.txt"], "w") as fh:
        fh.writelines(line + "\n" for _ in range(48))
    with open(paths["long.csv"], "w") as fh:
        fh.write("text,label\n")
        fh.writelines(f"{line},World\n" for _ in range(48))
    with open(paths["many/test.csv"], "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for i in range(304_000):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(20, 60)))
            writer.writerow([text, CLASSES[i % 4]])
    with open(paths["quote.csv"], "w") as fh:
        fh.write('text,label\nfine words,World\n"a stray quote,World\n')
        short = "more words here and there,World\n"
        fh.write(short * (400_000_000 // len(short)))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a trained run directory (4 labels as AG News)")
    parser.add_argument("--work", type=Path, required=True, help="where the inputs are written (~1.9 GB)")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    paths = write_inputs(args.work)
    classify = [sys.executable, "-m", "classify_cli"]
    model = ["--model", str(args.model)]
    cases = {
        "predict TEXT": ["predict", *model, "some text"],
        "predict --file 304k rows (jsonl)": ["predict", *model, "--file", paths["many/test.csv"], "--format", "jsonl"],
        "predict --file 304k rows (table)": ["predict", *model, "--file", paths["many/test.csv"]],
        "evaluate 304k rows": ["evaluate", *model, "--data", paths["many/test.csv"], "--format", "json"],
        "predict --file 48 lines of 15M chars": ["predict", *model, "--file", paths["long.txt"], "--format", "jsonl"],
        "evaluate 48 lines of 15M chars": ["evaluate", *model, "--data", paths["long.csv"], "--format", "json"],
        "predict --file /dev/zero (refused)": ["predict", *model, "--file", "/dev/zero", "--format", "jsonl"],
        "evaluate, quote never closed (refused)": ["evaluate", *model, "--data", paths["quote.csv"]],
        "prepare, quote never closed (refused)": ["prepare", "--from", paths["quote.csv"], "--out", args.work / "q"],
    }
    print("| command | exit | wall s | peak MB |\n|---|---:|---:|---:|")
    for name, cmd in cases.items():
        code, wall, peak, last = measure([*classify, *map(str, cmd)])
        print(f"| {name} | {code} | {wall:.1f} | {peak:.0f} |", flush=True)
        if code not in (0, 2):
            print(f"  unexpected: {last}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
