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

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..text.tokens import NGRAM_HASHES, ngram_ids, ngram_orders
from ..util.ragged import row_ids

TFIDF = ("tfidf", "tfidf-l2", "tfidf-sum")  # the weightings that need the train split's IDF


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
    ngram_hash: str = NGRAM_HASHES[0]  # how n-grams find their bucket (``tokens.ngram_bucket``)

    @property
    def num_features(self) -> int:
        return self.vocab_size + (self.buckets if self.ngrams > 1 else 0)

    def orders(self, ids: np.ndarray, offsets: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """The documents' features order by order (``tokens.ngram_orders``)."""
        return ngram_orders(ids, offsets, self.ngrams, self.vocab_size, self.buckets, self.ngram_hash)


def featurize(ids: np.ndarray, offsets: np.ndarray, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    return ngram_ids(ids, offsets, spec.ngrams, spec.vocab_size, spec.buckets, spec.ngram_hash)


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
        self._feature_rows: np.ndarray | None = None  # feature id -> row for every one, built when worth it

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
        if self._feature_rows is not None or len(feats) >= DENSE_FROM:
            return self._dense()[feats]
        is_ngram = feats >= self.spec.vocab_size
        if self.kept_words is None and not is_ngram.any():
            return feats
        rows = feats.copy()
        if self.kept_words is not None:
            words = ~is_ngram
            rows[words] = _positions(self.kept_words, feats[words], 0, self.unseen_row)
        if is_ngram.any():
            buckets = feats[is_ngram] - self.spec.vocab_size
            rows[is_ngram] = _positions(
                self.seen_buckets, buckets, self.unseen_row - len(self.seen_buckets), self.unseen_row
            )
        return rows

    def known_words(self, ids: np.ndarray, default: int) -> np.ndarray:
        """``ids``, with ``default`` for every word without a row."""
        if self.kept_words is None:
            return ids
        kept = _positions(self.kept_words, ids, 0, -1) >= 0
        return np.where(kept, ids, default)

    def _dense(self) -> np.ndarray:
        """The row of every feature id, in one int32 array (4 bytes a word and a bucket)."""
        if self._feature_rows is None:
            spec, n_words = self.spec, self.unseen_row - len(self.seen_buckets)
            dense = np.full(spec.num_features, self.unseen_row, dtype=np.int32)
            if self.kept_words is None:
                dense[: spec.vocab_size] = np.arange(spec.vocab_size, dtype=np.int32)
            else:
                dense[self.kept_words] = np.arange(n_words, dtype=np.int32)
            dense[spec.vocab_size + self.seen_buckets] = np.arange(n_words, self.unseen_row, dtype=np.int32)
            self._feature_rows = dense
        return self._feature_rows


# a lookup of at least this many features builds the dense feature -> row array (4 bytes a
# feature id) instead of binary searches; predicting a few texts never does
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


# up to this many classes, counted in one bincount of rows x classes (8 bytes a cell, briefly);
# more, one class at a time (8 bytes a row)
ONE_PASS_CLASSES = 8


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
    if label.ndim == 1 and num_classes <= ONE_PASS_CLASSES:  # a single bincount in the table's own layout
        flat = np.bincount(row * num_classes + label, minlength=num_rows * num_classes)
        np.add(counts, flat.reshape(num_rows, num_classes), out=counts, casting="unsafe")
        return counts
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
    return occurrence_weights(idf, doc_norms(offsets, idf, norm), np.diff(offsets))


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


def occurrence_weights(idf: np.ndarray | None, norms: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each occurrence's weight: its idf (1 for the mean) over its document's norm (float32);
    ``norms`` and ``lengths`` (its occurrences) per document, occurrences document by document."""
    if idf is None:
        return np.repeat(1.0 / norms, lengths).astype(np.float32)
    return (np.asarray(idf, dtype=np.float64) / np.repeat(norms, lengths)).astype(np.float32)
