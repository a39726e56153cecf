"""AG News-layout corpora for the tests and the defaults study (benchmarks/crosscheck.py):
reading and writing the CSV layout, long documents, folds and samples."""

from __future__ import annotations

import csv
import random
from pathlib import Path

Rows = list[list[str]]  # AG News CSV rows: class index, title, description


def read_agnews(path: Path) -> Rows:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def write_agnews(path: Path, rows: Rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, quoting=csv.QUOTE_ALL).writerows(rows)


def long_documents(rows: Rows, k: int, rng: random.Random) -> Rows:
    """Concatenate every k same-class articles into one long document."""
    by_class: dict[str, Rows] = {}
    for row in rows:
        by_class.setdefault(row[0], []).append(row)
    out = []
    for label, group in by_class.items():
        group = group[:]
        rng.shuffle(group)
        for i in range(0, len(group) - k + 1, k):
            out.append([label, group[i][1], " ".join(f"{r[1]}. {r[2]}" for r in group[i : i + k])])
    rng.shuffle(out)
    return out


def k_folds(rows: Rows, k: int, seed: int) -> list[tuple[Rows, Rows]]:
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    folds = []
    for f in range(k):
        held = set(order[f::k])
        folds.append(([rows[i] for i in order if i not in held], [rows[i] for i in sorted(held)]))
    return folds


def samples(rows: Rows, size: int, seed: int, n: int = 3) -> list[tuple[Rows, Rows]]:
    out = []
    for s in range(n):
        order = list(range(len(rows)))
        random.Random(seed + s).shuffle(order)
        out.append(([rows[i] for i in order[:size]], [rows[i] for i in order[size:]]))
    return out
