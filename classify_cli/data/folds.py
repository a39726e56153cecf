"""k folds of a prepared train split, each as prepared data of its own, for ``tune`` to judge
configs by cross-validation where the validation split is too small to tell them apart.

Fold f's train split is the train documents outside fold f, its validation split those in
it (folds stratified by class, seeded), its test split empty. Its vocabulary is rebuilt from
its own train documents by prepare's rule (``min_freq``, ``max_tokens``), so a word only the
held-out documents have is ``<unk>`` to the fold, as a word only validation has is to ``train``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..text.tokens import vocab_from_id_counts
from ..util.ragged import fingerprints, take_rows
from .labels import strata
from .prepared import load_prepared, prepared_output, seal_prepared, write_split, write_vocab


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Each document's fold (0..k-1): every class dealt round the folds in a seeded order."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=np.int64)
    start = 0  # where the next class's deal begins, so small classes do not all land in fold 0
    for cls in np.unique(labels):
        rows = np.flatnonzero(labels == cls)
        rng.shuffle(rows)
        fold[rows] = (start + np.arange(len(rows))) % k
        start = (start + len(rows)) % k
    return fold


def write_folds(data_dir: Path, k: int, seed: int, work: Path) -> list[tuple[Path, np.ndarray]]:
    """Write fold 0..k-1 of ``data_dir``'s train split under ``work``; returns each fold's
    directory with the train-split indices of its held-out (validation) documents."""
    data = load_prepared(Path(data_dir), ("train",))
    split, manifest = data.splits["train"], data.manifest
    prepare = manifest["config"]["prepare"]
    fold = stratified_folds(strata(split.labels), k, seed)
    out = []
    for f in range(k):
        held, kept = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
        train_index, train_offsets = take_rows(split.offsets, kept)
        counts = np.bincount(split.ids[train_index], minlength=len(data.vocab))
        counts[data.vocab.unk_index] = 0  # a special, as in prepare: not a word competing for max_tokens
        vocab, remap = vocab_from_id_counts(
            data.vocab.itos, counts, min_freq=prepare["min_freq"], max_tokens=prepare["max_tokens"]
        )
        parts = {}
        for name, docs in (("train", kept), ("validation", held), ("test", held[:0])):
            index, offsets = take_rows(split.offsets, docs)
            parts[name] = (remap[split.ids[index]], offsets, split.labels[docs])
        train_prints = fingerprints(parts["train"][0], train_offsets)
        overlap = int(np.isin(fingerprints(*parts["validation"][:2]), train_prints).sum())
        path = Path(work) / f"fold-{f}"
        with prepared_output(path) as tmp:
            write_vocab(tmp, vocab)
            for name, (ids, offsets, labels) in parts.items():
                write_split(tmp / f"{name}.safetensors", len(ids), offsets, labels, [ids])
            extra = {
                "source": f"fold {f} of {k} of {data_dir}'s train split",
                "source_files": {},
                "carved": ["validation", "test"],
                "skipped_empty_text": {},
                "train_overlap": {"validation": overlap, "test": 0, "dropped": False},
                "config": {"prepare": prepare},
            }
            splits = {name: (offsets, labels) for name, (_, offsets, labels) in parts.items()}
            seal_prepared(tmp, len(vocab), data.labels, data.tokenizer, extra, splits, train_prints)
        out.append((path, held))
    return out
