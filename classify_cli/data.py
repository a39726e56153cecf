"""``prepare``: a corpus into tokenized, numericalized train / validation / test splits.

It reads a source once, tokenizing each row as it streams by into provisional
token ids (so no text is kept), carves the missing splits, builds the vocabulary from the
train split alone and writes token ids, labels, the vocabulary and a manifest (the format
is ``prepared.py``'s). Training reads the ids back and never tokenizes again.
"""

from __future__ import annotations

import sys
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import SPLITS, PrepareConfig
from .errors import InputError
from .fsutil import check_replaceable
from .prepared import (
    BLOCK_TOKENS,
    PREPARED_DATA,
    Split,
    foreign_entries,
    holds_prepared_manifest,
    is_prepared_data,
    write_prepared,
)
from .ragged import fingerprints, offsets_from_lengths, select_rows
from .sources import Source
from .text import TOKENIZERS, make_tokenizer, vocab_from_counts

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def tokenizer_spec(cfg: PrepareConfig) -> dict[str, Any]:
    return {"name": TOKENIZERS[0], "clean_text": cfg.clean_text}


# --- reading a source into provisional ids ------------------------------------------------


@dataclass
class _Part:
    ids: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray  # each row's label as an index into the numericalizer's ``label_names``
    skipped_empty: int


class _Numericalizer:
    """Tokenizes rows into provisional ids: each new token (and label) gets the next id.

    Rows stream through: what is kept of a row is its token ids and label id in compact
    arrays, never its text or a Python object per token or per row.
    """

    def __init__(self, tokenize: Callable[[str], list[str]]):
        self.tokenize = tokenize
        self.index: defaultdict[str, int] = defaultdict()
        self.index.default_factory = self.index.__len__
        self.label_index: defaultdict[str, int] = defaultdict()
        self.label_index.default_factory = self.label_index.__len__

    @property
    def label_names(self) -> list[str]:
        return list(self.label_index)  # in provisional id order

    def read(self, rows: Iterable[tuple[str, str]], split: str) -> _Part:
        index, label_index, tokenize = self.index, self.label_index, self.tokenize
        ids = array("i")
        row_lengths = array("q")
        labels = array("i")
        skipped = 0
        for n, (text, label) in enumerate(rows, 1):
            tokens = tokenize(text)
            if not tokens:
                skipped += 1
                continue
            label = label.strip()
            if not label:
                raise InputError(f"{split} split, row {n}: empty label")
            ids.extend([index[t] for t in tokens])
            row_lengths.append(len(tokens))
            labels.append(label_index[label])
        # views of the arrays' buffers, which they keep alive: no copy of the corpus
        return _Part(
            np.frombuffer(ids, dtype=np.int32) if len(ids) else np.zeros(0, np.int32),
            offsets_from_lengths(np.frombuffer(row_lengths, dtype=np.int64))
            if len(row_lengths)
            else np.zeros(1, np.int64),
            np.frombuffer(labels, dtype=np.int32) if len(labels) else np.zeros(0, np.int32),
            skipped,
        )


def label_order(seen: Iterable[str], declared: list[str] | None) -> list[str]:
    """Declared names keep their order; otherwise integers sort numerically, strings alphabetically."""
    if declared is not None:
        return list(declared)
    unique = set(seen)
    if all(s.lstrip("-").isdigit() for s in unique):
        return sorted(unique, key=int)
    return sorted(unique)


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, per-class split: returns (kept rows, carved rows), both sorted."""
    rng = np.random.default_rng(seed)
    carved = []
    for cls in np.unique(labels):
        rows = np.flatnonzero(labels == cls)
        rng.shuffle(rows)
        carved.append(rows[: int(round(fraction * len(rows)))])
    carved_rows = np.sort(np.concatenate(carved)) if carved else np.zeros(0, np.int64)
    if len(carved_rows) == 0 and len(labels) >= 2:
        carved_rows = np.array([rng.integers(len(labels))])
    kept = np.ones(len(labels), dtype=bool)
    kept[carved_rows] = False
    return np.flatnonzero(kept), carved_rows


def check_prepare_target(out: Path) -> None:
    """Refuse (exit 2) an ``--out`` that is neither absent, empty nor prepared data alone."""
    if Path(out).is_dir() and holds_prepared_manifest(out) and (extra := foreign_entries(out)):
        shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
        raise InputError(
            f"--out {out} is prepared data but also holds {shown}; preparing again would delete "
            "them (move them out, or choose another --out)"
        )
    check_replaceable(out, is_prepared_data, PREPARED_DATA)


def _train_overlap(splits: dict[str, Split], drop: bool, log: Log) -> tuple[dict[str, Any], np.ndarray]:
    """Validation and test documents that are also train documents (the same tokens, in order):
    a model is scored on what it learned. Counted and reported, or with ``drop`` removed;
    returns the counts and the train documents' fingerprints."""
    train = fingerprints(splits["train"].ids, splits["train"].offsets)
    found = {}
    for name in ("validation", "test"):
        split = splits[name]
        seen = np.isin(fingerprints(split.ids, split.offsets), train)
        found[name] = int(seen.sum())
        if drop and found[name]:
            keep = np.flatnonzero(~seen)
            if len(keep) == 0:
                raise InputError(f"every {name} document also occurs in train: nothing left to {name} on")
            ids, offsets = select_rows(split.ids, split.offsets, keep)
            splits[name] = Split(ids, offsets, split.labels[keep])
    if any(found.values()):
        counts = f"{found['validation']:,} validation and {found['test']:,} test documents"
        if drop:
            log(f"dropped {counts} that also occur in train (prepare.drop_overlap)")
        else:
            log(
                f"warning: {counts} also occur in train (the same tokens): their scores flatter the model; "
                "--set prepare.drop_overlap=true drops them"
            )
    return {**found, "dropped": drop}, train


def _counted(rows: Iterable[tuple[str, str]], tick: Callable[[int], None], every: int = 4096):
    """``rows``, calling ``tick(n)`` every ``every`` rows and at the end (for a progress bar)."""
    n = 0
    for n, row in enumerate(rows, 1):
        yield row
        if n % every == 0:
            tick(every)
    tick(n % every)


def prepare_corpus(
    source: Source, out: Path, cfg: PrepareConfig, log: Log = _stderr, tick: Callable[[int], None] = lambda n: None
) -> dict[str, Any]:
    """Read ``source``, write prepared splits to ``out`` atomically, return the manifest."""
    check_prepare_target(out)  # before reading a corpus that could not be written anyway
    started = time.perf_counter()
    spec = tokenizer_spec(cfg)
    numericalizer = _Numericalizer(make_tokenizer(spec))
    parts: dict[str, _Part] = {}
    for split in SPLITS:
        if split in source.splits:
            parts[split] = numericalizer.read(_counted(source.rows(split), tick), split)
            log(f"read {split}: {len(parts[split].labels):,} rows")
    skipped = {s: p.skipped_empty for s, p in parts.items() if p.skipped_empty}
    for split, count in skipped.items():
        log(f"warning: skipped {count:,} {split} rows with empty text")

    train = parts["train"]
    if not len(train.labels):
        raise InputError(f"{source.description}: no usable rows in the train split")
    seen_labels = numericalizer.label_names
    train_labels = [seen_labels[i] for i in np.unique(train.labels)]
    names = label_order(train_labels, source.label_names)
    label_index = {name: i for i, name in enumerate(names)}
    for split, part in parts.items():
        unknown = sorted({seen_labels[i] for i in np.unique(part.labels)} - label_index.keys())
        if unknown:
            hint = "not in classes.txt" if source.label_names else "not in the train split"
            raise InputError(f"{split} split: label(s) {unknown[:5]} {hint}")
    if len(train_labels) < 2:
        raise InputError(f"only one class ({train_labels[0]!r}) in the train split: a classifier needs at least two")

    # provisional label ids -> positions in `names` (-1: a label only other splits have, refused above)
    to_name = np.array([label_index.get(name, -1) for name in seen_labels], dtype=np.int64)
    label_ids = {s: to_name[p.labels] for s, p in parts.items()}
    rows = {s: np.arange(len(p.labels)) for s, p in parts.items()}
    origin = {s: s for s in parts}
    carved = []
    # carve what the source lacks from its train split: test first, then validation
    for split, fraction, seed in (
        ("test", cfg.test_fraction, cfg.seed + 1),
        ("validation", cfg.validation_fraction, cfg.seed),
    ):
        if split not in parts:
            kept, taken = stratified_split(label_ids["train"][rows["train"]], fraction, seed)
            rows[split] = rows["train"][taken]
            rows["train"] = rows["train"][kept]
            origin[split] = "train"
            carved.append(split)
    if len(rows["train"]) == 0 or len(rows["validation"]) == 0:
        raise InputError(f"{source.description}: too few rows to carve train / validation / test splits")

    splits: dict[str, Split] = {}
    for split in ("test", "validation", "train"):  # train last: what was carved from it is copied by then
        part = parts[origin[split]]
        ids, offsets = select_rows(part.ids, part.offsets, rows[split], in_place=split == "train")
        splits[split] = Split(ids, offsets, label_ids[origin[split]][rows[split]])
    splits = {split: splits[split] for split in SPLITS}
    del parts, train

    # vocabulary from the train split only: validation and test tokens map to <unk> unless train has them
    tokens = list(numericalizer.index)  # provisional id order
    counts = np.zeros(len(tokens), dtype=np.int64)
    train_ids = splits["train"].ids
    for lo in range(0, len(train_ids), BLOCK_TOKENS):  # a block at a time: bincount copies to int64
        counts += np.bincount(train_ids[lo : lo + BLOCK_TOKENS], minlength=len(tokens))
    counter = Counter({tok: int(c) for tok, c in zip(tokens, counts, strict=True) if c})
    vocab = vocab_from_counts(counter, min_freq=cfg.min_freq, max_tokens=cfg.max_tokens)
    remap = np.array([vocab[tok] for tok in tokens] or [0], dtype=np.int32)
    for split in splits.values():
        # in place and a block at a time (indexing converts the indices to int64); no split
        # shares another's ids
        for lo in range(0, len(split.ids), BLOCK_TOKENS):
            split.ids[lo : lo + BLOCK_TOKENS] = remap[split.ids[lo : lo + BLOCK_TOKENS]]
    # by final ids, as evaluate sees a text: the train fingerprints are kept for it
    overlap, train_prints = _train_overlap(splits, cfg.drop_overlap, log)

    manifest = write_prepared(
        out,
        splits,
        vocab,
        names,
        spec,
        {
            "source": source.description,
            "source_files": source.files,
            "carved": carved,
            "skipped_empty_text": skipped,
            "train_overlap": overlap,
            "config": {"prepare": _asdict(cfg)},
        },
        train_prints,
    )
    log(
        f"prepared {sum(len(s) for s in splits.values()):,} rows, vocabulary {len(vocab):,} "
        f"in {time.perf_counter() - started:.1f}s -> {out}"
    )
    return manifest


def _asdict(cfg: PrepareConfig) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(cfg)
