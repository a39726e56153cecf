"""``prepare``: a corpus into tokenized, numericalized train / validation / test splits.

It reads a source once, tokenizing each row as it streams by into provisional token ids
(``token_ids.py``), which go to a scratch file (no text is kept, and no ids: memory grows
by a few dozen bytes per distinct token and a few bytes a document). It then carves the
missing splits, counts the vocabulary from the train split alone and writes each split's
final ids as it reads them back, a block at a time, with labels, the vocabulary and a
manifest (the format is ``prepared.py``'s). Training reads the ids back and never tokenizes again.
"""

from __future__ import annotations

import sys
import time
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..inputs.readers import Label, label_set
from ..inputs.sources import Source
from ..text.tokens import TOKENIZERS, make_tokenizer, vocab_from_id_counts
from ..util.config import SPLITS, PrepareConfig
from ..util.display import listed
from ..util.errors import InputError
from ..util.fs import release_freed_memory
from ..util.lock import DirectoryLock, scratch_directory
from ..util.ragged import fingerprints, offsets_from_lengths
from ..util.swap import check_replaceable
from .labels import multi_hot, strata
from .prepared import (
    PREPARED_DATA,
    foreign_entries,
    holds_prepared_manifest,
    is_prepared_data,
    prepared_output,
    seal_prepared,
    write_split,
    write_vocab,
)
from .spill import SpilledIds, TokenSink
from .token_ids import ProvisionalIds

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def tokenizer_spec(cfg: PrepareConfig) -> dict[str, Any]:
    return {"name": TOKENIZERS[0], "clean_text": cfg.clean_text}


# --- reading a source into provisional ids ------------------------------------------------


@dataclass
class _Part:
    ids: SpilledIds  # on disk until written out
    # each row's label as an index into the numericalizer's ``label_names``; with several
    # labels per text, how many each row has, and ``flat`` holds them all end to end
    labels: np.ndarray
    skipped_empty: int
    flat: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


def _int32(values: array) -> np.ndarray:
    return np.frombuffer(values, dtype=np.int32) if len(values) else np.zeros(0, np.int32)


class _Numericalizer:
    """Tokenizes rows into provisional ids: each new token (and label) gets the next id.

    Rows stream through: what is kept of a row is its label id(s) and length in compact arrays;
    its token ids go to a file. Never its text, nor a Python object per token or per row.
    """

    def __init__(self, tokenize: Callable[[str], list[str]], cfg: PrepareConfig):
        self.tokenize = tokenize
        self.index = ProvisionalIds()
        self.label_index: defaultdict[str, int] = defaultdict()
        self.label_index.default_factory = self.label_index.__len__
        self.written: dict[str, str] = {}  # label -> the first way it was written (surrounding spaces and all)
        self.task, self.sep = cfg.task, cfg.label_sep
        self.multi: bool | None = True if cfg.task == "multi" or cfg.label_sep else None
        self.lists: bool | None = None  # whether the rows' label fields are lists (all alike)
        self.sep_seen = False  # whether any label field held label_sep

    @property
    def label_names(self) -> list[str]:
        return list(self.label_index)  # in provisional id order

    def take_tokens(self) -> list[str]:
        """Every token read, in provisional id order; the index of them is dropped."""
        tokens = self.index.tokens()
        self.index.release()
        return tokens

    def _kind(self, label: Label, split: str, n: int) -> None:
        """Every row's label field alike: all lists or all single labels, as the task asks."""
        is_list = isinstance(label, tuple)
        if self.lists is None:
            if is_list and self.task == "single":
                raise InputError(
                    f"{split} split, row {n}: the label is a list; several labels per text need --task multi"
                )
            self.lists = is_list
            self.multi = self.multi or is_list
        elif is_list != self.lists:
            has, had = ("a list", "single labels") if is_list else ("a single label", "label lists")
            raise InputError(f"{split} split, row {n}: the label is {has}, earlier rows hold {had}; write them alike")

    def read(self, rows: Iterable[tuple[str, Label]], split: str, spill: Path) -> _Part:
        index, label_index, tokenize, written = self.index, self.label_index, self.tokenize, self.written
        sink = TokenSink(spill, translate=index.merge)
        labels, flat = array("i"), array("i")
        skipped = 0
        try:
            for n, (text, label) in enumerate(rows, 1):
                tokens = tokenize(text)
                if not tokens:
                    skipped += 1
                    continue
                self._kind(label, split, n)
                if self.multi:
                    several = self._labels(label, split, n)
                    flat.extend([label_index[one] for one in several])
                    labels.append(len(several))
                else:
                    raw, label = label, label.strip()
                    if not label:
                        raise InputError(f"{split} split, row {n}: empty label")
                    if (first := written.setdefault(label, raw)) != raw:  # one label, or two? say, do not guess
                        raise InputError(
                            f"{split} split, row {n}: labels {first!r} and {raw!r} differ only by surrounding "
                            "whitespace; write them alike"
                        )
                    labels.append(label_index[label])
                sink.add(index.block_ids(tokens))
        except BaseException:
            sink.close()
            raise
        return _Part(sink.finish(), _int32(labels), skipped, _int32(flat) if self.multi else None)

    def _labels(self, label: Label, split: str, n: int) -> tuple[str, ...]:
        if isinstance(label, str) and self.sep is not None and self.sep in label:
            self.sep_seen = True
        try:
            several = label_set(label, self.sep)
        except ValueError as exc:
            raise InputError(f"{split} split, row {n}: {exc}") from None
        if not several and self.sep is None and isinstance(label, str):  # --task multi on single labels
            raise InputError(f"{split} split, row {n}: empty label")
        return several


def label_order(seen: Iterable[str], declared: list[str] | None) -> list[str]:
    """Declared names keep their order; otherwise integers sort numerically, strings alphabetically."""
    if declared is not None:
        return list(declared)
    unique = set(seen)
    if all(s.lstrip("-").isdigit() for s in unique):
        return sorted(unique, key=int)
    return sorted(unique)


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, per-class split of documents by class (``labels.strata``): returns (kept rows,
    carved rows), both sorted."""
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


def _report_overlap(found: dict[str, int], drop: bool, log: Log) -> dict[str, Any]:
    """Validation and test documents that are also train documents (the same tokens, in order):
    a model is scored on what it learned. Reported (or, with ``drop``, that they were dropped)."""
    if any(found.values()):
        counts = f"{found['validation']:,} validation and {found['test']:,} test documents"
        if drop:
            log(f"dropped {counts} that also occur in train (prepare.drop_overlap)")
        else:
            log(
                f"warning: {counts} also occur in train (the same tokens): their scores flatter the model; "
                "--set prepare.drop_overlap=true drops them"
            )
    return {**found, "dropped": drop}


def _counted(rows: Iterable[tuple[str, str]], tick: Callable[[int], None], every: int = 4096):
    """``rows``, calling ``tick(n)`` every ``every`` rows and at the end (for a progress bar)."""
    n = 0
    for n, row in enumerate(rows, 1):
        yield row
        if n % every == 0:
            tick(every)
    tick(n % every)


def prepare_corpus(
    source: Source | Callable[[], Source],
    out: Path,
    cfg: PrepareConfig,
    log: Log = _stderr,
    tick: Callable[[int], None] = lambda n: None,
) -> dict[str, Any]:
    """Read ``source`` (or the one it opens: called once ``out`` is locked and checked, as
    opening may download a corpus), write prepared splits to ``out`` atomically, return the
    manifest. ``out`` is locked throughout, as ``train`` locks its run."""
    with DirectoryLock(out, "prepare") as lock:
        out = lock.directory
        check_prepare_target(out)  # before reading a corpus that could not be written anyway
        if callable(source):
            source = source()
        with scratch_directory(out) as scratch:  # token ids wait there until the vocabulary is known
            return _prepare(source, out, cfg, log, tick, scratch)


def _prepare(source: Source, out: Path, cfg: PrepareConfig, log: Log, tick, scratch: Path) -> dict[str, Any]:
    started = time.perf_counter()
    spec = tokenizer_spec(cfg)
    numericalizer = _Numericalizer(make_tokenizer(spec), cfg)
    parts: dict[str, _Part] = {}
    for split in SPLITS:
        if split in source.splits:
            parts[split] = numericalizer.read(_counted(source.rows(split), tick), split, scratch / f"{split}.ids")
            log(f"read {split}: {len(parts[split].labels):,} rows")
    skipped = {s: p.skipped_empty for s, p in parts.items() if p.skipped_empty}
    for split, count in skipped.items():
        log(f"warning: skipped {count:,} {split} rows with empty text")

    train = parts["train"]
    if not len(train):
        raise InputError(f"{source.description}: no usable rows in the train split")
    seen_labels = numericalizer.label_names
    multi = bool(numericalizer.multi)
    if cfg.label_sep is not None and not numericalizer.sep_seen and not numericalizer.lists:
        raise InputError(
            f"--label-sep {cfg.label_sep!r} occurs in no label of {source.description}: is that the separator? "
            "(--task multi without --label-sep reads one label per row as a set of one)"
        )
    train_labels = [seen_labels[i] for i in np.unique(train.flat if multi else train.labels)]
    names = label_order(train_labels, source.label_names)
    label_index = {name: i for i, name in enumerate(names)}
    for split, part in parts.items():
        unknown = sorted({seen_labels[i] for i in np.unique(part.flat if multi else part.labels)} - label_index.keys())
        hint = "not in classes.txt" if source.label_names else "not in the train split"
        if unknown and (split == "train" or not multi):
            raise InputError(f"{split} split: label(s) {listed(unknown)} {hint}")
        if unknown:  # a label train never shows cannot be learned: dropped from the documents, said
            ids = [i for i, name in enumerate(seen_labels) if name not in label_index]
            docs = len(np.unique(np.repeat(np.arange(len(part)), part.labels)[np.isin(part.flat, ids)]))
            log(f"warning: {split} split: label(s) {listed(unknown)} {hint}: dropped from {docs:,} of its documents")
    if not multi and len(train_labels) < 2:
        raise InputError(f"only one class ({train_labels[0]!r}) in the train split: a classifier needs at least two")
    if multi and not train_labels:
        raise InputError(f"no labels in the train split of {source.description}: every text's label list is empty")

    # provisional label ids -> positions in `names` (-1: a label only other splits have)
    to_name = np.array([label_index.get(name, -1) for name in seen_labels], dtype=np.int32)
    if multi:
        label_ids = {s: multi_hot(p.labels, to_name[p.flat], len(names)) for s, p in parts.items()}
    else:
        label_ids = {s: to_name[p.labels] for s, p in parts.items()}
    rows = {s: np.arange(len(p)) for s, p in parts.items()}
    origin = {s: s for s in parts}
    carved = []
    # carve what the source lacks from its train split: test first, then validation
    for split, fraction, seed in (
        ("test", cfg.test_fraction, cfg.seed + 1),
        ("validation", cfg.validation_fraction, cfg.seed),
    ):
        if split not in parts:
            kept, taken = stratified_split(strata(label_ids["train"][rows["train"]]), fraction, seed)
            rows[split] = rows["train"][taken]
            rows["train"] = rows["train"][kept]
            origin[split] = "train"
            carved.append(split)
    if len(rows["train"]) == 0 or len(rows["validation"]) == 0:
        raise InputError(f"{source.description}: too few rows to carve train / validation / test splits")

    # vocabulary from the train split only: validation and test tokens map to <unk> unless train has them
    tokens = numericalizer.take_tokens()
    counts = np.zeros(len(tokens), dtype=np.int64)
    for ids, _ in parts[origin["train"]].ids.rows(rows["train"]):
        counts += np.bincount(ids, minlength=len(tokens))
    release_freed_memory()
    vocab, remap = vocab_from_id_counts(tokens, counts, min_freq=cfg.min_freq, max_tokens=cfg.max_tokens)
    del tokens, counts
    release_freed_memory()

    with prepared_output(out) as tmp:
        write_vocab(tmp, vocab)
        vocab_size = len(vocab)
        del vocab  # written: its strings need not wait for the splits
        release_freed_memory()
        written: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        train_prints = np.zeros(0, np.uint64)  # filled as the train split is written, first
        found: dict[str, int] = {}
        for split in ("train", "validation", "test"):  # train first: the others are checked against it
            part, chosen = parts[origin[split]], rows[split]
            if split != "train":
                # by final ids, as evaluate sees a text
                own = _prints(part.ids.rows(chosen, remap))
                seen = np.isin(own, train_prints)
                found[split] = int(seen.sum())
                if cfg.drop_overlap and found[split]:
                    if seen.all():
                        raise InputError(f"every {split} document also occurs in train: nothing left to {split} on")
                    chosen = chosen[~seen]
            offsets = offsets_from_lengths(part.ids.lengths(chosen))
            labels = label_ids[origin[split]][chosen]
            if split == "train":  # fingerprinted on the way out, for the checks above and evaluate's
                train_prints = np.empty(len(chosen), dtype=np.uint64)
            blocks = _ids_of(part.ids.rows(chosen, remap), train_prints if split == "train" else None)
            write_split(tmp / f"{split}.safetensors", int(offsets[-1]), offsets, labels, blocks)
            written[split] = (offsets, labels)
            release_freed_memory()
        overlap = _report_overlap(found, cfg.drop_overlap, log)
        manifest = seal_prepared(
            tmp,
            vocab_size,
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
            {split: written[split] for split in SPLITS},
            train_prints,
        )
    log(
        f"prepared {sum(len(labels) for _, labels in written.values()):,} rows, vocabulary {vocab_size:,} "
        f"in {time.perf_counter() - started:.1f}s -> {out}"
    )
    return manifest


def _prints(blocks) -> np.ndarray:
    """The fingerprints of the documents of ragged ``blocks``, in order."""
    found = [fingerprints(ids, offsets) for ids, offsets in blocks]
    return np.concatenate(found) if found else np.zeros(0, np.uint64)


def _ids_of(blocks, prints: np.ndarray | None):
    """The ids of ragged ``blocks``; with ``prints``, their documents' fingerprints are filled
    into it on the way, in order."""
    done = 0
    for ids, offsets in blocks:
        if prints is not None:
            prints[done : done + len(offsets) - 1] = fingerprints(ids, offsets)
            done += len(offsets) - 1
        yield ids


def _asdict(cfg: PrepareConfig) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(cfg)
