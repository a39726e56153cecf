"""From token ids to the weighted bag of features the model sums (no torch here).

A document's features are its token ids followed by hashed n-gram buckets; each feature
occurrence gets a weight and the weights of a document sum to 1, so the bag is a (weighted)
mean: plain 1/length for ``mean``, proportional to the train split's IDF for ``tfidf``.
Training and both inference paths call these same functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ragged import row_ids
from .text import ngram_ids

TFIDF = ("tfidf", "tfidf-l2")  # the weightings that need the train split's IDF


def norm_of(weighting: str) -> str:
    return "l2" if weighting == "tfidf-l2" else "l1"


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
    """Feature id -> row of the model's embedding table.

    The table holds only what training saw: the vocabulary's rows, then one row per n-gram
    bucket that occurs in the train split (sorted), then one zero row shared by every bucket
    training never saw. A model of millions of buckets thus costs memory only for the few
    thousand it uses, in training and in the saved bundle alike.
    """

    def __init__(self, spec: FeatureSpec, seen_buckets: np.ndarray):
        self.spec = spec
        self.seen_buckets = np.asarray(seen_buckets, dtype=np.int64)
        self.unseen_row = spec.vocab_size + len(self.seen_buckets)
        self.num_rows = self.unseen_row + 1
        self._bucket_rows = np.full(spec.buckets if spec.ngrams > 1 else 0, self.unseen_row, dtype=np.int64)
        self._bucket_rows[self.seen_buckets] = spec.vocab_size + np.arange(len(self.seen_buckets))

    @classmethod
    def fit(cls, spec: FeatureSpec, train_feats: np.ndarray) -> RowMap:
        return cls(spec, unique(train_feats[train_feats >= spec.vocab_size]) - spec.vocab_size)

    def rows(self, ids: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Table rows of every document's features (tokens, then n-grams), and their offsets."""
        feats, feat_offsets = featurize(ids, offsets, self.spec)
        return self.to_rows(feats), feat_offsets

    def to_rows(self, feats: np.ndarray) -> np.ndarray:
        """Map feature ids to table rows (n-gram buckets to their compact rows)."""
        is_ngram = feats >= self.spec.vocab_size
        if not is_ngram.any():
            return feats
        rows = feats.copy()
        rows[is_ngram] = self._bucket_rows[feats[is_ngram] - self.spec.vocab_size]
        return rows


def unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique is many times slower on large arrays in numpy 2.x)."""
    if len(values) == 0:
        return values.copy()
    ordered = np.sort(values)
    first = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def document_frequency(feats: np.ndarray, offsets: np.ndarray, num_features: int) -> np.ndarray:
    """In how many documents each feature occurs."""
    if len(feats) == 0:
        return np.zeros(num_features, dtype=np.int64)
    docs = row_ids(offsets)
    pairs = unique(docs * np.int64(num_features) + feats)
    return np.bincount(pairs % num_features, minlength=num_features)


def smooth_idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    """scikit-learn's smoothed IDF: ln((1 + n) / (1 + df)) + 1, always >= 1."""
    return (np.log((1.0 + n_docs) / (1.0 + df)) + 1.0).astype(np.float32)


def bag_weights(rows: np.ndarray, offsets: np.ndarray, idf: np.ndarray | None, norm: str = "l1") -> np.ndarray:
    """Per-occurrence weights of each document's bag of features.

    ``idf`` is indexed like ``rows`` (one value per occurrence); ``None`` means plain mean.
    ``l1``: weights proportional to idf that sum to 1 per document (an IDF-weighted mean).
    ``l2``: weights proportional to idf whose squares sum to 1 per document. A feature's
    weight then shrinks as 1/sqrt(length) instead of 1/length, so long documents still move
    the model: with the mean, corpora of long documents barely trained (measured: 0.50
    accuracy on 760 long AG News documents against 0.99 with l2).
    """
    lengths = np.diff(offsets)
    docs = row_ids(offsets)
    if idf is None:
        per_doc = 1.0 / np.maximum(lengths, 1)
        return per_doc[docs].astype(np.float32)
    raw = np.asarray(idf, dtype=np.float64)
    if norm == "l1":
        totals = np.bincount(docs, weights=raw, minlength=len(lengths))
        return (raw / np.maximum(totals, 1e-12)[docs]).astype(np.float32)
    squares = np.bincount(docs, weights=raw * raw, minlength=len(lengths))
    return (raw / np.sqrt(np.maximum(squares, 1e-12))[docs]).astype(np.float32)
