"""classify tune against fastText's autotune and TF-IDF + LinearSVC with C chosen by
cross-validation, at equal wall budget, on corpora carved from agnews7k's train split only.

    python benchmarks/tune.py --work DIR [--budget 60] [--corpora 7k 1k 300 ...] [--max-size 200K] [--fold N]

Each corpus is (train, test) rows (``--fold N``: the N-th fold or sample instead of the
first; generated corpora have one); 10% of train (stratified, seeded) becomes the validation
split that both searches judge by, and both train on the rest:

- ``7k``: the first of 5 folds of agnews7k's 6,080 train rows; ``1k``, ``300``: a seeded
  sample of that many train rows, tested on the other train rows; ``long8``: every 8 train
  articles of a class as one document, the first of 4 folds;
- ``sports2``: the 7k corpus as two classes, Sports or not (1 to 3); ``titles``: the 7k
  corpus with titles alone (about 7 words a document);
- ``gen30k``: ``benchmarks/corpus.py``'s generated corpus (a vocabulary that grows), 30k
  train documents and its own 7,600 test documents; ``gen20c``: its 20-class corpus, 5k
  train documents.

With ``--max-size``, classify tune gets ``--max-size`` and fastText ``autotuneModelSize``
(the SVM has no size limit), and the table gives each model's size.

Per corpus: classify with its defaults (``train``), ``classify tune --budget B``, fastText
``train_supervised(autotuneValidationFile=..., autotuneDuration=B)`` fed classify's tokens,
and TF-IDF (1-2 grams, sublinear tf) + LinearSVC with C from 5-fold ``GridSearchCV`` on
train + validation. Prints a markdown table of test accuracy and seconds; progress on stderr.
Needs optuna, fasttext-wheel and scikit-learn (``pip install -e '.[bench,tune]'``).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the corpus builders are shared with the tests
from classify_cli.train.compress import model_bytes  # noqa: E402
from tests.corpora import Rows, k_folds, long_documents, read_agnews, samples, write_agnews  # noqa: E402

AGNEWS7K = REPO.parent / "shared" / "data" / "agnews7k"
CORPORA = ("7k", "1k", "300", "long8", "sports2", "titles", "gen30k", "gen20c")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def corpus(name: str, work: Path, fold: int = 0) -> tuple[Rows, Rows]:
    """Corpus ``name``'s (train, test) rows; ``fold`` picks another fold (or sample) of the same rows."""
    train = read_agnews(AGNEWS7K / "train.csv")
    if name == "7k":
        return k_folds(train, 5, 0)[fold]
    if name == "sports2":  # AG's class 2 is Sports
        return tuple([["2" if r[0] == "2" else "1", *r[1:]] for r in rows] for rows in k_folds(train, 5, 0)[fold])
    if name == "titles":
        return tuple([[r[0], r[1], ""] for r in rows] for rows in k_folds(train, 5, 0)[fold])
    if name in ("1k", "300"):
        return samples(train, int(name.rstrip("k")) * (1000 if name.endswith("k") else 1), seed=100 + fold, n=1)[0]
    if name == "long8":
        return k_folds(long_documents(train, 8, random.Random(0)), 4, 0)[fold]
    if name in ("gen30k", "gen20c"):
        out = work / f"{name}-source"
        docs, classes = ("30000", "4") if name == "gen30k" else ("5000", "20")
        if not (out / "train.csv").is_file():
            generate = [REPO / "benchmarks" / "corpus.py", "--out", out, "--train-docs", docs, "--classes", classes]
            subprocess.run([sys.executable, *generate], check=True)
        return read_agnews(out / "train.csv"), read_agnews(out / "test.csv")
    raise ValueError(f"unknown corpus {name!r} (one of {', '.join(CORPORA)})")


def carve_validation(rows: Rows, seed: int = 0) -> tuple[Rows, Rows]:
    by_class: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_class.setdefault(row[0], []).append(i)
    rng, held = random.Random(seed), set()
    for members in by_class.values():
        rng.shuffle(members)
        held.update(members[: max(1, round(0.1 * len(members)))])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def classify(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "classify_cli", *map(str, args)], capture_output=True, text=True, check=True
    )


def test_accuracy(run: Path, data: Path) -> float:
    return json.loads(classify("evaluate", "--model", run, "--data", data, "--format", "json").stdout)["accuracy"]


def fasttext_accuracy(
    train: Rows, valid: Rows, test: Rows, work: Path, budget: float, max_size: str | None
) -> tuple[float, int]:
    import fasttext

    from classify_cli.text.tokens import basic_english, clean_text

    def write(rows: Rows, path: Path) -> Path:
        with path.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(f"__label__{row[0]} {' '.join(basic_english(clean_text(' '.join(row[1:]))))}\n")
        return path

    model = fasttext.train_supervised(
        input=str(write(train, work / "ft-train.txt")),
        autotuneValidationFile=str(write(valid, work / "ft-valid.txt")),
        autotuneDuration=int(budget),
        **({} if max_size is None else {"autotuneModelSize": max_size}),
        verbose=0,
    )
    _, precision, _ = model.test(str(write(test, work / "ft-test.txt")))
    model.save_model(str(work / "ft.bin"))
    return precision, (work / "ft.bin").stat().st_size  # at k=1 with one label per line, precision is accuracy


def bounded(fn, *args, limit: float):
    """``fn(*args)`` in a forked process, or None when it takes over ``limit`` seconds (fastText's
    autotune checks its clock between trials only, and one of its final trainings ran for 14
    minutes of a 60 s budget on the titles corpus)."""
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(1) as pool:  # leaving it kills the worker
        try:
            return pool.apply_async(fn, args).get(timeout=limit)
        except multiprocessing.TimeoutError:
            return None


def svm_accuracy(train: Rows, test: Rows) -> tuple[float, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LinearSVC())
    grid = {"linearsvc__C": [0.03, 0.1, 0.3, 1.0, 3.0, 10.0]}
    search = GridSearchCV(pipe, grid, cv=5, n_jobs=1).fit([" ".join(r[1:]) for r in train], [r[0] for r in train])
    predicted = search.predict([" ".join(r[1:]) for r in test])
    accuracy = sum(p == r[0] for p, r in zip(predicted, test, strict=True)) / len(test)
    return accuracy, search.best_params_["linearsvc__C"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--corpora", nargs="+", default=list(CORPORA))
    parser.add_argument("--max-size", help="a model size limit for both searches, e.g. 200K")
    parser.add_argument("--fold", type=int, default=0, help="another fold (or sample) of each corpus's rows")
    args = parser.parse_args(argv)
    limit = "" if args.max_size is None else f", models of at most {args.max_size} (sizes in kB after the accuracy)"
    print(f"budget {args.budget:g} s per search{limit}; test accuracy (seconds)\n")
    print(
        "| corpus | train / valid / test docs | classify defaults | classify tune (trials) | fastText autotune | TF-IDF + LinearSVC, C by 5-fold CV |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for name in args.corpora:
        work = args.work / name
        work.mkdir(parents=True, exist_ok=True)
        rows, test = corpus(name, args.work, args.fold)
        train, valid = carve_validation(rows)
        source = work / "source"
        for split, split_rows in (("train", train), ("validation", valid), ("test", test)):
            write_agnews(source / f"{split}.csv", split_rows)
        classes = max(int(r[0]) for r in rows)  # AG layout: labels 1..K name the lines of classes.txt
        (source / "classes.txt").write_text("".join(f"class{c}\n" for c in range(1, classes + 1)))
        classify("prepare", "--from", source, "--out", work / "data")
        log(f"{name}: {len(train)} / {len(valid)} / {len(test)}")

        started = time.perf_counter()
        classify("train", "--data", work / "data", "--out", work / "defaults", "--device", "cpu")
        defaults = (test_accuracy(work / "defaults", work / "data"), time.perf_counter() - started)

        started = time.perf_counter()
        done = classify(
            "tune",
            "--data",
            work / "data",
            "--out",
            work / "tuned",
            "--budget",
            args.budget,
            "--set",
            "train.device=cpu",
            *([] if args.max_size is None else ["--max-size", args.max_size]),
        )
        trials = len(json.loads(done.stdout)["trials"])
        tuned = (test_accuracy(work / "tuned", work / "data"), time.perf_counter() - started)
        tuned_kb = model_bytes(work / "tuned") / 1000

        started = time.perf_counter()
        limit = 5 * args.budget + 60
        ft = bounded(fasttext_accuracy, train, valid, test, work, args.budget, args.max_size, limit=limit)
        ft_accuracy, ft_bytes = ft or (float("nan"), 0)
        fast = (ft_accuracy, time.perf_counter() - started)

        started = time.perf_counter()
        svm, c = svm_accuracy(train + valid, test)
        svm_cell = (svm, time.perf_counter() - started)
        sized = ["", ""] if args.max_size is None else [f", {tuned_kb:.0f} kB", f", {ft_bytes / 1000:.0f} kB"]
        print(
            f"| {name} | {len(train):,} / {len(valid):,} / {len(test):,} | {defaults[0]:.4f} ({defaults[1]:.0f}) "
            f"| {tuned[0]:.4f} ({tuned[1]:.0f}; {trials}{sized[0]}) "
            + (f"| {fast[0]:.4f} ({fast[1]:.0f}{sized[1]}) " if ft else f"| stopped after {limit:.0f} s ")
            + f"| {svm_cell[0]:.4f} ({svm_cell[1]:.0f}; C={c:g}) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
