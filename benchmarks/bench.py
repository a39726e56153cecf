"""Benchmark: classify against fastText and scikit-learn on agnews7k (accuracy) and agnews-x16 (speed).

    python benchmarks/bench.py [--skip-x16] [--only classify|fasttext|sklearn] [--json PATH]
                                 [--scaling 1 16 160] [--epoch-ratio 5]

Prints one markdown table on stdout; progress goes to stderr. Every measurement runs in its
own process so that its peak RSS (``ru_maxrss`` from ``os.wait4``) is its own: classify
through its command line, in-process timings (classify's predictor, fastText, scikit-learn)
through this module's hidden ``--worker`` mode. On Linux a child's ``ru_maxrss`` starts at
its parent's peak RSS (the high-water mark survives fork and exec), so this process stays
small: it never imports numpy, torch or a reference library before the last child has run.
Derived data (prepared splits, runs, agnews-x16, fastText files) goes to a temporary
directory, never into the repository. The numbers are measurements, not checks: nothing
here asserts on them.

"agnews-x16" is ``agnews7k/train.csv`` repeated 16 times in a seeded shuffled order (97,280
rows), with agnews7k's ``test.csv`` beside it so that ``prepare`` carves no test split. It is
for speed only: its accuracy means nothing.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"
CONFIG = REPO / "configs" / "agnews.toml"
X16_REPEATS = 16
X16_EPOCHS = 5
REPEATS = 3  # timed repetitions of in-process prediction; the median is reported

FASTTEXT_RECIPES = {
    # Joulin et al. 2016 ("Bag of Tricks"): 10 hidden units, bigrams, 5 epochs
    "paper": {"dim": 10, "lr": 0.25, "wordNgrams": 2, "epoch": 5},
    "tuned": {"dim": 50, "lr": 1.0, "wordNgrams": 2, "epoch": 25},
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- results ---------------------------------------------------------------------------


@dataclass
class Row:
    system: str
    dataset: str
    accuracy: float | str | None = None
    prepare_s: float | None = None
    train_s: float | None = None
    epoch_s: float | None = None
    docs_per_s: float | None = None
    peak_rss_mb: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # in the JSON only


COLUMNS = (
    ("system", "system"),
    ("dataset", "dataset"),
    ("accuracy", "test accuracy"),
    ("prepare_s", "prepare s"),
    ("train_s", "train s"),
    ("epoch_s", "train epoch s (median)"),
    ("docs_per_s", "predict/evaluate docs/s"),
    ("peak_rss_mb", "peak RSS MB"),
)


def format_cell(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if key == "accuracy":
        return f"{value:.4f}"
    if key in ("docs_per_s", "peak_rss_mb"):
        return f"{value:,.0f}"
    return f"{value:.2f}"


def markdown_table(rows: Sequence[Row]) -> str:
    lines = [
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "|".join("---" if key in ("system", "dataset") else "---:" for key, _ in COLUMNS) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(format_cell(key, getattr(row, key)) for key, _ in COLUMNS) + " |")
    return "\n".join(lines)


def machine_line() -> str:
    """Date, CPU and versions; imports numpy and torch, so call it after the last measurement."""
    import numpy

    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = "not installed"
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    cpu = platform.processor() or platform.machine()
    return (
        f"{date} · CPU {cpu} × {os.cpu_count()} · Python {platform.python_version()} · "
        f"torch {torch_version} · numpy {numpy.__version__}"
    )


# -- measuring -------------------------------------------------------------------------


class CommandFailed(RuntimeError):
    pass


def run_measured(cmd: Sequence[str | Path]) -> tuple[float, float, str]:
    """Run ``cmd`` to completion: (wall seconds, peak RSS of the child in MB, its stdout).

    stderr passes through to ours; a non-zero exit raises CommandFailed.
    """
    argv = [str(c) for c in cmd]
    log("$ " + " ".join(argv))
    floor_mb = own_peak_rss_mb()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=REPO)
    stdout = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen
    if proc.returncode != 0:
        raise CommandFailed(f"`{' '.join(argv[1:4])} ...` exited with {proc.returncode}")
    peak_mb = usage.ru_maxrss / 1024  # KiB on Linux
    if peak_mb <= floor_mb:
        log(
            f"warning: child peak RSS {peak_mb:.0f} MB is not above this process's own {floor_mb:.0f} MB: an upper bound"
        )
    return wall, peak_mb, stdout


def own_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_time(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def installed(module: str) -> bool:
    """Whether ``module`` can be found, without importing it here (see the module docstring)."""
    return importlib.util.find_spec(module) is not None


# -- data ------------------------------------------------------------------------------


def iter_agnews(path: Path) -> Iterator[tuple[str, str]]:
    """(class index, title + " " + description) per row of an AG News CSV."""
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            yield row[0], " ".join(row[1:])


def make_x16(agnews7k: Path, out: Path) -> Path:
    """agnews7k's train rows repeated 16 times in a seeded shuffled order, + its test.csv and classes.txt."""
    with (agnews7k / "train.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    # shuffling indices is the same permutation as shuffling ``rows * 16`` and keeps one copy
    order = list(range(len(rows))) * X16_REPEATS
    random.Random(0).shuffle(order)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "train.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows(rows[i] for i in order)
    shutil.copyfile(agnews7k / "classes.txt", out / "classes.txt")
    shutil.copyfile(agnews7k / "test.csv", out / "test.csv")
    log(f"agnews-x16: {len(order):,} rows in {out}")
    return out


def write_fasttext_file(source: Path, out: Path) -> Path:
    """``__label__N tokens`` per line, tokenized exactly as classify tokenizes (basic_english
    after repairing AG News' entities), so both systems see the same words; written in a
    worker process, which keeps numpy out of this one."""
    run_worker("fasttext_file", {"source": str(source), "out": str(out)})
    return out


def worker_fasttext_file(config: dict[str, Any]) -> dict[str, Any]:
    from classify_cli.text.tokens import basic_english, clean_text

    rows = 0
    with Path(config["out"]).open("w", encoding="utf-8") as f:
        for label, text in iter_agnews(Path(config["source"])):
            f.write(f"__label__{label} {' '.join(basic_english(clean_text(text)))}\n")
            rows += 1
    return {"rows": rows}


# -- classify --------------------------------------------------------------------------


def classify_cmd(*args: str | Path) -> list[str | Path]:
    return [sys.executable, "-m", "classify_cli", *args]


def median_epoch_seconds(run: Path) -> float:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return statistics.median(json.loads(line)["seconds"] for line in lines if line.strip())


def bench_classify(source: Path, dataset: str, work: Path, *, epochs: int | None, evaluate: bool) -> Row:
    data, run = work / f"classify-{dataset}-data", work / f"classify-{dataset}-run"
    prepare_s, prepare_rss, _ = run_measured(
        classify_cmd("prepare", "--from", source, "--out", data, "--config", CONFIG)
    )
    train_args = ["train", "--data", data, "--out", run, "--config", CONFIG, "--device", "cpu"]
    if epochs is not None:
        train_args += ["--epochs", str(epochs)]
    train_s, train_rss, train_out = run_measured(classify_cmd(*train_args))
    row = Row(
        "classify",
        dataset,
        accuracy="n/a (speed only)",
        prepare_s=prepare_s,
        train_s=train_s,
        epoch_s=median_epoch_seconds(run),
        extra={"rss_mb": {"prepare": prepare_rss, "train": train_rss}, "train_summary": json.loads(train_out)},
    )
    if evaluate:
        eval_s, eval_rss, eval_out = run_measured(
            classify_cmd("evaluate", "--model", run, "--data", data, "--format", "json")
        )
        report = json.loads(eval_out)
        row.accuracy = report["accuracy"]
        row.extra["rss_mb"]["evaluate"] = eval_rss
        row.extra["evaluate_command"] = {"n": report["n"], "seconds": eval_s, "docs_per_s": report["n"] / eval_s}
    row.peak_rss_mb = max(row.extra["rss_mb"].values())
    # the evaluate command's docs/s is mostly interpreter start-up: time the predictor in-process
    texts = source / ("test.csv" if evaluate else "train.csv")
    result, _ = run_worker("predictor", {"run": str(run), "texts": str(texts)})
    row.docs_per_s = result["docs"] / result["seconds"]
    row.extra["predictor"] = result
    return row


def bench_commands(x16: Path, work: Path) -> list[Row]:
    """``evaluate`` and ``predict --file`` over all of agnews-x16, as a user runs them.

    docs/s is counted after start-up: the same command on a one-row file is timed too
    (median of 3) and subtracted, which leaves reading, tokenizing, scoring and writing.
    """
    run = work / "classify-agnews-x16-run"
    (work / "one-row").mkdir(exist_ok=True)
    one = work / "one-row" / "train.csv"
    shutil.copyfile(x16 / "classes.txt", work / "one-row" / "classes.txt")  # label names, as beside x16
    with (x16 / "train.csv").open(encoding="utf-8") as f:
        one.write_text(f.readline(), encoding="utf-8")
    n = sum(1 for _ in iter_agnews(x16 / "train.csv"))
    commands = {
        "classify evaluate (command)": ["evaluate", "--model", run, "--format", "json", "--data"],
        "classify predict --file, csv out (command)": ["predict", "--model", run, "--format", "csv", "--file"],
        "classify predict --file, jsonl out (command)": ["predict", "--model", run, "--format", "jsonl", "--file"],
    }
    rows = []
    for name, args in commands.items():
        startup = statistics.median(run_measured(classify_cmd(*args, one))[0] for _ in range(REPEATS))
        wall, rss, _ = run_measured(classify_cmd(*args, x16 / "train.csv"))
        rows.append(
            Row(
                name,
                "agnews-x16",
                accuracy="n/a (speed only)",
                docs_per_s=n / max(wall - startup, 1e-9),
                peak_rss_mb=rss,
                extra={"wall_s": wall, "startup_s": startup, "docs": n},
            )
        )
    return rows


def cold_start(work: Path) -> dict[str, float]:
    """Median wall of `classify --help` and of `classify predict "text"` (model of agnews7k)."""
    run = work / "classify-agnews7k-run"
    timings = {
        "classify --help": [run_measured(classify_cmd("--help"))[0] for _ in range(5)],
        'classify predict "text"': [
            run_measured(classify_cmd("predict", "--model", run, "Stocks rally as the Fed holds rates"))[0]
            for _ in range(5)
        ],
    }
    return {name: statistics.median(values) for name, values in timings.items()}


# -- scaling ---------------------------------------------------------------------------


def make_repeated(agnews7k: Path, out: Path, repeats: int) -> Path:
    """agnews7k's train rows ``repeats`` times in a seeded shuffled order (speed only)."""
    with (agnews7k / "train.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    order = list(range(len(rows))) * repeats
    random.Random(repeats).shuffle(order)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "train.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows(rows[i] for i in order)
    shutil.copyfile(agnews7k / "classes.txt", out / "classes.txt")
    shutil.copyfile(agnews7k / "test.csv", out / "test.csv")
    return out


def bench_scaling(agnews7k: Path, work: Path, sizes: Sequence[int]) -> str:
    """prepare and train (2 epochs) time and peak memory as the corpus grows."""
    lines = [
        "| train docs | prepare s | prepare peak RSS MB | train s (2 epochs) | epoch s (median) | train docs/s | train peak RSS MB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for repeats in sizes:
        source = agnews7k if repeats == 1 else make_repeated(agnews7k, work / f"agnews-x{repeats}", repeats)
        data, run = work / f"scale-{repeats}-data", work / f"scale-{repeats}-run"
        prep_s, prep_rss, _ = run_measured(classify_cmd("prepare", "--from", source, "--out", data, "--config", CONFIG))
        train_s, train_rss, out = run_measured(
            classify_cmd("train", "--data", data, "--out", run, "--config", CONFIG, "--device", "cpu", "--epochs", "2")
        )
        manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
        docs = manifest["splits"]["train"]["rows"]
        epoch = median_epoch_seconds(run)
        lines.append(
            f"| {docs:,} | {prep_s:.2f} | {prep_rss:,.0f} | {train_s:.2f} | {epoch:.2f} | {docs / epoch:,.0f} | {train_rss:,.0f} |"
        )
    return "\n".join(lines)


def bench_epoch_ratio(x16: Path, work: Path, repeats: int) -> str:
    """classify's and fastText's agnews-x16 epoch, alternately ``repeats`` times: the ratio of
    medians is steadier than any single pair on a noisy machine."""
    data = work / "classify-agnews-x16-data"
    if not (data / "manifest.json").is_file():
        run_measured(classify_cmd("prepare", "--from", x16, "--out", data, "--config", CONFIG))
    ft_file = work / "fasttext-x16.train"
    if not ft_file.is_file():
        write_fasttext_file(x16 / "train.csv", ft_file)
    params = FASTTEXT_RECIPES["paper"] | {"epoch": X16_EPOCHS}
    lines = [
        "| run | classify epoch s (median of 5) | fastText epoch s (5 epochs / 5) | ratio |",
        "|---:|---:|---:|---:|",
    ]
    ours, theirs = [], []
    for i in range(1, repeats + 1):
        run = work / f"ratio-run-{i}"
        shutil.rmtree(run, ignore_errors=True)
        run_measured(
            classify_cmd(
                "train",
                "--data",
                data,
                "--out",
                run,
                "--config",
                CONFIG,
                "--device",
                "cpu",
                "--epochs",
                str(X16_EPOCHS),
            )
        )
        ours.append(median_epoch_seconds(run))
        result, _ = run_worker("fasttext", {"train": str(ft_file), "test": str(ft_file), "params": params})
        theirs.append(result["train_s"] / X16_EPOCHS)
        lines.append(f"| {i} | {ours[-1]:.2f} | {theirs[-1]:.2f} | {ours[-1] / theirs[-1]:.2f}× |")
    mine, ft = statistics.median(ours), statistics.median(theirs)
    lines.append(f"| median | {mine:.2f} | {ft:.2f} | {mine / ft:.2f}× |")
    return "\n".join(lines)


# -- in-process measurements (each in a --worker process) -------------------------------


def run_worker(kind: str, config: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Run one in-process measurement in a child process: (its JSON result, its peak RSS MB)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--worker-config", json.dumps(config)]
    _, rss, stdout = run_measured(cmd)
    return json.loads(stdout), rss


def worker_predictor(config: dict[str, Any]) -> dict[str, Any]:
    """Throughput of classify's numpy predictor, loaded once, on every core as the commands
    use it (batches of 4,096 texts tokenized in forked workers): texts in memory -> logits."""
    from classify_cli.model.bundle import load_bundle
    from classify_cli.model.inference import Predictor, score_batches

    predictor = Predictor(load_bundle(Path(config["run"])))
    texts = [text for _, text in iter_agnews(Path(config["texts"]))]
    batches = [texts[i : i + 4096] for i in range(0, len(texts), 4096)]
    return {
        "docs": len(texts),
        "seconds": median_time(lambda: [s for _, s in score_batches(predictor, batches, lambda b: b)]),
    }


def worker_fasttext(config: dict[str, Any]) -> dict[str, Any]:
    import fasttext

    params = {"minCount": 1, "thread": 2, "verbose": 0, **config["params"]}
    started = time.perf_counter()
    model = fasttext.train_supervised(input=config["train"], **params)
    train_s = time.perf_counter() - started
    # fasttext-wheel's predict() breaks under numpy 2; test() does not. With one label per
    # line, precision@1 is the accuracy.
    n, precision_at_1, _ = model.test(config["test"])
    test_s = median_time(lambda: model.test(config["test"]))
    return {"train_s": train_s, "accuracy": precision_at_1, "test_n": n, "test_s": test_s, "params": params}


def worker_sklearn(config: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    train, test = list(iter_agnews(Path(config["train"]))), list(iter_agnews(Path(config["test"])))
    train_texts, train_labels = [t for _, t in train], [y for y, _ in train]
    test_texts, test_labels = [t for _, t in test], np.array([y for y, _ in test])
    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    classifier = LinearSVC(C=0.5).fit(vectorizer.fit_transform(train_texts), train_labels)
    train_s = time.perf_counter() - started
    accuracy = float((classifier.predict(vectorizer.transform(test_texts)) == test_labels).mean())
    predict_s = median_time(lambda: classifier.predict(vectorizer.transform(test_texts)))
    return {
        "train_s": train_s,
        "accuracy": accuracy,
        "test_n": len(test_texts),
        "test_s": predict_s,
        "features": len(vectorizer.vocabulary_),
    }


WORKERS = {
    "predictor": worker_predictor,
    "fasttext": worker_fasttext,
    "fasttext_file": worker_fasttext_file,
    "sklearn": worker_sklearn,
}


def bench_fasttext(agnews7k: Path, x16: Path | None, work: Path) -> list[Row]:
    if not installed("fasttext"):
        return [Row("fastText", "—", accuracy="not installed")]
    started = time.perf_counter()
    train = write_fasttext_file(agnews7k / "train.csv", work / "fasttext-agnews7k.train")
    test = write_fasttext_file(agnews7k / "test.csv", work / "fasttext-agnews7k.test")
    prepare_s = time.perf_counter() - started
    rows = []
    for name, params in FASTTEXT_RECIPES.items():
        result, rss = run_worker("fasttext", {"train": str(train), "test": str(test), "params": params})
        rows.append(
            Row(
                f"fastText ({name}: dim {params['dim']}, lr {params['lr']}, {params['epoch']} ep)",
                "agnews7k",
                accuracy=result["accuracy"],
                prepare_s=prepare_s,
                train_s=result["train_s"],
                epoch_s=result["train_s"] / params["epoch"],
                docs_per_s=result["test_n"] / result["test_s"],
                peak_rss_mb=rss,
                extra=result,
            )
        )
    if x16 is not None:
        started = time.perf_counter()
        train = write_fasttext_file(x16 / "train.csv", work / "fasttext-x16.train")
        prepare_s = time.perf_counter() - started
        params = FASTTEXT_RECIPES["paper"] | {"epoch": X16_EPOCHS}
        # prediction speed is measured with test() on the x16 file itself (speed only)
        result, rss = run_worker("fasttext", {"train": str(train), "test": str(train), "params": params})
        result["train_docs_per_s"] = result["test_n"] * X16_EPOCHS / result["train_s"]
        rows.append(
            Row(
                f"fastText (paper, {X16_EPOCHS} ep)",
                "agnews-x16",
                accuracy="n/a (speed only)",
                prepare_s=prepare_s,
                train_s=result["train_s"],
                epoch_s=result["train_s"] / X16_EPOCHS,
                docs_per_s=result["test_n"] / result["test_s"],
                peak_rss_mb=rss,
                extra=result,
            )
        )
    return rows


def bench_sklearn(agnews7k: Path) -> list[Row]:
    if not installed("sklearn"):
        return [Row("scikit-learn", "—", accuracy="not installed")]
    config = {"train": str(agnews7k / "train.csv"), "test": str(agnews7k / "test.csv")}
    result, rss = run_worker("sklearn", config)
    return [
        Row(
            "scikit-learn (tf-idf 1-2 grams + LinearSVC C=0.5)",
            "agnews7k",
            accuracy=result["accuracy"],
            train_s=result["train_s"],
            docs_per_s=result["test_n"] / result["test_s"],
            peak_rss_mb=rss,
            extra=result,
        )
    ]


# -- main ------------------------------------------------------------------------------


def attempt(system: str, dataset: str, fn: Callable[[], Row | list[Row]]) -> list[Row]:
    """Run one benchmark; a failure becomes a row saying so instead of ending the run."""
    try:
        result = fn()
    except (CommandFailed, OSError, ValueError, KeyError) as exc:
        log(f"{system} on {dataset} failed: {exc}")
        return [Row(system, dataset, accuracy=f"failed: {exc}")]
    return result if isinstance(result, list) else [result]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python benchmarks/bench.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="directory holding agnews7k/ (default: %(default)s)"
    )
    parser.add_argument("--workdir", type=Path, help="where derived data and runs go (default: a new temp directory)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--skip-x16", action="store_true", help="skip the agnews-x16 speed runs")
    parser.add_argument("--only", choices=("classify", "fasttext", "sklearn"), help="run one system only")
    parser.add_argument(
        "--scaling",
        type=int,
        nargs="*",
        metavar="REPEATS",
        help="also time prepare and train on agnews7k train repeated REPEATS times (e.g. 1 16 160: 6k, 97k, 1M docs)",
    )
    parser.add_argument(
        "--epoch-ratio",
        type=int,
        default=0,
        metavar="N",
        help="also train classify and fastText on agnews-x16 N times each, alternately, and print the epoch ratio",
    )
    parser.add_argument("--worker", choices=tuple(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--worker-config", type=json.loads, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.worker_config)))
        return

    agnews7k = args.data_root / "agnews7k"
    if not (agnews7k / "train.csv").is_file():
        sys.exit(f"error: {agnews7k}/train.csv not found (use --data-root)")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="classify-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    log(f"working directory: {work}")
    x16 = None if args.skip_x16 else make_x16(agnews7k, work / "agnews-x16")

    def selected(system: str) -> bool:
        return args.only in (None, system)

    rows: list[Row] = []
    if selected("classify"):
        rows += attempt(
            "classify", "agnews7k", lambda: bench_classify(agnews7k, "agnews7k", work, epochs=None, evaluate=True)
        )
        if x16 is not None:
            rows += attempt(
                "classify",
                "agnews-x16",
                lambda: bench_classify(x16, "agnews-x16", work, epochs=X16_EPOCHS, evaluate=False),
            )
        if x16 is not None:
            rows += attempt("classify commands", "agnews-x16", lambda: bench_commands(x16, work))
    if selected("fasttext"):
        rows += attempt("fastText", "agnews7k", lambda: bench_fasttext(agnews7k, x16, work))
    if selected("sklearn"):
        rows += attempt("scikit-learn", "agnews7k", lambda: bench_sklearn(agnews7k))

    starts = cold_start(work) if selected("classify") else {}
    scaling = bench_scaling(agnews7k, work, args.scaling) if args.scaling else None
    ratio = None
    if args.epoch_ratio and x16 is not None and installed("fasttext"):
        ratio = bench_epoch_ratio(x16, work, args.epoch_ratio)
    bench_rss_mb = own_peak_rss_mb()  # every child's peak RSS reading is at least this
    header = machine_line()
    print(header)
    print()
    print(markdown_table(rows))
    if starts:
        print()
        print("Cold start (median of 5, wall): " + ", ".join(f"`{k}` {v:.2f} s" for k, v in starts.items()))
    if scaling:
        print()
        print(scaling)
    if ratio:
        print()
        print(ratio)
    if args.json:
        results = {"machine": header, "workdir": str(work), "bench_peak_rss_mb": bench_rss_mb, "cold_start": starts}
        results["rows"] = [asdict(r) for r in rows]
        results["epoch_ratio"] = ratio
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
