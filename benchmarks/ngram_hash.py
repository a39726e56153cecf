"""How evenly each n-gram hash spreads a prepared train split's bigrams over the buckets.

    python benchmarks/ngram_hash.py PREPARED_DIR [PREPARED_DIR ...] [--buckets N]

A measurement, not a test: it prints one markdown table and asserts nothing. For each kind
of ``classify_cli.text.tokens.NGRAM_HASHES`` (the hash models record as ``head.ngram_hash``)
it hashes the split's distinct bigrams as training does, and reports how many buckets they
fill; the share of bigram occurrences that share their bucket with another bigram; the share
that is not their bucket's commonest bigram (the evidence a bucket's row mixes in from
others); in how many buckets the 10,000 commonest bigrams land; and the time to hash every
occurrence once (as an epoch of a large train split does), the best of 3.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from classify_cli.data.prepared import load_prepared  # noqa: E402
from classify_cli.text.tokens import NGRAM_HASHES, ngram_orders  # noqa: E402
from classify_cli.util.config import ModelConfig  # noqa: E402


def bigrams(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """The train split's token ids and offsets, and its vocabulary size."""
    data = load_prepared(path, ["train"])
    train = data.splits["train"]
    return np.asarray(train.ids, dtype=np.int64), np.asarray(train.offsets, dtype=np.int64), len(data.vocab)


def measure(ids: np.ndarray, offsets: np.ndarray, vocab: int, buckets: int, kind: str) -> dict[str, float]:
    seconds = []
    for _ in range(3):  # the best of 3: the first pays for fresh pages
        started = time.perf_counter()
        grams, _ = ngram_orders(ids, offsets, 2, vocab, buckets, kind)[1]
        seconds.append(time.perf_counter() - started)
    # each distinct bigram once, with its count: the pair of ids, then its bucket
    ends = offsets[1:]
    first = np.ones(len(ids), dtype=bool)
    first[ends[np.diff(offsets) >= 1] - 1] = False
    pairs = ids[:-1][first[:-1]] * vocab + ids[1:][first[:-1]]
    pair, where, count = np.unique(pairs, return_index=True, return_counts=True)
    bucket = grams[where]
    used, slot, load = np.unique(bucket, return_inverse=True, return_counts=True)
    shared = load[slot] > 1
    top = np.zeros(len(used))
    np.maximum.at(top, slot, count)
    commonest = np.argsort(-count, kind="stable")[:10_000]
    return {
        "distinct": len(pair),
        "used": len(used),
        "shared": count[shared].sum() / count.sum(),
        "foreign": 1 - top.sum() / count.sum(),
        "top10k": len(np.unique(bucket[commonest])),
        "seconds": min(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", nargs="+", type=Path, help="prepared data directories (classify prepare --out)")
    parser.add_argument(
        "--buckets", type=int, default=ModelConfig().buckets, help="model.buckets (default: the default)"
    )
    args = parser.parse_args()
    print(
        "| data | hash | bigram occurrences / distinct | buckets filled | occurrences sharing a bucket "
        "| not their bucket's commonest | buckets of the 10k commonest | hash s |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for path in args.data:
        ids, offsets, vocab = bigrams(path)
        occurrences = int(np.maximum(np.diff(offsets) - 1, 0).sum())
        for kind in NGRAM_HASHES:
            m = measure(ids, offsets, vocab, args.buckets, kind)
            print(
                f"| {'/'.join(path.parts[-2:])} | {kind} | {occurrences:,} / {m['distinct']:,} | {m['used']:,} | {m['shared']:.3f} "
                f"| {m['foreign']:.3f} | {m['top10k']:,} | {m['seconds']:.2f} |"
            )


if __name__ == "__main__":
    main()
