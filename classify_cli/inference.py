"""Inference with numpy alone: fast to start, exact, and the same numbers as the torch model.

The model is linear up to the logits, so each feature's contribution to the logits can be
computed once at load: ``T = E · Wᵀ`` (one row of class scores per feature). A document's
logits are then ``sum_i w_i · T[f_i] + b`` — a gather and a weighted sum, no torch needed.
The same table gives exact explanations: ``w_i · T[f_i]`` is what feature i added.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from .bundle import Bundle
from .features import TFIDF, FeatureSpec, RowMap, bag_weights, norm_of
from .ragged import offsets_from_lengths, segment_sum
from .text import Vocab, encode_token, make_normalizer, make_tokenizer, ngram_orders
from .token_table import TokenTable

T = TypeVar("T")

# documents per vectorized step: large enough to amortize numpy's call overhead, small enough
# that its temporary arrays are reused rather than freshly mapped (page faults dominate then)
CHUNK_DOCS = 4096
# fewer texts than this are tokenized one by one, with the vocabulary's dict
FEW_TEXTS = 32
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


@dataclass
class Scored:
    logits: np.ndarray
    tokens: np.ndarray  # tokens per text
    known: np.ndarray  # of which in the vocabulary


class Predictor:
    def __init__(self, bundle: Bundle):
        meta, t = bundle.meta, bundle.tensors
        self.labels: list[str] = list(meta["labels"])
        self.vocab = Vocab(meta["vocab"])
        self.tokenize = make_tokenizer(meta["tokenizer"])
        self._normalize = make_normalizer(meta["tokenizer"])
        f = meta["features"]
        self.spec = FeatureSpec(len(self.vocab), f["ngrams"], f["buckets"], f["weighting"])
        self.row_map = RowMap(self.spec, t["ngram_buckets"])
        # the training table's layout: words, seen n-gram buckets, one zero row for the rest
        embedding = np.concatenate(
            [t["word_embedding"], t["ngram_embedding"], np.zeros((1, t["word_embedding"].shape[1]), np.float32)]
        )
        self.feature_logits = (embedding @ t["fc_weight"].T).astype(np.float32)
        self.bias = t["fc_bias"].astype(np.float32)
        self.idf = None
        if f["weighting"] in TFIDF:
            self.idf = np.concatenate([t["word_idf"], t["ngram_idf"], [np.float32(f["unseen_idf"])]])
        # A bag's logits are sum_i w_i T[f_i] with w_i = idf_i / norm (or 1 / length): the IDF
        # folds into the table and the norm is applied once per document.
        self.norm = norm_of(self.spec.weighting) if self.idf is not None else "count"
        self._weighted_logits = self.feature_logits if self.idf is None else self.feature_logits * self.idf[:, None]
        if self.idf is None:
            self._norm_terms = np.ones(self.row_map.num_rows, np.float32)
        else:
            self._norm_terms = self.idf**2 if self.norm == "l2" else self.idf
        self._token_table: TokenTable | None = None

    # -- text to ids ---------------------------------------------------------------------
    def _table(self) -> TokenTable:
        """UTF-8 token -> id, with the separator of joined texts as -1 (built on first use)."""
        if self._token_table is None:
            tokens = [encode_token(tok) for tok in self.vocab.itos] + [_SEPARATOR.encode()]
            self._token_table = TokenTable(tokens, [*range(len(self.vocab)), -1], self.vocab.unk_index)
        return self._token_table

    def encode(self, texts: Iterable[str]) -> Encoded:
        """Token ids of many texts: tokenized as one string, so Python's per-call cost is paid once."""
        texts = list(texts)
        if len(texts) < FEW_TEXTS:  # not worth building the token table (predict "text" starts faster)
            return self._encode_each(texts)
        joined = f" {_SEPARATOR} ".join(texts)
        if joined.count(_SEPARATOR) != len(texts) - 1:  # a text holds the separator itself
            return self._encode_each(texts)
        ids = self._table().lookup(self._normalize(joined))
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
        """Rows of the compact table for every document's features, and their offsets."""
        return self.row_map.rows(ids, offsets)

    def weights(self, rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        return bag_weights(rows, offsets, None if self.idf is None else self.idf[rows], norm_of(self.spec.weighting))

    # -- ids to logits -------------------------------------------------------------------
    def logits_from_ids(self, ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Logits of every document, a few thousand at a time (small arrays are much faster here)."""
        n = len(offsets) - 1
        out = np.zeros((n, len(self.labels)), dtype=np.float32)
        for first in range(0, n, CHUNK_DOCS):
            last = min(first + CHUNK_DOCS, n)
            chunk = offsets[first : last + 1]
            out[first:last] = self._bag_logits(ids[chunk[0] : chunk[-1]], chunk - chunk[0])
        return out + self.bias

    def _bag_logits(self, ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """sum_i w_i T[f_i] per document, summed order by order (tokens, bigrams, ...)."""
        s = self.spec
        total = np.zeros((len(offsets) - 1, len(self.labels)), dtype=np.float32)
        mass = np.zeros(len(offsets) - 1, dtype=np.float32)
        for feats, order_offsets in ngram_orders(ids, offsets, s.ngrams, s.vocab_size, s.buckets):
            rows = self.row_map.to_rows(feats)
            # np.take gathers rows several times faster than fancy indexing
            total += segment_sum(np.take(self._weighted_logits, rows, axis=0), order_offsets)
            mass += segment_sum(np.take(self._norm_terms, rows), order_offsets)
        norm = np.sqrt(mass) if self.norm == "l2" else mass
        return total / np.maximum(norm, 1e-12)[:, None]

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        enc = self.encode(texts)
        return self.logits_from_ids(enc.ids, enc.offsets)

    def score(self, texts: Sequence[str]) -> Scored:
        """Logits plus, per text, how many tokens it has and how many the vocabulary knows."""
        enc = self.encode(texts)
        known = segment_sum((enc.ids != self.vocab.unk_index).astype(np.int64), enc.offsets)
        return Scored(self.logits_from_ids(enc.ids, enc.offsets), np.diff(enc.offsets), known)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return softmax(self.logits(texts))

    def explain(self, text: str, top: int = 5) -> list[tuple[str, float]]:
        """Features that pushed the predicted class most: (feature, contribution to its logit)."""
        tokens = self.tokenize(text)
        ids = np.asarray(self.vocab.lookup_indices(tokens), dtype=np.int64)
        offsets = np.array([0, len(ids)], dtype=np.int64)
        rows, feat_offsets = self.rows(ids, offsets)
        weights = self.weights(rows, feat_offsets)
        contrib = weights[:, None] * np.take(self.feature_logits, rows, axis=0)
        predicted = int(np.argmax(contrib.sum(axis=0) + self.bias))
        names = list(tokens) + [
            " ".join(tokens[i : i + n]) for n in range(2, self.spec.ngrams + 1) for i in range(len(tokens) - n + 1)
        ]
        scores: dict[str, float] = {}
        for name, value in zip(names, contrib[:, predicted], strict=True):
            scores[name] = scores.get(name, 0.0) + float(value)
        return sorted(scores.items(), key=lambda kv: -kv[1])[:top]


# --- scoring many texts on every core -------------------------------------------------------


def _score(state: tuple[Predictor, Callable], batch) -> Scored:
    predictor, texts_of = state
    return predictor.score(texts_of(batch))


def score_batches(
    predictor: Predictor, batches: Iterable[T], texts_of: Callable[[T], list[str]], workers: int | None = None
) -> Iterator[tuple[T, Scored]]:
    """Each batch with the scores of its texts, in order, tokenized in parallel worker processes."""
    from .parallel import parallel_map

    return parallel_map(_score, (predictor, texts_of), batches, workers)
