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
from .ragged import offsets_from_lengths, row_ids
from .text import Vocab, make_tokenizer


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
        self.idf = None
        if f["weighting"] == "tfidf":
            self.idf = np.concatenate([t["word_idf"], t["ngram_idf"], [np.float32(f["unseen_idf"])]])

    # -- text to ids ---------------------------------------------------------------------
    def encode(self, texts: Iterable[str]) -> Encoded:
        ids: list[int] = []
        lengths: list[int] = []
        lookup, tokenize = self.vocab.lookup_indices, self.tokenize
        for text in texts:
            doc = lookup(tokenize(text))
            ids.extend(doc)
            lengths.append(len(doc))
        return Encoded(np.asarray(ids, dtype=np.int64), offsets_from_lengths(np.asarray(lengths, dtype=np.int64)))

    def rows(self, ids: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feature rows of the compact tables, and their offsets."""
        feats, feat_offsets = featurize(ids, offsets, self.spec)
        rows = feats.copy()
        is_ngram = feats >= self.spec.vocab_size
        if is_ngram.any():
            buckets = feats[is_ngram] - self.spec.vocab_size
            pos = np.searchsorted(self.kept_buckets, buckets)
            pos_clipped = np.minimum(pos, max(len(self.kept_buckets) - 1, 0))
            found = (
                (pos < len(self.kept_buckets)) & (self.kept_buckets[pos_clipped] == buckets)
                if len(self.kept_buckets)
                else np.zeros(len(buckets), bool)
            )
            unseen_row = self.spec.vocab_size + len(self.kept_buckets)
            rows[is_ngram] = np.where(found, self.spec.vocab_size + pos, unseen_row)
        return rows, feat_offsets

    def weights(self, rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        return bag_weights(rows, offsets, None if self.idf is None else self.idf[rows])

    # -- ids to logits -------------------------------------------------------------------
    def logits_from_ids(self, ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        rows, feat_offsets = self.rows(ids, offsets)
        weights = self.weights(rows, feat_offsets)
        docs = row_ids(feat_offsets)
        n = len(feat_offsets) - 1
        out = np.empty((n, len(self.labels)), dtype=np.float64)
        for c in range(len(self.labels)):
            out[:, c] = np.bincount(docs, weights=weights * self.feature_logits[rows, c], minlength=n)
        return (out + self.bias).astype(np.float32)

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
