"""Do the defaults hold on corpora of other sizes and lengths? Accuracy, train split only.

    python benchmarks/crosscheck.py [--suites 7k 1k 300 long2 long4 long8] [--set K=V ...]

Every corpus is carved from agnews7k's *train* split, so that choosing defaults by these
numbers never looks at its test split:

- ``7k``: 5-fold cross-validation on the 6,080 train rows;
- ``1k``, ``300``: three seeded samples of that many rows, each tested on the rest of the
  train rows;
- ``longK``: every K train articles of one class concatenated into one long document,
  4-fold cross-validation.

classify runs ``prepare`` (which carves its validation split from each fold's training
rows) and ``train`` with the default config plus ``--set`` overrides; TF-IDF (1-2 grams,
sublinear tf) + LinearSVC(C=0.5) trains on the same rows when scikit-learn is installed.
Prints one markdown table on stdout (mean accuracy over folds, then each fold's); progress
goes to stderr. A measurement, not a check: nothing asserts on its numbers.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the corpus builders are shared with the tests
from tests.corpora import Rows, k_folds, long_documents, read_agnews, samples, write_agnews  # noqa: E402

AGNEWS7K = REPO.parent / "shared" / "data" / "agnews7k"
SUITES = ("7k", "1k", "300", "long2", "long4", "long8")


def suite_folds(name: str, train: Rows) -> list[tuple[Rows, Rows]]:
    if name == "7k":
        return k_folds(train, 5, 0)
    if name in ("1k", "300"):
        return samples(train, 1000 if name == "1k" else 300, seed=100 if name == "1k" else 200)
    if name.startswith("long") and name[4:].isdigit():
        return k_folds(long_documents(train, int(name[4:]), random.Random(0)), 4, 0)
    raise ValueError(f"unknown suite {name!r} (one of {', '.join(SUITES)})")


def classify_accuracy(source: Path, work: Path, overrides: dict) -> float:
    from classify_cli.data.prepare import prepare_corpus
    from classify_cli.inputs.sources import open_source
    from classify_cli.serve.evaluation import evaluate
    from classify_cli.train.run import train
    from classify_cli.util.config import load_config

    cfg = load_config(REPO / "configs" / "agnews.toml", overrides | {("train", "device"): "cpu"})
    prepare_corpus(open_source(str(source), cfg.prepare), work / "data", cfg.prepare, log=lambda _: None)
    train(work / "data", work / "run", cfg, log=lambda _: None)
    return evaluate(work / "run", work / "data")["accuracy"]


def svm_accuracy(train: Rows, test: Rows) -> float:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    def text(row: list[str]) -> str:
        return " ".join(row[1:])

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    model = LinearSVC(C=0.5).fit(vectorizer.fit_transform([text(r) for r in train]), [r[0] for r in train])
    predicted = model.predict(vectorizer.transform([text(r) for r in test]))
    return sum(p == r[0] for p, r in zip(predicted, test, strict=True)) / len(test)


def cell(accuracies: list[float]) -> str:
    return f"{statistics.mean(accuracies):.4f} ({' '.join(f'{a:.3f}' for a in accuracies)})"


def main(argv: Sequence[str] | None = None) -> None:
    from bench import installed

    from classify_cli.util.config import parse_override

    parser = argparse.ArgumentParser(prog="python benchmarks/crosscheck.py", description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=AGNEWS7K.parent, help="directory holding agnews7k/")
    parser.add_argument("--suites", nargs="+", default=list(SUITES), choices=SUITES)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V", help="config override")
    parser.add_argument("--no-svm", action="store_true", help="skip TF-IDF + LinearSVC")
    args = parser.parse_args(argv)
    agnews7k = args.data_root / "agnews7k"
    if not (agnews7k / "train.csv").is_file():
        sys.exit(f"error: {agnews7k}/train.csv not found (use --data-root)")
    overrides = {(s, k): v for s, k, v in map(parse_override, args.overrides)}
    with_svm = not args.no_svm and installed("sklearn")
    train, classes = read_agnews(agnews7k / "train.csv"), (agnews7k / "classes.txt").read_text()

    print("| corpus | train docs | test docs | folds | classify | TF-IDF + LinearSVC |")
    print("|---|---:|---:|---:|---|---|")
    with tempfile.TemporaryDirectory(prefix="classify-crosscheck-") as tmp:
        for name in args.suites:
            ours, svm = [], []
            folds = suite_folds(name, train)
            for i, (fold_train, fold_test) in enumerate(folds):
                work = Path(tmp) / name / str(i)
                write_agnews(work / "source" / "train.csv", fold_train)
                write_agnews(work / "source" / "test.csv", fold_test)
                (work / "source" / "classes.txt").write_text(classes)
                ours.append(classify_accuracy(work / "source", work, overrides))
                if with_svm:
                    svm.append(svm_accuracy(fold_train, fold_test))
                print(f"{name} fold {i + 1}/{len(folds)}: classify {ours[-1]:.4f}", file=sys.stderr)
            print(
                f"| {name} | {len(folds[0][0]):,} | {len(folds[0][1]):,} | {len(folds)} | {cell(ours)} | "
                f"{cell(svm) if svm else 'not run'} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
