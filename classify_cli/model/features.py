"""From token ids to the weighted bag of features the model sums (no torch here).

A document's features are its token ids followed by hashed n-gram buckets; each feature
occurrence gets a weight, normalized per document: plain 1/length for ``mean``, otherwise
proportional to the feature's weight from the train split (its IDF, times ``class_focus``
when the model's ``supervised_weight`` is on), scaled so the document's weights sum to 1
(``tfidf``) or their squares do (``tfidf-l2``), or not per document at all (``tfidf-sum``: one
scale for every document, the train split's mean l2 norm, so that a text that joins several
stories keeps each story's whole evidence: for a set of labels per text).
Training calls these; inference folds the same weights into the model's table (``head.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.labels import label_shares
from ..data.spill import drop_resident
from ..text.tokens import ngram_ids
from ..util.config import ModelConfig
from ..util.ragged import offsets_from_lengths, row_ids

if TYPE_CHECKING:
    from ..data.prepared import Split

TFIDF = ("tfidf", "tfidf-l2", "tfidf-sum")  # the weightings that need the train split's IDF
# (size, dtype) -> an empty array: in memory, or file-backed for corpora larger than memory
Alloc = Callable[[int, Any], np.ndarray]


def weighting_for(weighting: str, several_labels: bool) -> str:
    """``weighting``, or for "auto" the task's: ``tfidf-l2`` for one label per text, ``tfidf-sum`` for several."""
    return weighting if weighting != "auto" else "tfidf-sum" if several_labels else "tfidf-l2"


def norm_of(weighting: str) -> str:
    return {"tfidf-l2": "l2", "tfidf-sum": "none"}.get(weighting, "l1")


@dataclass(frozen=True)
class FeatureSpec:
    vocab_size: int
    ngrams: int
    buckets: int
    weighting: str

    @property
    def num_features(self) -> int:
        return self.vocab_size + (self.buckets if self.ngrams > 1 else 0)


def featurize(ids: np.ndarray, offsets: np.ndarray, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    return ngram_ids(ids, offsets, spec.ngrams, spec.vocab_size, spec.buckets)


class RowMap:
    """Feature id -> row of the model's table.

    The table holds only what training saw: the vocabulary's rows, then one row per n-gram
    bucket that occurs in the train split (sorted), then one zero row shared by every bucket
    training never saw. A model of millions of buckets thus costs memory only for the ones
    it uses, in training and in the saved bundle alike. A compressed model keeps rows for
    ``kept_words`` only (sorted word ids); ``Head`` maps the other words to ``<unk>`` first.
    """

    def __init__(self, spec: FeatureSpec, seen_buckets: np.ndarray, kept_words: np.ndarray | None = None):
        self.spec = spec
        self.seen_buckets = np.asarray(seen_buckets)
        self.kept_words = kept_words
        n_words = spec.vocab_size if kept_words is None else len(kept_words)
        self.unseen_row = n_words + len(self.seen_buckets)
        self.num_rows = self.unseen_row + 1
        self._bucket_rows: np.ndarray | None = None  # bucket -> row for every bucket, built when worth it

    @classmethod
    def fit(cls, spec: FeatureSpec, train_feats: Iterable[np.ndarray]) -> RowMap:
        """The map for the buckets that occur in the train split's features (given in chunks)."""
        seen = np.zeros(spec.buckets if spec.ngrams > 1 else 0, dtype=bool)  # a byte per bucket, no sort
        for f in train_feats:
            seen[f[f >= spec.vocab_size] - spec.vocab_size] = True
        return cls(spec, np.flatnonzero(seen))

    def rows(self, ids: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Table rows of every document's features (tokens, then n-grams), and their offsets."""
        feats, feat_offsets = featurize(ids, offsets, self.spec)
        return self.to_rows(feats), feat_offsets

    def to_rows(self, feats: np.ndarray) -> np.ndarray:
        """Map feature ids to table rows."""
        is_ngram = feats >= self.spec.vocab_size
        if self.kept_words is None and not is_ngram.any():
            return feats
        rows = feats.copy()
        if self.kept_words is not None:
            words = ~is_ngram
            rows[words] = _positions(self.kept_words, feats[words], 0, self.unseen_row)
        if is_ngram.any():
            buckets = feats[is_ngram] - self.spec.vocab_size
            first_bucket_row = self.unseen_row - len(self.seen_buckets)
            if self._bucket_rows is None and len(buckets) < DENSE_FROM:
                rows[is_ngram] = _positions(self.seen_buckets, buckets, first_bucket_row, self.unseen_row)
            else:
                rows[is_ngram] = self._dense()[buckets]
        return rows

    def known_words(self, ids: np.ndarray, default: int) -> np.ndarray:
        """``ids``, with ``default`` for every word without a row."""
        if self.kept_words is None:
            return ids
        kept = _positions(self.kept_words, ids, 0, -1) >= 0
        return np.where(kept, ids, default)

    def _dense(self) -> np.ndarray:
        if self._bucket_rows is None:
            dense = np.full(self.spec.buckets if self.spec.ngrams > 1 else 0, self.unseen_row, dtype=np.int32)
            dense[self.seen_buckets] = np.arange(self.unseen_row - len(self.seen_buckets), self.unseen_row)
            self._bucket_rows = dense
        return self._bucket_rows


# a lookup of at least this many buckets builds the dense bucket -> row array (4 bytes a bucket)
# instead of binary searches; predicting a few texts never does
DENSE_FROM = 1 << 16


def _positions(sorted_values: np.ndarray, queries: np.ndarray, first: int, missing: int) -> np.ndarray:
    """``first`` + the position of each query in ``sorted_values``, or ``missing`` where absent."""
    queries = queries.astype(sorted_values.dtype)  # else numpy would cast the whole sorted array
    pos = np.searchsorted(sorted_values, queries)
    found = pos < len(sorted_values)
    found[found] = sorted_values[pos[found]] == queries[found]
    return np.where(found, first + pos, missing)


def unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique is many times slower on large arrays in numpy 2.x).

    A stable sort, which for values that come in long sorted runs (as document-major keys
    do) merges the runs: several times faster there than numpy's default sort.
    """
    if len(values) == 0:
        return values.copy()
    ordered = np.sort(values, kind="stable")
    first = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def smooth_idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    """scikit-learn's smoothed IDF: ln((1 + n) / (1 + df)) + 1, always >= 1."""
    return (np.log((1.0 + n_docs) / (1.0 + df)) + 1.0).astype(np.float32)


def class_document_frequency(
    rows: np.ndarray,
    offsets: np.ndarray,
    labels: np.ndarray,
    num_rows: int,
    num_classes: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """(num_rows, num_classes): in how many documents of each class each row occurs, added
    to ``out`` when given (so chunks of a corpus add up without a table per chunk). ``labels``
    may be 0/1 per class (a document of several classes, or none, counts in each of them)."""
    counts = np.zeros((num_rows, num_classes), dtype=np.int64) if out is None else out
    if len(rows) == 0:
        return counts
    docs = row_ids(offsets)
    # documents come in order, so the keys are sorted but within each document
    pairs = unique(docs * np.int64(num_rows) + rows)
    row, label = pairs % num_rows, labels[pairs // num_rows]
    for c in range(num_classes):
        of_class = label[:, c] > 0 if label.ndim == 2 else label == c
        np.add(counts[:, c], np.bincount(row[of_class], minlength=num_rows), out=counts[:, c], casting="unsafe")
    return counts


def class_focus(class_df: np.ndarray, prior: np.ndarray, strength: float) -> np.ndarray:
    """Supervised term weighting: 1 + strength * (1 - H(class | feature) / log C).

    A feature found in documents of one class only gets up to ``1 + strength``; one spread
    like the classes themselves gets 1. ``p(class | feature)`` counts the feature's train
    documents plus one pseudo-document spread by the class prior, so a feature seen once is
    not taken for a sure sign of its class (and an unseen one gets the prior's entropy).
    """
    num_classes = class_df.shape[1]
    focus = np.ones(len(class_df), dtype=np.float32)
    if num_classes < 2 or strength == 0:
        return focus
    for lo in range(0, len(class_df), FOCUS_ROWS):  # a block of rows at a time: float64 temporaries stay small
        block = class_df[lo : lo + FOCUS_ROWS]
        p = (block + prior) / (block.sum(axis=1, keepdims=True) + 1.0)
        entropy = -(p * np.log(np.maximum(p, 1e-300))).sum(axis=1) / np.log(num_classes)
        focus[lo : lo + FOCUS_ROWS] = 1.0 + strength * (1.0 - entropy)
    return focus


FOCUS_ROWS = 1 << 16


def bag_weights(rows: np.ndarray, offsets: np.ndarray, idf: np.ndarray | None, norm: str = "l1") -> np.ndarray:
    """Per-occurrence weights of each document's bag of features.

    ``idf`` is indexed like ``rows`` (one value per occurrence); ``None`` means plain mean.
    ``l1``: weights proportional to idf that sum to 1 per document (an IDF-weighted mean).
    ``l2``: weights proportional to idf whose squares sum to 1 per document. A feature's
    weight then shrinks as 1/sqrt(length) instead of 1/length, so long documents still move
    the model, where with the mean corpora of long documents barely trained.
    """
    return occurrence_weights(idf, doc_norms(offsets, idf, norm), row_ids(offsets))


def doc_norms(offsets: np.ndarray, idf: np.ndarray | None, norm: str = "l1") -> np.ndarray:
    """What each document's weights are divided by (float64): its length for the mean, the
    sum of its features' idf (``l1``) or the root of their squares' sum (``l2``)."""
    lengths = np.diff(offsets)
    if norm == "none":  # tfidf-sum: the scale is folded into the weights
        return np.ones(len(lengths), dtype=np.float64)
    if idf is None:
        return np.maximum(lengths, 1).astype(np.float64)
    raw = np.asarray(idf, dtype=np.float64)
    docs = row_ids(offsets)
    if norm == "l1":
        return np.maximum(np.bincount(docs, weights=raw, minlength=len(lengths)), 1e-12)
    return np.sqrt(np.maximum(np.bincount(docs, weights=raw * raw, minlength=len(lengths)), 1e-12))


def occurrence_weights(idf: np.ndarray | None, norms: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """Each occurrence's weight: its idf (1 for the mean) over its document's norm (float32)."""
    if idf is None:
        return (1.0 / norms)[docs].astype(np.float32)
    return (np.asarray(idf, dtype=np.float64) / norms[docs]).astype(np.float32)


# --- fitting the features of a train split ----------------------------------------------------


@dataclass
class FeatureSet:
    """A split as the model reads it: table rows of each document's features, offsets and
    labels, and what weighs each occurrence: its row's weight (IDF; None for the mean) over
    its document's norm. Weights are worked out batch by batch: one per occurrence, kept for
    the whole split, would take as much memory as the features themselves."""

    feats: np.ndarray
    offsets: np.ndarray
    norms: np.ndarray  # per document, float64
    labels: np.ndarray
    row_weight: np.ndarray | None

    def __len__(self) -> int:
        return len(self.labels)

    def weights(self, rows: np.ndarray, docs: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """The weights of ``rows``, the features of documents ``docs`` laid out by ``offsets``."""
        occurrence_docs = np.repeat(np.arange(len(docs)), np.diff(offsets))
        idf = None if self.row_weight is None else self.row_weight[rows]
        return occurrence_weights(idf, self.norms[docs], occurrence_docs)

    def all_weights(self) -> np.ndarray:
        """Every occurrence's weight, documents in order."""
        return self.weights(self.feats, np.arange(len(self)), self.offsets)


@dataclass
class Features:
    """Everything derived from the train split that turns token ids into model input."""

    row_map: RowMap
    # one weight per table row, from train documents only: IDF (times class_focus when on)
    idf: np.ndarray | None
    n_train_docs: int

    @property
    def spec(self) -> FeatureSpec:
        return self.row_map.spec

    def unseen_idf(self) -> float:
        """The weight of a feature training never saw (the shared zero row's)."""
        if self.idf is not None:
            return float(self.idf[self.row_map.unseen_row])
        return float(smooth_idf(np.zeros(1), self.n_train_docs)[0])

    def make_set(self, split: Split, alloc: Alloc = np.empty) -> FeatureSet:
        chunks = _doc_chunks(len(split))
        rows, offsets = _chunked_int32(split, chunks, self.row_map.rows, self.spec.ngrams, alloc)
        return FeatureSet(
            rows, offsets, _norms(rows, offsets, self.idf, norm_of(self.spec.weighting), chunks), split.labels, self.idf
        )


def fit_features(
    train: Split,
    vocab_size: int,
    cfg: ModelConfig,
    num_classes: int,
    alloc: Alloc = np.empty,
    fits: Callable[[int], None] = lambda num_rows: None,
) -> tuple[Features, FeatureSet]:
    """Learn from the train split which n-gram buckets occur and (for tfidf) each row's weight:
    its IDF, times how concentrated on one class its documents are (``class_focus``), times
    ``ngram_weight`` for n-gram rows.

    Works through the documents in chunks and keeps one int32 array of features, which
    becomes the table rows in place: the temporaries of one chunk stay small, so memory grows
    with the corpus, not with a multiple of it. ``alloc(size, dtype)`` makes that array (a
    file-backed one, for corpora whose features need not fit in memory). ``fits(num_rows)``
    may refuse the table sizes once the rows are known, before anything of rows x classes.
    """
    weighting = weighting_for(cfg.weighting, train.labels.ndim == 2)
    spec = FeatureSpec(vocab_size, cfg.ngrams, cfg.buckets, weighting)
    chunks = _doc_chunks(len(train))
    rows, offsets = _chunked_int32(train, chunks, lambda ids, offs: featurize(ids, offs, spec), spec.ngrams, alloc)
    row_map = RowMap.fit(spec, _chunk_values(rows, offsets, chunks))
    fits(row_map.num_rows)
    for r in _chunk_values(rows, offsets, chunks):
        r[:] = row_map.to_rows(r)  # feature ids -> table rows, in place
    idf = None
    if weighting in TFIDF:
        # in how many train documents of each class each row occurs; summed, its document
        # frequency (a text of several labels, or none, adds a column that counts every document)
        several = train.labels.ndim == 2
        columns = num_classes + several
        class_df = np.zeros((row_map.num_rows, columns), dtype=np.int32)
        for lo, hi in chunks:
            r, o = _ragged_slice(rows, offsets, lo, hi)
            labels = train.labels[lo:hi]
            if several:
                labels = np.concatenate([labels, np.ones((len(labels), 1), labels.dtype)], axis=1)
            class_document_frequency(r, o, labels, row_map.num_rows, columns, out=class_df)
            drop_resident(rows)
        idf = smooth_idf(class_df[:, -1] if several else class_df.sum(axis=1), len(train))
        if cfg.supervised_weight > 0:
            class_df = class_df[:, :num_classes]
            idf = idf * class_focus(class_df, label_shares(train.labels, num_classes), cfg.supervised_weight)
        # n-gram rows (seen buckets and the shared unseen row) weigh ngram_weight times less
        idf[spec.vocab_size :] *= np.float32(cfg.ngram_weight)
        if weighting == "tfidf-sum":  # one scale for all: a train document's l2 norm, on average
            idf /= np.float32(_norms(rows, offsets, idf, "l2", chunks).mean())
    norms = _norms(rows, offsets, idf, norm_of(weighting), chunks)
    return Features(row_map, idf, len(train)), FeatureSet(rows, offsets, norms, train.labels, idf)


CHUNK_DOCS = 16_384  # documents featurized at a time: their int64 temporaries stay near 50 MB


def _doc_chunks(n_docs: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + CHUNK_DOCS, n_docs)) for lo in range(0, n_docs, CHUNK_DOCS)]


def _ragged_slice(values: np.ndarray, offsets: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    return values[offsets[lo] : offsets[hi]], offsets[lo : hi + 1] - offsets[lo]


def _chunk_values(values: np.ndarray, offsets: np.ndarray, chunks) -> Iterator[np.ndarray]:
    """Views of each chunk's values (writable: changes land in ``values``); a file-backed
    ``values`` lets go of each chunk's pages once the caller is done with it."""
    for lo, hi in chunks:
        yield values[offsets[lo] : offsets[hi]]
        drop_resident(values)


def _chunked_int32(split: Split, chunks, fn, per_token: int, alloc: Alloc) -> tuple[np.ndarray, np.ndarray]:
    """``fn(ids, offsets)`` (a ragged array of int64) applied chunk by chunk, kept as int32.

    ``per_token`` bounds the values per token (n-gram orders: each order starts at most one
    n-gram per token), so one array of that size takes every chunk's values as it comes; the
    part never written is never touched and takes no memory.
    """
    out = alloc(len(split.ids) * per_token, np.int32)
    lengths, end = [], 0
    for lo, hi in chunks:
        values, offsets = fn(*_ragged_slice(split.ids, split.offsets, lo, hi))
        out[end : end + len(values)] = values  # a broken bound fails loudly here (shapes differ)
        drop_resident(out)
        drop_resident(split.ids)
        end += len(values)
        lengths.append(np.diff(offsets))
    return out[:end], offsets_from_lengths(np.concatenate(lengths) if lengths else np.zeros(0, np.int64))


def _norms(rows: np.ndarray, offsets: np.ndarray, idf: np.ndarray | None, norm: str, chunks) -> np.ndarray:
    norms = np.empty(len(offsets) - 1, dtype=np.float64)
    for lo, hi in chunks:
        r, o = _ragged_slice(rows, offsets, lo, hi)
        norms[lo:hi] = doc_norms(o, None if idf is None else idf[r], norm)
        drop_resident(rows)
    return norms


# batch_size = "auto": the batch grows with the corpus, so a large corpus takes fewer,
# cheaper steps (a step's fixed cost dominates at small batches), and the learning rate grows
# in proportion (the linear scaling rule). Chosen on validation: a corpus of 81k documents,
# validated on 1,000 held-out ones, gave the same accuracy at batch 512 / lr 16 as at 64 / 2.
