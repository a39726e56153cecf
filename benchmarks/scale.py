"""classify against fastText, side by side, on large corpora whose vocabulary grows (benchmarks/corpus.py).

    python benchmarks/scale.py CORPUS_DIR [CORPUS_DIR ...] --work DIR [--json OUT.json] [--skip-fasttext]
                               [--classify PATH] [--compress-args "..."]

A benchmark script, not a test: it prints numbers and asserts nothing about them. Each
CORPUS_DIR is in the AG News layout (train.csv, test.csv, classes.txt), as written by
benchmarks/corpus.py. Everything derived goes to WORK/NAME (NAME = the corpus folder's name),
which is deleted and remade at the start of that corpus. Progress and the commands run go to
stderr, each child's stdout/stderr to WORK/NAME/logs/; the tables and the machine line go to
stdout, and with --json every number to OUT.json.

What runs, each step in its own child process
    classify (the `classify` next to this interpreter, or --classify PATH), default config:
    children run with WORK as their working directory, so no configs/agnews.toml is picked up
    and the built-in defaults apply (the same values as configs/agnews.toml)
      prepare   classify prepare --from CORPUS --out WORK/NAME/data
      train     classify train --data WORK/NAME/data --out WORK/NAME/run (its JSON summary gives
                epochs run and the best epoch). prepare carves 5% of train.csv off as validation,
                so classify trains on 95% of the rows ("train docs" says how many)
      size      the bytes of every file under the run directory except checkpoint/
      evaluate  classify evaluate --model RUN --data CORPUS/test.csv --format json: test accuracy
      predict   classify predict --model RUN "Stocks rally as the Fed holds rates": one untimed
                warm-up run (page cache), then 5 timed runs
      compress  only when `classify compress --help` exits 0: classify compress --model RUN
                --out WORK/NAME/classify-compressed [--compress-args], then size, evaluate and
                predict as above; after fastText, again with --max-size the .ftz's bytes
                ("classify at the .ftz size": model.json and weights against the .ftz file)
    fastText (fasttext-wheel, in this interpreter), the paper recipe of Joulin et al. 2016:
    dim 10, lr 0.25, wordNgrams 2, epoch 5, minCount 1, bucket 10,000,000, thread 2, softmax,
    on all of train.csv, tokenized exactly as classify tokenizes (basic_english after
    clean_text, title + " " + description), written as "__label__K tok tok ..." lines
    (untimed, in this process)
      train     a child: train_supervised(...) then save_model(ft.bin)
      test      a child: load_model + test() on the tokenized test.csv (precision@1 = accuracy)
      quantize  a child: load ft.bin, quantize(input=train, retrain=True, cutoff=100000,
                qnorm=True) (fastText's defaults if that raises), save_model(ft.ftz); then test
      predict   a child: python -c "import fasttext; m = fasttext.load_model(P); print(m.predict(...))"
                for ft.bin and ft.ftz: a warm-up, then 5 timed runs

How each number is measured
    wall s     time.perf_counter() around subprocess.run of the whole child: interpreter
               start-up, imports, reading and writing included, for both systems. fastText's
               "train s" is the whole child process, like classify's; its in-process
               train_supervised() time ("fit s") is shown beside it and in the JSON.
    peak MB    the child's own peak resident set, from `/usr/bin/time -f "%e %M"` (KiB), which
               runs between this process and the child so that the reading is that process's
               alone (without /usr/bin/time, os.wait4's ru_maxrss, which on Linux starts at the
               forking parent's size: an upper bound, flagged in the JSON)
    MB         2**20 bytes, for sizes on disk and for memory
    cold start the median wall of 5 runs of a one-text predict (after one warm-up run), and the
               largest peak RSS of the 5: what a shell user waits for, start-up included
    rows       "classify compressed" and "fastText quantized" show in "train s" / "train peak MB"
               the extra step (compress, quantize with retraining) that made them from the
               trained model, marked "+"; prepare and epochs are those of the model they came from
    contention each step also records its CPU seconds (/usr/bin/time's %U + %S) and those the rest
               of the machine used meanwhile (/proc/stat's busy time less the child's): a step
               during which other processes used over 10% of a core is listed under the table
               in a WARNING. On a 2-core machine a competing process slows torch's threads far
               more than its share (threads wait on each other): treat such numbers as void and rerun.
               classify's per-epoch seconds (run/metrics.jsonl) are printed under the table: a
               median that holds when one epoch was slowed
    ratios     classify / fastText for train wall, train peak RSS and model size (and the
               compressed / quantized model sizes): above 1 means classify uses more

Reading it: the corpora's accuracy numbers mean little beyond "the classes are separable"
(see benchmarks/README.md); the point is how time, memory, model size and start-up grow with
the corpus and its vocabulary. Repeat runs on a busy machine vary by several percent.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PREDICT_TEXT = "Stocks rally as the Fed holds rates"
COLD_RUNS = 5
TIME_BIN = Path("/usr/bin/time")
MB = 2**20
FASTTEXT_PARAMS = {
    "dim": 10,
    "lr": 0.25,
    "wordNgrams": 2,
    "epoch": 5,
    "minCount": 1,
    "bucket": 10_000_000,
    "thread": 2,
    "loss": "softmax",
}
QUANTIZE_PARAMS = {"retrain": True, "cutoff": 100_000, "qnorm": True}

# -- fastText children (python -c CODE ARGS) ---------------------------------------------

FT_TRAIN = """
import json, sys, time
import fasttext
cfg = json.loads(sys.argv[1])
started = time.perf_counter()
model = fasttext.train_supervised(input=cfg["train"], **cfg["params"])
fit_s = time.perf_counter() - started
started = time.perf_counter()
model.save_model(cfg["out"])
print(json.dumps({"fit_s": fit_s, "save_s": time.perf_counter() - started, "words": len(model.words)}))
"""

FT_TEST = """
import json, sys, time
import fasttext
model = fasttext.load_model(sys.argv[1])
started = time.perf_counter()
n, precision_at_1, _ = model.test(sys.argv[2])  # one label per line: precision@1 is the accuracy
print(json.dumps({"n": n, "accuracy": precision_at_1, "test_s": time.perf_counter() - started}))
"""

FT_QUANTIZE = """
import json, sys, time
import fasttext
cfg = json.loads(sys.argv[1])
model = fasttext.load_model(cfg["bin"])
started = time.perf_counter()
try:
    model.quantize(input=cfg["train"], **cfg["params"])
    used = cfg["params"]
except Exception as error:  # fall back to fastText's documented defaults
    print(f"quantize({cfg['params']}) failed: {error!r}; using the defaults", file=sys.stderr)
    model = fasttext.load_model(cfg["bin"])
    model.quantize()
    used = "defaults: " + repr(error)
quantize_s = time.perf_counter() - started
model.save_model(cfg["out"])
print(json.dumps({"quantize_s": quantize_s, "params": used}))
"""

# fasttext-wheel 0.9.2's predict() calls np.array(..., copy=False), which numpy 2 rejects: then
# the same prediction through the binding predict() wraps
FT_PREDICT = """
import sys
import fasttext
m = fasttext.load_model(sys.argv[1])
try:
    print(m.predict(sys.argv[2]))
except ValueError:
    print(m.f.predict(sys.argv[2], 1, 0.0, "strict"))
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- measuring -------------------------------------------------------------------------


class CommandFailed(RuntimeError):
    pass


@dataclass
class Measured:
    wall_s: float
    peak_mb: float
    stdout: str
    returncode: int = 0
    stderr_log: Path | None = None
    rss_exact: bool = True  # False: os.wait4's ru_maxrss, an upper bound (see the docstring)
    cpu_s: float | None = None  # the child's user + system CPU seconds
    other_cpu_s: float | None = None  # CPU seconds the rest of the machine used meanwhile


def busy_cpu_s() -> float | None:
    """CPU seconds the whole machine has spent busy (not idle or iowait) since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal (guest time is inside user)
    busy = sum(fields[:3]) + sum(fields[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


class Runner:
    """Runs children one at a time in ``cwd``, measuring wall and the child's own peak RSS;
    each child's stdout and stderr are kept in ``logs``."""

    def __init__(self, cwd: Path, logs: Path):
        self.cwd = cwd
        self.logs = logs
        self.count = 0
        self.steps: list[dict[str, Any]] = []
        self.use_time = TIME_BIN.is_file() and os.access(TIME_BIN, os.X_OK)
        if not self.use_time:
            log(f"warning: {TIME_BIN} not found: peak RSS from os.wait4, an upper bound (see the docstring)")

    def run(self, cmd: list[str | Path], name: str, check: bool = True) -> Measured:
        argv = [str(c) for c in cmd]
        self.count += 1
        stem = self.logs / f"{self.count:02d}-{name}"
        # python -c CODE ... is shown as python -c '<code>' ...
        shown = shlex.join(["<code>" if i and argv[i - 1] == "-c" else a for i, a in enumerate(argv)])
        log("$ " + (shown if len(shown) < 300 else shown[:300] + " ..."))
        stderr_log = Path(f"{stem}.stderr")
        busy_before = busy_cpu_s()
        with stderr_log.open("w") as err:
            if self.use_time:
                time_file = Path(f"{stem}.time")
                full = [str(TIME_BIN), "-f", "%e %M %U %S", "-o", str(time_file), "--", *argv]
                started = time.perf_counter()
                proc = subprocess.run(full, cwd=self.cwd, stdout=subprocess.PIPE, stderr=err, text=True)
                wall = time.perf_counter() - started
                returncode, stdout = proc.returncode, proc.stdout
                # a failed command adds a "Command exited with non-zero status N" line before ours
                _, max_kb, user, system = time_file.read_text().split()[-4:]
                peak_mb, cpu = int(max_kb) / 1024, float(user) + float(system)
                exact = True
            else:
                started = time.perf_counter()
                popen = subprocess.Popen(argv, cwd=self.cwd, stdout=subprocess.PIPE, stderr=err, text=True)
                stdout = popen.stdout.read()
                popen.stdout.close()
                _, status, usage = os.wait4(popen.pid, 0)
                wall = time.perf_counter() - started
                returncode = popen.returncode = os.waitstatus_to_exitcode(status)
                peak_mb, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
                exact = False
        busy_after = busy_cpu_s()
        other = None
        if busy_before is not None and busy_after is not None:
            other = max(0.0, busy_after - busy_before - cpu)
        self.steps.append({"step": stem.name, "wall_s": wall, "peak_mb": peak_mb, "cpu_s": cpu, "other_cpu_s": other})
        Path(f"{stem}.stdout").write_text(stdout)
        if check and returncode != 0:
            tail = stderr_log.read_text(errors="replace")[-2000:]
            raise CommandFailed(f"{name} exited with {returncode}: {shown[:300]}\n{tail}")
        return Measured(wall, peak_mb, stdout, returncode, stderr_log, exact, cpu, other)

    def cold_start(self, cmd: list[str | Path], name: str) -> dict[str, Any]:
        """One untimed warm-up, then COLD_RUNS timed runs: median wall, max peak RSS."""
        warm = self.run(cmd, f"{name}-warmup")
        runs = [self.run(cmd, f"{name}-{i}") for i in range(1, COLD_RUNS + 1)]
        walls = [r.wall_s for r in runs]
        return {
            "median_s": statistics.median(walls),
            "walls_s": walls,
            "peak_mb": max(r.peak_mb for r in runs),
            "peaks_mb": [r.peak_mb for r in runs],
            "output": warm.stdout.strip()[:500],
        }


def epoch_seconds(run: Path) -> list[float]:
    """Each epoch's seconds as the run's metrics.jsonl records them (empty if it cannot be read)."""
    try:
        lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        return [float(json.loads(line)["seconds"]) for line in lines if line.strip()]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def dir_size(root: Path) -> tuple[int, dict[str, int]]:
    """Total bytes of the files under ``root``, skipping a top-level checkpoint/; and each file's."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] == "checkpoint" or not path.is_file() or path.is_symlink():
            continue
        files[str(rel)] = path.stat().st_size
    return sum(files.values()), files


# -- results ---------------------------------------------------------------------------


@dataclass
class Row:
    system: str
    train_docs: int | None = None
    prepare_s: float | str | None = None
    prepare_mb: float | None = None
    train_s: float | str | None = None
    train_mb: float | str | None = None
    epochs: str | None = None
    model_mb: float | None = None
    accuracy: float | str | None = None
    cold_s: float | None = None
    cold_mb: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


COLUMNS = (
    ("system", "system"),
    ("train_docs", "train docs"),
    ("prepare_s", "prepare s"),
    ("prepare_mb", "prepare peak MB"),
    ("train_s", "train s (whole command)"),
    ("train_mb", "train peak MB"),
    ("epochs", "epochs run"),
    ("model_mb", "model on disk MB"),
    ("accuracy", "test accuracy"),
    ("cold_s", f"predict cold start s (median of {COLD_RUNS})"),
    ("cold_mb", "predict peak MB"),
)


def cell(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if key == "train_docs":
        return f"{value:,}"
    if key == "accuracy":
        return f"{value:.4f}"
    if key.endswith("_mb"):
        return f"{value:,.1f}" if key == "model_mb" else f"{value:,.0f}"
    return f"{value:.2f}" if key == "cold_s" else f"{value:.1f}"


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "|".join("---" if key == "system" else "---:" for key, _ in COLUMNS) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(cell(key, getattr(row, key)) for key, _ in COLUMNS) + " |")
    return "\n".join(lines)


def ratio(a: Any, b: Any) -> float | None:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
        return a / b
    return None


# -- classify --------------------------------------------------------------------------


def classify_rows(runner: Runner, classify: Path, corpus: Path, work: Path, compress_args: list[str]) -> list[Row]:
    data, run = work / "data", work / "run"
    test_csv = corpus / "test.csv"
    log(f"== classify on {corpus}")
    prep = runner.run([classify, "prepare", "--from", corpus, "--out", data], "classify-prepare")
    manifest_path = data / "manifest.json"
    train_docs = None
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        train_docs = manifest.get("splits", {}).get("train", {}).get("rows")
    train = runner.run([classify, "train", "--data", data, "--out", run], "classify-train")
    summary = json.loads(train.stdout)
    size, files = dir_size(run)
    evaluate = runner.run(
        [classify, "evaluate", "--model", run, "--data", test_csv, "--format", "json"], "classify-evaluate"
    )
    report = json.loads(evaluate.stdout)
    cold = runner.cold_start([classify, "predict", "--model", run, PREDICT_TEXT], "classify-predict")
    row = Row(
        "classify",
        train_docs=train_docs,
        prepare_s=prep.wall_s,
        prepare_mb=prep.peak_mb,
        train_s=train.wall_s,
        train_mb=train.peak_mb,
        epochs=f"{summary.get('epochs_run')} (best {summary.get('best_epoch')})",
        model_mb=size / MB,
        accuracy=report["accuracy"],
        cold_s=cold["median_s"],
        cold_mb=cold["peak_mb"],
        extra={
            "train_summary": summary,
            "epoch_s": epoch_seconds(run),
            "run_dir": str(run),
            "run_files_bytes": files,
            "model_bytes": size,
            "evaluate": {"wall_s": evaluate.wall_s, "peak_mb": evaluate.peak_mb, "n": report.get("n")},
            "predict_cold_start": cold,
            "rss_exact": prep.rss_exact,
        },
    )
    rows = [row]

    has_compress = runner.run([classify, "compress", "--help"], "classify-compress-help", check=False)
    if has_compress.returncode != 0:
        log(f"`classify compress --help` exited {has_compress.returncode}: no compress command, its row is n/a")
        rows.append(Row("classify compressed", accuracy="n/a (no compress command)"))
        return rows
    rows.append(compressed_row(runner, classify, corpus, work, "classify compressed", compress_args, row))
    return rows


def compressed_row(
    runner: Runner, classify: Path, corpus: Path, work: Path, name: str, compress_args: list[str], full: Row
) -> Row:
    """``classify compress`` of WORK/run with ``compress_args``: its size, test accuracy and start-up."""
    step = name.replace(" ", "-")
    run, small, test_csv = work / "run", work / step, corpus / "test.csv"
    comp = runner.run([classify, "compress", "--model", run, "--out", small, *compress_args], step, check=False)
    if comp.returncode != 0:
        stderr = comp.stderr_log.read_text(errors="replace") if comp.stderr_log else ""
        log(f"classify compress exited {comp.returncode}:\n{stderr[-2000:]}")
        return Row(name, accuracy=f"n/a (compress exited {comp.returncode})")
    try:
        comp_out: Any = json.loads(comp.stdout)
    except ValueError:
        comp_out = comp.stdout.strip()[:2000]
    small_size, small_files = dir_size(small)
    small_eval = runner.run(
        [classify, "evaluate", "--model", small, "--data", test_csv, "--format", "json"], f"{step}-evaluate"
    )
    small_report = json.loads(small_eval.stdout)
    small_cold = runner.cold_start([classify, "predict", "--model", small, PREDICT_TEXT], f"{step}-predict")
    return Row(
        name,
        train_docs=full.train_docs,
        prepare_s=full.prepare_s,
        prepare_mb=full.prepare_mb,
        train_s=f"+{comp.wall_s:.1f} (compress)",
        train_mb=f"+{comp.peak_mb:,.0f} (compress)",
        epochs=full.epochs,
        model_mb=small_size / MB,
        accuracy=small_report["accuracy"],
        cold_s=small_cold["median_s"],
        cold_mb=small_cold["peak_mb"],
        extra={
            "compress_args": compress_args,
            "compress": {"wall_s": comp.wall_s, "peak_mb": comp.peak_mb, "stdout": comp_out},
            "model_dir": str(small),
            "model_files_bytes": small_files,
            "model_bytes": small_size,
            "evaluate": {"wall_s": small_eval.wall_s, "peak_mb": small_eval.peak_mb, "n": small_report.get("n")},
            "predict_cold_start": small_cold,
        },
    )


# -- fastText --------------------------------------------------------------------------


def fasttext_installed(python: str) -> bool:
    probe = subprocess.run([python, "-c", "import fasttext"], capture_output=True, text=True)
    return probe.returncode == 0


def write_fasttext_file(source: Path, out: Path) -> int:
    """``__label__K tok tok ...`` per row of an AG News CSV, tokenized as classify tokenizes."""
    from classify_cli.text.tokens import make_tokenizer

    tok = make_tokenizer({"name": "basic_english", "clean_text": True})
    rows = 0
    with source.open(newline="", encoding="utf-8") as f, out.open("w", encoding="utf-8") as w:
        for record in csv.reader(f):
            w.write(f"__label__{record[0]} {' '.join(tok(record[1] + ' ' + record[2]))}\n")
            rows += 1
    return rows


def fasttext_rows(runner: Runner, python: str, corpus: Path, work: Path) -> list[Row]:
    log(f"== fastText on {corpus}")
    train_file, test_file = work / "ft.train", work / "ft.test"
    started = time.perf_counter()
    train_docs = write_fasttext_file(corpus / "train.csv", train_file)
    write_fasttext_file(corpus / "test.csv", test_file)
    tokenize_s = time.perf_counter() - started
    log(f"tokenized {train_docs:,} train rows for fastText in {tokenize_s:.1f}s (untimed in the table)")
    bin_path, ftz_path = work / "ft.bin", work / "ft.ftz"

    train = runner.run(
        [
            python,
            "-c",
            FT_TRAIN,
            json.dumps({"train": str(train_file), "out": str(bin_path), "params": FASTTEXT_PARAMS}),
        ],
        "fasttext-train",
    )
    fit = json.loads(train.stdout)
    test = runner.run([python, "-c", FT_TEST, bin_path, test_file], "fasttext-test")
    tested = json.loads(test.stdout)
    from classify_cli.text.tokens import make_tokenizer

    query = " ".join(make_tokenizer({"name": "basic_english", "clean_text": True})(PREDICT_TEXT))
    cold = runner.cold_start([python, "-c", FT_PREDICT, bin_path, query], "fasttext-predict")
    bin_size = bin_path.stat().st_size
    row = Row(
        "fastText",
        train_docs=train_docs,
        prepare_s="n/a (tokenized untimed)",
        train_s=f"{train.wall_s:.1f} (fit {fit['fit_s']:.1f})",
        train_mb=train.peak_mb,
        epochs=str(FASTTEXT_PARAMS["epoch"]),
        model_mb=bin_size / MB,
        accuracy=tested["accuracy"],
        cold_s=cold["median_s"],
        cold_mb=cold["peak_mb"],
        extra={
            "params": FASTTEXT_PARAMS,
            "train_wall_s": train.wall_s,
            "fit_s": fit["fit_s"],
            "save_s": fit["save_s"],
            "words": fit["words"],
            "tokenize_untimed_s": tokenize_s,
            "model_bytes": bin_size,
            "test": {"wall_s": test.wall_s, "peak_mb": test.peak_mb, **tested},
            "predict_cold_start": cold,
            "rss_exact": train.rss_exact,
        },
    )

    quant = runner.run(
        [
            python,
            "-c",
            FT_QUANTIZE,
            json.dumps(
                {"bin": str(bin_path), "train": str(train_file), "out": str(ftz_path), "params": QUANTIZE_PARAMS}
            ),
        ],
        "fasttext-quantize",
    )
    quantized = json.loads(quant.stdout)
    qtest = runner.run([python, "-c", FT_TEST, ftz_path, test_file], "fasttext-ftz-test")
    qtested = json.loads(qtest.stdout)
    qcold = runner.cold_start([python, "-c", FT_PREDICT, ftz_path, query], "fasttext-ftz-predict")
    ftz_size = ftz_path.stat().st_size
    qrow = Row(
        "fastText quantized",
        train_docs=train_docs,
        prepare_s="n/a (tokenized untimed)",
        train_s=f"+{quant.wall_s:.1f} (quantize)",
        train_mb=f"+{quant.peak_mb:,.0f} (quantize)",
        epochs=row.epochs,
        model_mb=ftz_size / MB,
        accuracy=qtested["accuracy"],
        cold_s=qcold["median_s"],
        cold_mb=qcold["peak_mb"],
        extra={
            "quantize": {"wall_s": quant.wall_s, "peak_mb": quant.peak_mb, **quantized},
            "model_bytes": ftz_size,
            "test": {"wall_s": qtest.wall_s, "peak_mb": qtest.peak_mb, **qtested},
            "predict_cold_start": qcold,
        },
    )
    return [row, qrow]


# -- machine ---------------------------------------------------------------------------


def interpreter_of(executable: Path) -> str:
    """The Python a console script runs under (its #! line), else this one."""
    try:
        with executable.open("rb") as f:
            first = f.readline().decode(errors="replace").strip()
        if first.startswith("#!"):
            parts = first[2:].split()
            if parts and Path(parts[0]).name.startswith("python"):
                return parts[0]
    except OSError:
        pass
    return sys.executable


def machine_info(classify: Path) -> dict[str, Any]:
    mem_kb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    probe = subprocess.run(
        [
            interpreter_of(classify),
            "-c",
            "import json, platform, torch, classify_cli; print(json.dumps({'python': platform.python_version(), "
            "'torch': torch.__version__, 'package': classify_cli.__file__}))",
        ],
        capture_output=True,
        text=True,
    )
    info: dict[str, Any] = json.loads(probe.stdout) if probe.returncode == 0 else {}
    package_dir = Path(info["package"]).parent if "package" in info else None
    commit = dirty = None
    if package_dir is not None:
        rev = subprocess.run(["git", "-C", package_dir, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        if rev.returncode == 0:
            commit = rev.stdout.strip()
            status = subprocess.run(
                ["git", "-C", package_dir, "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
            )
            dirty = bool(status.stdout.strip())
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "memory_gib": mem_kb / 2**20 if mem_kb else None,
        "script_python": platform.python_version(),
        "classify": str(classify),
        "classify_python": info.get("python"),
        "torch": info.get("torch"),
        "classify_package": str(package_dir) if package_dir else None,
        "classify_commit": commit,
        "classify_tree_dirty": dirty,
    }


def machine_line(m: dict[str, Any]) -> str:
    memory = f"{m['memory_gib']:.1f} GiB" if m["memory_gib"] else "?"
    commit = (
        f"git {m['classify_commit']}{' (modified)' if m['classify_tree_dirty'] else ''}"
        if m["classify_commit"]
        else "no git"
    )
    return (
        f"{m['date_utc']} · nproc {m['nproc']} ({m['cpu']}) · memory {memory} · Python {m['classify_python']} "
        f"(script: {m['script_python']}) · torch {m['torch']} · classify {m['classify_package']} ({commit})"
    )


# -- main ------------------------------------------------------------------------------


def contention(steps: list[dict[str, Any]]) -> list[str]:
    """The steps during which the rest of the machine used more than 10% of one core (and 0.5 CPU s)."""
    out = []
    for step in steps:
        other = step["other_cpu_s"]
        if other is not None and other > max(0.5, 0.1 * step["wall_s"]):
            out.append(f"{step['step']} {other:.1f}/{step['wall_s']:.1f} s")
    return out


def ratio_lines(rows: list[Row]) -> list[str]:
    by = {r.system: r for r in rows}
    c, cc, f, fq = (by.get(n) for n in ("classify", "classify compressed", "fastText", "fastText quantized"))
    if c is None or f is None:
        return []
    pairs = [
        ("train wall (whole command)", c.train_s, f.extra.get("train_wall_s")),
        ("train wall vs fastText's in-process fit", c.train_s, f.extra.get("fit_s")),
        ("train peak RSS", c.train_mb, f.train_mb),
        ("model size (run dir vs .bin)", c.model_mb, f.model_mb),
    ]
    if cc is not None and fq is not None:
        pairs.append(("model size (compressed vs .ftz)", cc.model_mb, fq.model_mb))
    at = by.get("classify at the .ftz size")
    if at is not None and fq is not None:
        pairs.append(("model size (at the .ftz size vs .ftz)", at.model_mb, fq.model_mb))
    pairs.append(("predict cold start", c.cold_s, f.cold_s))
    out = []
    for name, a, b in pairs:
        r = ratio(a, b)
        if r is not None:
            out.append(f"- classify / fastText, {name}: {r:.2f}×")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="+", type=Path, metavar="CORPUS_DIR")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (WORK/NAME is remade per corpus)")
    parser.add_argument("--json", type=Path, help="also write every number here")
    parser.add_argument("--skip-fasttext", action="store_true")
    parser.add_argument(
        "--classify",
        type=Path,
        default=Path(sys.executable).parent / "classify",
        help="the classify executable [default: the one next to this interpreter]",
    )
    parser.add_argument("--compress-args", default="", help="extra arguments for `classify compress` (one string)")
    args = parser.parse_args(argv)

    classify = args.classify.absolute()
    if not os.access(classify, os.X_OK):
        parser.error(f"{classify} is not an executable")
    for corpus in args.corpora:
        for name in ("train.csv", "test.csv", "classes.txt"):
            if not (corpus / name).is_file():
                parser.error(f"{corpus} lacks {name} (AG News layout, see benchmarks/corpus.py)")
    compress_args = shlex.split(args.compress_args)
    work_root = args.work.absolute()
    work_root.mkdir(parents=True, exist_ok=True)
    skip_ft = args.skip_fasttext
    ft_note = None
    if not skip_ft and not fasttext_installed(sys.executable):
        ft_note = f"fastText skipped: `import fasttext` fails in {sys.executable} (pip install fasttext-wheel)"
        log(ft_note)
        skip_ft = True

    machine = machine_info(classify)
    results: dict[str, Any] = {"machine": machine, "corpora": {}, "notes": [ft_note] if ft_note else []}
    used_names: set[str] = set()
    for corpus in args.corpora:
        corpus = corpus.absolute()
        name = corpus.name
        while name in used_names:
            name += "_"
        used_names.add(name)
        work = work_root / name
        if work.exists():
            shutil.rmtree(work)
        (work / "logs").mkdir(parents=True)
        runner = Runner(work, work / "logs")
        rows = classify_rows(runner, classify, corpus, work, compress_args)
        if not skip_ft:
            try:
                rows += fasttext_rows(runner, sys.executable, corpus, work)
                ftz = next((r for r in rows if r.system == "fastText quantized" and r.extra), None)
                if ftz is not None and rows[0].extra:  # the same size as fastText's .ftz, file for file
                    at = ["--max-size", str(ftz.extra["model_bytes"])]
                    rows.append(
                        compressed_row(runner, classify, corpus, work, "classify at the .ftz size", at, rows[0])
                    )
            except CommandFailed as error:
                log(f"fastText failed: {error}")
                rows.append(Row("fastText", accuracy=f"failed: {str(error).splitlines()[0]}"))
        ratios = ratio_lines(rows)
        busy = contention(runner.steps)
        results["corpora"][name] = {
            "path": str(corpus),
            "rows": [asdict(r) for r in rows],
            "ratios": ratios,
            "steps": runner.steps,
            "contention": busy,
        }
        print(f"\n### {name} ({corpus})\n")
        print(markdown_table(rows))
        if ratios:
            print()
            print("\n".join(ratios))
        c = rows[0]
        print()
        print(
            f"classify run dir ({c.extra['model_bytes']:,} bytes, checkpoint/ excluded): "
            + ", ".join(f"{f} {b:,}" for f, b in c.extra["run_files_bytes"].items())
        )
        epochs = c.extra.get("epoch_s") or []
        if epochs:
            print(
                f"classify epochs (run/metrics.jsonl): median {statistics.median(epochs):.1f} s, each "
                + " ".join(f"{e:.1f}" for e in epochs)
            )
        print(f"classify evaluate (test.csv, whole command): {c.extra['evaluate']['wall_s']:.1f} s")
        for r in rows[1:]:
            if r.system == "classify compressed" and "model_files_bytes" in r.extra:
                print(
                    f"classify compressed dir ({r.extra['model_bytes']:,} bytes): "
                    + ", ".join(f"{f} {b:,}" for f, b in r.extra["model_files_bytes"].items())
                )
            if r.system == "fastText" and "fit_s" in r.extra:
                print(
                    f"fastText: train_supervised {r.extra['fit_s']:.1f} s in-process, whole child "
                    f"{r.extra['train_wall_s']:.1f} s; {r.extra['words']:,} words; test() "
                    f"{r.extra['test']['wall_s']:.1f} s whole child"
                )
            if r.system == "fastText quantized" and "quantize" in r.extra:
                q = r.extra["quantize"]
                print(f"fastText quantize: {q['quantize_s']:.1f} s in-process ({q['params']})")
        if busy:
            print(
                "\nWARNING: other processes were busy during these steps (CPU seconds they used / the step's wall): "
                + "; ".join(busy)
                + ". Their times (and on few cores, the others' too) are inflated: rerun on a quiet machine."
            )
        sys.stdout.flush()

    print()
    print(machine_line(machine))
    if ft_note:
        print(ft_note)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
