"""The features of prepared splits: fitting them on the train split (``fit_features``: which
n-gram buckets get rows, each row's weight), making any split's (``Features.make_set``), and
each batch's rows and weights (``FeatureSet``). No torch here; ``features.py`` holds the
pieces, and inference uses them without this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..data.labels import label_shares
from ..data.spill import drop_resident
from ..util.config import ModelConfig
from ..util.ragged import offsets_from_lengths, take_rows
from .features import (
    TFIDF,
    FeatureSpec,
    RowMap,
    class_document_frequency,
    class_focus,
    doc_norms,
    featurize,
    norm_of,
    occurrence_weights,
    smooth_idf,
    weighting_for,
)

if TYPE_CHECKING:
    from ..data.prepared import Split


@dataclass
class FeatureSet:
    """A split as the model reads it: each document's features as table rows, its label, and
    what weighs each occurrence: its row's weight (IDF; None for the mean) over its
    document's norm.

    Each batch's rows and weights are worked out when asked for (``gather``, ``weights``),
    in one of two ways. Without ``row_map``, ``values`` are the split's table rows, kept in
    memory (``fit_features`` and ``make_set`` keep them for a train split of up to
    ``STORED_FEATURES``): a batch is a gather. With it, ``values`` are the split's token ids,
    where the prepared data maps them, and each batch's rows are made from them: a large
    split's features kept whole would take twice the memory of its ids (a token and an
    n-gram per token).
    """

    values: np.ndarray  # table rows end to end, or with row_map the split's token ids
    value_offsets: np.ndarray  # where each document starts in ``values``
    norms: np.ndarray  # per document, float64
    labels: np.ndarray
    row_weight: np.ndarray | None
    row_map: RowMap | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def gather(self, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The table rows (int32) of documents ``docs``, in that order, and their offsets."""
        index, offsets = take_rows(self.value_offsets, docs)
        values = self.values[index]
        if self.row_map is None:
            return values, offsets
        rows, offsets = self.row_map.rows(values, offsets)
        return rows.astype(np.int32, copy=False), offsets  # rows index a table far below 2**31 rows

    def weights(self, rows: np.ndarray, docs: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """The weights of ``rows``, the features of documents ``docs`` laid out by ``offsets``."""
        idf = None if self.row_weight is None else self.row_weight[rows]
        return occurrence_weights(idf, self.norms[docs], np.diff(offsets))

    def all_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Every document's rows and their offsets, documents in order."""
        return self.gather(np.arange(len(self)))

    def all_weights(self) -> np.ndarray:
        """Every occurrence's weight, documents in order."""
        rows, offsets = self.all_rows()
        return self.weights(rows, np.arange(len(self)), offsets)


@dataclass
class Features:
    """Everything derived from the train split that turns token ids into model input."""

    row_map: RowMap
    # one weight per table row, from train documents only: IDF (times class_focus when on)
    idf: np.ndarray | None
    n_train_docs: int
    # whether sets keep their rows in memory (see STORED_FEATURES): decided by the train split's
    # size for every set, as the split that dominates memory
    stores: bool = True

    @property
    def spec(self) -> FeatureSpec:
        return self.row_map.spec

    def unseen_idf(self) -> float:
        """The weight of a feature training never saw (the shared zero row's)."""
        if self.idf is not None:
            return float(self.idf[self.row_map.unseen_row])
        return float(smooth_idf(np.zeros(1), self.n_train_docs)[0])

    def make_set(self, split: Split) -> FeatureSet:
        """The split's features: rows kept in memory (batches then only gather them) or, for a
        train split of over ``STORED_FEATURES``, made batch by batch from its token ids."""
        norm = norm_of(self.spec.weighting)
        if not self.stores:
            norms = _norms(_chunk_rows(split, self.row_map), len(split), self.idf, norm)
            return FeatureSet(split.ids, split.offsets, norms, split.labels, self.idf, self.row_map)
        rows, offsets = _kept(_chunk_rows(split, self.row_map), split, self.spec.ngrams)
        norms = _norms(_ragged_chunks(rows, offsets), len(split), self.idf, norm)
        return FeatureSet(rows, offsets, norms, split.labels, self.idf)


def fit_features(
    train: Split,
    vocab_size: int,
    cfg: ModelConfig,
    num_classes: int,
    fits: Callable[[int], None] = lambda num_rows: None,
) -> tuple[Features, FeatureSet]:
    """Learn from the train split which n-gram buckets occur and (for tfidf) each row's weight:
    its IDF, times how concentrated on one class its documents are (``class_focus``), times
    ``ngram_weight`` for n-gram rows.

    Works through the documents in chunks, so the temporaries of one chunk stay small. A
    train split of up to ``STORED_FEATURES`` is featurized once, into one array that becomes
    the table rows in place; a larger one is featurized again by each pass that needs it
    (cheaper than keeping features twice the size of the ids), so nothing kept grows with
    the corpus but per-document numbers. ``fits(num_rows)`` may refuse the table sizes once
    the rows are known, before anything of rows x classes.
    """
    weighting = weighting_for(cfg.weighting, train.labels.ndim == 2)
    spec = FeatureSpec(vocab_size, cfg.ngrams, cfg.buckets, weighting)
    stores = len(train.ids) * spec.ngrams <= STORED_FEATURES
    if stores:
        feats, offsets = _kept((featurize(ids, offs, spec) for ids, offs in _chunks(train)), train, spec.ngrams)
        row_map = RowMap.fit(spec, (f for f, _ in _ragged_chunks(feats, offsets)))
        for f, _ in _ragged_chunks(feats, offsets):
            f[:] = row_map.to_rows(f)  # feature ids -> table rows, in place
    else:
        row_map = RowMap.fit(spec, (featurize(ids, offsets, spec)[0] for ids, offsets in _chunks(train)))
    fits(row_map.num_rows)

    def train_rows() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return _ragged_chunks(feats, offsets) if stores else _chunk_rows(train, row_map)

    idf = None
    if weighting in TFIDF:
        # in how many train documents of each class each row occurs; summed, its document
        # frequency (a text of several labels, or none, adds a column that counts every document)
        several = train.labels.ndim == 2
        columns = num_classes + several
        class_df = np.zeros((row_map.num_rows, columns), dtype=np.int32)
        for (lo, hi), (r, o) in zip(_doc_chunks(len(train)), train_rows(), strict=True):
            labels = train.labels[lo:hi]
            if several:
                labels = np.concatenate([labels, np.ones((len(labels), 1), labels.dtype)], axis=1)
            class_document_frequency(r, o, labels, row_map.num_rows, columns, out=class_df)
        idf = smooth_idf(class_df[:, -1] if several else class_df.sum(axis=1), len(train))
        if cfg.supervised_weight > 0:
            class_df = class_df[:, :num_classes]
            idf = idf * class_focus(class_df, label_shares(train.labels, num_classes), cfg.supervised_weight)
        # n-gram rows (seen buckets and the shared unseen row) weigh ngram_weight times less
        idf[spec.vocab_size :] *= np.float32(cfg.ngram_weight)
        if weighting == "tfidf-sum":  # one scale for all: a train document's l2 norm, on average
            idf /= np.float32(_norms(train_rows(), len(train), idf, "l2").mean())
    features = Features(row_map, idf, len(train), stores)
    if not stores:
        return features, features.make_set(train)
    norms = _norms(train_rows(), len(train), idf, norm_of(weighting))
    return features, FeatureSet(feats, offsets, norms, train.labels, idf)


# a train split of up to this many features (4 bytes each: 128 MiB, some 400,000 news
# articles) keeps them in memory, which makes each batch a gather; a larger one makes them
# batch by batch from its mapped token ids (half the bytes, and pages the kernel may drop),
# which costs about a tenth of an epoch's time
STORED_FEATURES = 32 << 20
CHUNK_DOCS = 16_384  # documents featurized at a time: their int64 temporaries stay near 50 MB


def _doc_chunks(n_docs: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + CHUNK_DOCS, n_docs)) for lo in range(0, n_docs, CHUNK_DOCS)]


def _chunks(split: Split) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The split's token ids a chunk of documents at a time, as ragged ``(ids, offsets)``; a
    memory-mapped split lets go of each chunk's pages once the caller is done with it."""
    for chunk in _ragged_chunks(split.ids, split.offsets):
        yield chunk
        drop_resident(split.ids)


def _ragged_chunks(values: np.ndarray, offsets: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Views of a ragged array a chunk of documents at a time (writable: changes land in ``values``)."""
    for lo, hi in _doc_chunks(len(offsets) - 1):
        yield values[offsets[lo] : offsets[hi]], offsets[lo : hi + 1] - offsets[lo]


def _chunk_rows(split: Split, row_map: RowMap) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The split's table rows and their offsets, a chunk of documents at a time."""
    for ids, offsets in _chunks(split):
        yield row_map.rows(ids, offsets)


def _kept(
    chunks: Iterable[tuple[np.ndarray, np.ndarray]], split: Split, per_token: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ragged chunks of ``split``'s documents end to end in one int32 array, and offsets.

    ``per_token`` bounds the values per token (n-gram orders: each starts at most one n-gram
    per token), so one array of that size takes every chunk as it comes; the part never
    written is never touched and takes no memory.
    """
    out, lengths, end, done = np.empty(len(split.ids) * per_token, np.int32), np.empty(len(split), np.int64), 0, 0
    for values, offsets in chunks:
        out[end : end + len(values)], lengths[done : done + len(offsets) - 1] = values, np.diff(offsets)
        end, done = end + len(values), done + len(offsets) - 1
    return out[:end], offsets_from_lengths(lengths)


def _norms(chunk_rows: Iterable[tuple[np.ndarray, np.ndarray]], n_docs: int, idf: np.ndarray | None, norm: str):
    """Each document's norm (float64), from its rows given a chunk of documents at a time."""
    norms, done = np.empty(n_docs, dtype=np.float64), 0
    for rows, offsets in chunk_rows:
        norms[done : done + len(offsets) - 1] = doc_norms(offsets, None if idf is None else idf[rows], norm)
        done += len(offsets) - 1
    return norms
