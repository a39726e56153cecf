"""Cold start, side by side: `classify --help` against `import typer`, and `classify predict "text"`
against fastText's Python module loading its model and predicting one text.

    python benchmarks/coldstart.py SCALE_DIR [SCALE_DIR ...] [--runs 7] [--as-is] [--json OUT.json]
                                   [--baseline-classify PATH]

A benchmark script, not a test: it prints medians and asserts nothing. Each SCALE_DIR is a corpus's
folder as ``benchmarks/scale.py`` leaves it (``WORK/NAME``): ``run/`` (classify, default config),
``small/`` (``classify compress``), ``ft.bin`` and ``ft.ftz`` (fastText's paper recipe, quantized);
whatever is missing is left out. For the 1M-document corpus, about 5 minutes:

    python benchmarks/corpus.py --out /tmp/corpus1m --train-docs 1000000
    python benchmarks/scale.py /tmp/corpus1m --work /tmp/scale
    python benchmarks/coldstart.py /tmp/scale/corpus1m

What runs: every command once untimed (the page cache, and the bytecode caches below), then
``--runs`` rounds of every command, each round in another order, so that a slow moment of the
machine falls on all of them alike. A run is ``time.perf_counter()`` around ``subprocess.run`` of
the whole child (interpreter, imports, loading, the text, printing): what a shell user waits for.
The table gives each command's median, and each target's ratio of medians; the last line, the CPU
time other processes took meanwhile (on 2 cores, anything beyond a few tenths of a second a
minute skews the numbers: rerun).

Bytecode: children run with ``PYTHONPYCACHEPREFIX`` (a folder under the system's temporary one)
and without ``PYTHONDONTWRITEBYTECODE``, so every module, classify's included, starts from
its cached bytecode as an installed package does (an editable checkout under
PYTHONDONTWRITEBYTECODE=1 compiles classify's modules at every start). ``--as-is`` runs
them in this process's environment instead.

The commands (this interpreter; ``classify`` is the console script beside it):
    import typer        python -c "import typer"
    classify --help     classify --help
    fastText .ftz/.bin  python -c FT_PREDICT MODEL "stocks rally as the fed holds rates" (scale.py's:
                        load_model, then predict; the text as classify tokenizes it)
    classify predict    classify predict --model RUN "Stocks rally as the Fed holds rates"
With ``--baseline-classify PATH`` (another checkout's ``classify``), its ``--help`` and ``predict``
run in the same rounds, as rows marked "(baseline)".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import FT_PREDICT, PREDICT_TEXT  # noqa: E402  (benchmarks/scale.py)

QUERY = "stocks rally as the fed holds rates"  # PREDICT_TEXT as classify tokenizes it, for fastText
# (name, command, baseline's name, the ratio the issue asks for at most)
TARGETS = (
    ("classify --help", "import typer", 1.5),
    ("classify predict, compressed", "fastText .ftz", 1.5),
    ("classify predict, full", "fastText .bin", 1.0),
)


def commands(scale_dirs: list[Path], baseline: Path | None) -> dict[str, list[str]]:
    python = sys.executable
    classifies = {"": str(Path(python).with_name("classify"))} | ({" (baseline)": str(baseline)} if baseline else {})
    found = {"import typer": [python, "-c", "import typer"]}
    found |= {f"classify --help{mark}": [classify, "--help"] for mark, classify in classifies.items()}
    for folder in scale_dirs:
        tag = f" ({folder.name})" if len(scale_dirs) > 1 else ""
        for name, model in (("classify predict, compressed", "small"), ("classify predict, full", "run")):
            if (folder / model / "model.json").is_file():
                for mark, classify in classifies.items():
                    found[name + tag + mark] = [classify, "predict", "--model", str(folder / model), PREDICT_TEXT]
        for name, model in (("fastText .ftz", "ft.ftz"), ("fastText .bin", "ft.bin")):
            if (folder / model).is_file():
                found[name + tag] = [python, "-c", FT_PREDICT, str(folder / model), QUERY]
    return found


def child_env(as_is: bool) -> dict[str, str]:
    env = dict(os.environ)
    if not as_is:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "classify-coldstart-pycache")
    return env


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return wall, proc.stdout


def other_cpu_s(since: tuple[float, float, float]) -> tuple[float, float]:
    """Wall seconds since ``since`` (``mark()``), and the CPU seconds processes other than this
    one and its children used meanwhile (from /proc/stat): a busy machine voids the timings."""
    wall, busy, ours = mark()
    return wall - since[0], max(0.0, (busy - since[1]) - (ours - since[2]))


def mark() -> tuple[float, float, float]:
    """(now, the machine's busy CPU seconds, this process's and its children's CPU seconds)."""
    import resource

    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    busy = (sum(fields[:3]) + sum(fields[5:8])) / os.sysconf("SC_CLK_TCK")
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return time.perf_counter(), busy, sum(u.ru_utime + u.ru_stime for u in usage)


def measure(found: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict[str, list[float]]:
    for name, argv in found.items():  # untimed: page cache and bytecode caches
        _, out = run_once(argv, env)
        print(f"{name}: {out.strip().splitlines()[-1][:100] if out.strip() else '(no output)'}", file=sys.stderr)
    walls: dict[str, list[float]] = {name: [] for name in found}
    names = list(found)
    for r in range(runs):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # each round starts elsewhere
            walls[name].append(run_once(found[name], env)[0])
    return walls


def table(walls: dict[str, list[float]]) -> str:
    lines = ["| command | median s | min s | max s | runs |", "|---|---:|---:|---:|---:|"]
    for name, values in walls.items():
        lines.append(
            f"| {name} | {statistics.median(values):.3f} | {min(values):.3f} | {max(values):.3f} | {len(values)} |"
        )
    return "\n".join(lines)


def targets(walls: dict[str, list[float]]) -> str:
    lines = ["| target | ratio of medians | at most | holds |", "|---|---:|---:|---|"]
    for name, baseline, limit in TARGETS:
        for found in walls:
            if (found == name or found.startswith(name + " (")) and not found.endswith("(baseline)"):
                base = baseline + found[len(name) :]
                if base in walls:
                    ratio = statistics.median(walls[found]) / statistics.median(walls[base])
                    lines.append(
                        f"| {found} / {base} | {ratio:.2f}× | {limit}× | {'yes' if ratio <= limit else 'NO'} |"
                    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scale_dirs", nargs="*", type=Path, help="WORK/NAME folders of benchmarks/scale.py")
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each command (default 7)")
    parser.add_argument("--as-is", action="store_true", help="children in this environment (see the docstring)")
    parser.add_argument("--json", type=Path, help="write every timing here")
    parser.add_argument("--baseline-classify", type=Path, help="another classify to time beside this one")
    args = parser.parse_args()
    found = commands(args.scale_dirs, args.baseline_classify)
    start = mark()
    walls = measure(found, args.runs, child_env(args.as_is))
    elapsed, others = other_cpu_s(start)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = "as this environment runs it" if args.as_is else "bytecode cached for every module"
    print(table(walls) + "\n\n" + targets(walls) + "\n")
    print(
        f"{when} · {os.cpu_count()} cores ({platform.machine()}) · Python {platform.python_version()} · "
        f"{mode} · medians of {args.runs} runs, rounds interleaved · other processes used {others:.1f} "
        f"CPU-seconds in these {elapsed:.0f} s"
    )
    if args.json:
        record = {"when": when, "mode": mode, "other_cpu_s": others, "commands": found, "walls_s": walls}
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
