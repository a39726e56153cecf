"""The trained model's tensors and its forward pass in numpy: the one owner of both (no torch).

The model is linear up to the logits:

    logits = W · (Σᵢ wᵢ E[fᵢ]) + b = Σᵢ wᵢ (E Wᵀ)[fᵢ] + b

so for scoring, a trained model is one table of class scores per feature, ``S = E Wᵀ``. Its
weights are ``wᵢ = idfᵢ / norm`` (IDF from the train split; 1 for ``mean``), so IDF folds into
the table too: ``scores[r] = idf[r] · S[r]``, and a document's logits are the sum of its
features' rows divided by its norm (``√Σ idf²`` for l2, ``Σ idf`` for l1, its length for
``mean``), plus ``b``. Two forms of the same model therefore exist:

- **training tensors** (``TRAINING``): the torch model's parameters, kept in a checkpoint to
  resume; ``train/net.py`` moves them in and out of torch, and gives ``E Wᵀ`` (``class_table``);
- **scoring tensors** (``SCORING``): the table, each row's norm term, the bias, which n-gram
  buckets and words have rows, and the vocabulary as a hash table over UTF-8 tokens. This is
  all a bundle keeps: ``predict`` maps it and reads only the rows a text touches.

Rows of the table: the kept words (all of them unless compressed), the kept n-gram buckets,
then one shared row for every feature without a row of its own (scores zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..text.token_table import TokenTable
from ..text.tokens import LEGACY_NGRAM_HASH
from ..util.errors import BundleError
from ..util.ragged import segment_sum
from .features import FeatureSpec, RowMap

# the torch model's parameters as a checkpoint stores them (rows: words, seen buckets)
TRAINING = ("word_embedding", "ngram_embedding", "fc_weight", "fc_bias")
# what a bundle stores; a compressed one also "kept_words" (the word ids with a row) and, when
# its table is int8, "scale" (one per row)
SCORING = (
    "scores",
    "norm_terms",
    "bias",
    "ngram_buckets",
    "vocab.keys",
    "vocab.ids",
    "vocab.long_tokens",
    "vocab.long_ids",
)
# documents per vectorized step: large enough to amortize numpy's call overhead, small enough
# that its temporary arrays are reused rather than freshly mapped
CHUNK_DOCS = 4096


def scoring_tensors(
    table: np.ndarray,
    bias: np.ndarray,
    ngram_buckets: np.ndarray,
    idf: np.ndarray | None,
    norm: str,
    vocab: TokenTable,
) -> dict[str, np.ndarray]:
    """The scoring form of a trained model from ``table = E Wᵀ`` (``train/net.py``'s ``class_table``):
    ``scores = idf · table`` per row, the shared zero row last, and each row's norm term."""
    rows = len(table) + 1
    weight = np.ones(rows, dtype=np.float32) if idf is None else np.asarray(idf, dtype=np.float32)
    scores = np.zeros((rows, table.shape[1]), dtype=np.float32)
    np.multiply(table, weight[:-1, None], out=scores[:-1])
    return {
        "scores": scores,
        "norm_terms": weight**2 if norm == "l2" else weight,
        "bias": np.asarray(bias, dtype=np.float32),
        "ngram_buckets": np.asarray(ngram_buckets, dtype=np.int32),
        **{f"vocab.{k}": v for k, v in vocab.arrays().items()},
    }


def describe(tensors: dict[str, np.ndarray], spec: FeatureSpec, unk_index: int, norm: str) -> dict:
    """The ``head`` section of ``model.json``: what ``meta.scoring_shapes`` checks a file against."""
    return {
        "vocab_size": spec.vocab_size,
        "unk_index": unk_index,
        "ngrams": spec.ngrams,
        "buckets": spec.buckets,
        "ngram_hash": spec.ngram_hash,
        "norm": norm,
        "dtype": str(tensors["scores"].dtype),
        "kept_words": len(tensors["kept_words"]) if "kept_words" in tensors else spec.vocab_size,
        "kept_buckets": len(tensors["ngram_buckets"]),
        "vocab_bits": len(tensors["vocab.ids"]).bit_length() - 1,
        "long_bytes": len(tensors["vocab.long_tokens"]),
        "long_tokens": len(tensors["vocab.long_ids"]),
    }


def spec_of(head: dict) -> FeatureSpec:
    """The features a ``head`` section describes (its weighting is folded into the table)."""
    hashed = head.get("ngram_hash", LEGACY_NGRAM_HASH)
    return FeatureSpec(head["vocab_size"], head["ngrams"], head["buckets"], "mean", hashed)


def vocab_table(tensors: dict[str, np.ndarray], default: int) -> TokenTable:
    """The vocabulary's hash table from a bundle's ``vocab.*`` tensors."""
    return TokenTable.from_arrays(
        {k.removeprefix("vocab."): v for k, v in tensors.items() if k.startswith("vocab.")}, default
    )


@dataclass
class Scored:
    logits: np.ndarray
    tokens: np.ndarray  # tokens per text
    known: np.ndarray  # of which in the vocabulary
    prints: np.ndarray | None = None  # each text's fingerprint (ragged.fingerprints of its token ids)


class Head:
    """The forward pass over scoring tensors: token ids to logits, and each feature's share."""

    def __init__(self, tensors: dict[str, np.ndarray], head: dict):
        self.spec = spec_of(head)
        self.unk_index = head["unk_index"]
        self.norm = head["norm"]
        self.scores = tensors["scores"]
        self.scale = tensors.get("scale")
        self.norm_terms = tensors["norm_terms"]
        self.bias = tensors["bias"].astype(np.float32)
        self.row_map = RowMap(self.spec, tensors["ngram_buckets"], tensors.get("kept_words"))
        self.vocab = vocab_table(tensors, self.unk_index)

    def known_ids(self, ids: np.ndarray) -> np.ndarray:
        """``ids`` with words the model has no row for (dropped by ``compress``) as ``<unk>``:
        their n-grams then hash as they do for text, whose lookup does not know them."""
        return self.row_map.known_words(ids, self.unk_index)

    def score_rows(self, rows: np.ndarray) -> np.ndarray:
        """The table's rows as float32 (int8 rows scaled back)."""
        gathered = np.take(self.scores, rows, axis=0)  # np.take gathers several times faster than indexing
        if self.scale is not None:
            return gathered.astype(np.float32) * np.take(self.scale, rows)[:, None]
        return gathered.astype(np.float32, copy=False)

    def logits(self, ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Logits of every document, a few thousand at a time (small arrays are much faster here)."""
        ids = self.known_ids(ids)
        n = len(offsets) - 1
        out = np.zeros((n, len(self.bias)), dtype=np.float32)
        with np.errstate(all="ignore"):  # what a tampered table yields is refused below, not warned about
            for first in range(0, n, CHUNK_DOCS):
                last = min(first + CHUNK_DOCS, n)
                chunk = offsets[first : last + 1]
                out[first:last] = self._bag_logits(ids[chunk[0] : chunk[-1]], chunk - chunk[0])
            out += self.bias
        if not np.isfinite(out).all():  # only a tampered table gets here: never print NaN as a probability
            raise BundleError(
                "the model's weights hold NaN or infinite values (modified?); `classify evaluate` checks it whole"
            )
        return out

    def _bag_logits(self, ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Σ scores[fᵢ] / norm per document, summed order by order (tokens, bigrams, ...)."""
        s = self.spec
        total = np.zeros((len(offsets) - 1, len(self.bias)), dtype=np.float32)
        mass = np.zeros(len(offsets) - 1, dtype=np.float32)
        for feats, order_offsets in s.orders(ids, offsets):
            rows = self.row_map.to_rows(feats)
            total += segment_sum(self.score_rows(rows), order_offsets)
            mass += segment_sum(np.take(self.norm_terms, rows), order_offsets)
        if self.norm == "none":  # tfidf-sum: the weights are final
            return total
        norm = np.sqrt(mass) if self.norm == "l2" else mass
        return total / np.maximum(norm, 1e-12)[:, None]

    def contributions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One document's features (tokens, then n-grams, in order) and what each adds to every
        logit: ``scores[fᵢ] / norm``; they sum to the logits less the bias."""
        ids = self.known_ids(ids)
        offsets = np.array([0, len(ids)], dtype=np.int64)
        feats = np.concatenate([f for f, _ in self.spec.orders(ids, offsets)])
        rows = self.row_map.to_rows(feats)
        mass = float(np.take(self.norm_terms, rows).sum(dtype=np.float64))
        norm = 1.0 if self.norm == "none" else np.sqrt(mass) if self.norm == "l2" else mass
        return rows, self.score_rows(rows) / max(norm, 1e-12)
