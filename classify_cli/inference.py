"""Inference with numpy alone: fast to start, exact, and the same numbers as the torch model.

The model is linear up to the logits, so each feature's contribution to the logits can be
computed once at load: ``T = E · Wᵀ`` (one row of class scores per feature). A document's
logits are then ``sum_i w_i · T[f_i] + b`` — a gather and a weighted sum, no torch needed.
The same table gives exact explanations: ``w_i · T[f_i]`` is what feature i added.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .bundle import Bundle
from .features import FeatureSpec, bag_weights, featurize
from .ragged import offsets_from_lengths
from .text import TokenIndex, Vocab, make_tokenizer

# documents per vectorized step: large enough to amortize numpy's call overhead, small enough
# that its temporary arrays are reused rather than freshly mapped (page faults dominate then)
CHUNK_DOCS = 4096
# joins many texts into one string for tokenizing; not whitespace, so it survives as a token
_SEPARATOR = "\x00"


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


@dataclass
class Encoded:
    ids: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1


class Predictor:
    def __init__(self, bundle: Bundle):
        meta, t = bundle.meta, bundle.tensors
        self.labels: list[str] = list(meta["labels"])
        self.vocab = Vocab(meta["vocab"])
        self.tokenize = make_tokenizer(meta["tokenizer"])
        f = meta["features"]
        self.spec = FeatureSpec(len(self.vocab), f["ngrams"], f["buckets"], f["weighting"])
        self.kept_buckets = t["ngram_buckets"]
        # rows: words, then the n-gram buckets seen in training, then one zero row for the rest
        embedding = np.concatenate(
            [t["word_embedding"], t["ngram_embedding"], np.zeros((1, t["word_embedding"].shape[1]), np.float32)]
        )
        self.feature_logits = (embedding @ t["fc_weight"].T).astype(np.float32)
        self.bias = t["fc_bias"].astype(np.float32)
        # bucket -> row of the compact table (the shared zero row for buckets never seen)
        self.bucket_rows = np.full(self.spec.buckets if self.spec.ngrams > 1 else 0, len(embedding) - 1, np.int64)
        self.bucket_rows[self.kept_buckets] = self.spec.vocab_size + np.arange(len(self.kept_buckets))
        self._lookup = TokenIndex(self.vocab.stoi, self.vocab.unk_index)
        self._lookup[_SEPARATOR] = -1
        self.idf = None
        if f["weighting"] == "tfidf":
            self.idf = np.concatenate([t["word_idf"], t["ngram_idf"], [np.float32(f["unseen_idf"])]])

    # -- text to ids ---------------------------------------------------------------------
    def encode(self, texts: Iterable[str]) -> Encoded:
        """Token ids of many texts: tokenized as one string, so Python's per-call cost is paid once."""
        texts = list(texts)
        joined = f" {_SEPARATOR} ".join(texts)
        if joined.count(_SEPARATOR) != max(len(texts) - 1, 0):  # a text holds the separator itself
            return self._encode_each(texts)
        tokens = self.tokenize(joined)
        ids = np.fromiter(map(self._lookup.__getitem__, tokens), dtype=np.int64, count=len(tokens))
        is_sep = ids == -1
        lengths = np.bincount(np.cumsum(is_sep)[~is_sep], minlength=len(texts)) if len(texts) else np.zeros(0, np.int64)
        return Encoded(ids[~is_sep], offsets_from_lengths(lengths))

    def _encode_each(self, texts: Sequence[str]) -> Encoded:
        ids: list[int] = []
        lengths: list[int] = []
        for text in texts:
            doc = self.vocab.lookup_indices(self.tokenize(text))
            ids.extend(doc)
            lengths.append(len(doc))
        return Encoded(np.asarray(ids, dtype=np.int64), offsets_from_lengths(np.asarray(lengths, dtype=np.int64)))

    def rows(self, ids: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feature rows of the compact tables, and their offsets."""
        feats, feat_offsets = featurize(ids, offsets, self.spec)
        is_ngram = feats >= self.spec.vocab_size
        if is_ngram.any():
            feats = feats.copy()
            feats[is_ngram] = self.bucket_rows[feats[is_ngram] - self.spec.vocab_size]
        return feats, feat_offsets

    def weights(self, rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        return bag_weights(rows, offsets, None if self.idf is None else self.idf[rows])

    # -- ids to logits -------------------------------------------------------------------
    def logits_from_ids(self, ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Logits of every document, a few thousand at a time (small arrays are much faster here)."""
        n = len(offsets) - 1
        out = np.zeros((n, len(self.labels)), dtype=np.float32)
        for first in range(0, n, CHUNK_DOCS):
            last = min(first + CHUNK_DOCS, n)
            chunk = offsets[first : last + 1]
            rows, feat_offsets = self.rows(ids[chunk[0] : chunk[-1]], chunk - chunk[0])
            contrib = self.feature_logits[rows] * self.weights(rows, feat_offsets)[:, None]
            nonempty = np.flatnonzero(np.diff(feat_offsets) > 0)
            if len(nonempty):
                out[first + nonempty] = np.add.reduceat(contrib, feat_offsets[nonempty], axis=0)
        return out + self.bias

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        enc = self.encode(texts)
        return self.logits_from_ids(enc.ids, enc.offsets)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return softmax(self.logits(texts))

    def explain(self, text: str, top: int = 5) -> list[tuple[str, float]]:
        """Features that pushed the predicted class most: (feature, contribution to its logit)."""
        tokens = self.tokenize(text)
        ids = np.asarray(self.vocab.lookup_indices(tokens), dtype=np.int64)
        offsets = np.array([0, len(ids)], dtype=np.int64)
        rows, feat_offsets = self.rows(ids, offsets)
        weights = self.weights(rows, feat_offsets)
        contrib = weights[:, None] * self.feature_logits[rows]
        predicted = int(np.argmax(contrib.sum(axis=0) + self.bias))
        names = list(tokens) + [
            " ".join(tokens[i : i + n]) for n in range(2, self.spec.ngrams + 1) for i in range(len(tokens) - n + 1)
        ]
        scores: dict[str, float] = {}
        for name, value in zip(names, contrib[:, predicted], strict=True):
            scores[name] = scores.get(name, 0.0) + float(value)
        return sorted(scores.items(), key=lambda kv: -kv[1])[:top]
