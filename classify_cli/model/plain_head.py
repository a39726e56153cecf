"""The head's forward pass (``head.py``) in plain Python, for a few texts: ``predict TEXT`` then
starts without numpy and reads from the weights file only the bytes its texts touch.

Its numbers are numpy's, bit for bit: float32 arithmetic (each result rounded to float32, which
for +, -, ×, ÷ and √ of float32 values is the float32 operation itself), sums in numpy's order
(``np.add.reduceat`` copies a segment's first value and adds the pairwise sum of the rest), the
same vocabulary probes, n-gram hashes and row map. Loading checks what ``load_bundle(verify=False)``
checks: ``model.json``, the file's size and header, the tensors' shapes, a finite bias.
tests/test_plain_head.py holds it to ``Head``.
"""

from __future__ import annotations

import math
import os
import struct
from bisect import bisect_left
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..text.token_keys import MAX_KEY_BYTES, key_of, slot_of
from ..text.tokens import LEGACY_NGRAM_HASH, make_normalizer, ngram_bucket
from ..util.errors import BundleError
from ..util.floats import f32, pairwise_sum
from ..util.safetensors import ITEMSIZE, extents
from .meta import check_header, check_shapes, open_weights, read_meta
from .task import task_of

_SEPARATOR = "\x00"  # joins texts for tokenizing, as ``inference.Predictor.encode`` does
# struct's code for each dtype a scoring tensor may have; the keys' words are compared unsigned
_CODES = {"float32": "f", "float16": "e", "int8": "b", "int32": "i", "int64": "Q", "uint8": "B"}


TINY = f32(1e-12)  # Head's floor under a document's norm, as float32


def segment_sum(values: Sequence[float]) -> float:
    """One segment's float32 sum as ``np.add.reduceat`` makes it (0 for an empty one)."""
    if not values:
        return 0.0
    return f32(values[0] + pairwise_sum(values[1:])) if len(values) > 1 else values[0]


class Tensor:
    """One tensor of the weights file, read a row (or, for one axis, a value) at a time."""

    def __init__(self, fd: int, path: Path, dtype: str, shape: tuple[int, ...], offset: int):
        self.fd, self.path, self.offset = fd, path, offset
        self.rows = shape[0]
        self.width = math.prod(shape[1:])
        self.matrix = len(shape) > 1
        self.row_bytes = self.width * ITEMSIZE[dtype]
        self._row = struct.Struct(f"<{self.width}{_CODES[dtype]}")

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, i: int) -> Any:
        if not -self.rows <= i < self.rows:  # numpy's take: a negative index counts from the end
            raise IndexError(f"index {i} is out of bounds for a tensor of {self.rows} rows")
        row = self._row.unpack(self._read(self.row_bytes, (i % self.rows) * self.row_bytes))
        return row if self.matrix else row[0]

    def read(self) -> bytes:
        """The whole tensor's bytes."""
        return self._read(self.rows * self.row_bytes, 0)

    def _read(self, n: int, at: int) -> bytes:
        data = os.pread(self.fd, n, self.offset + at)
        if len(data) < n:  # as Bundle.check_intact says it
            raise BundleError(
                f"{self.path}: the weights file was truncated while in use; a model must be replaced "
                "by writing a new file and renaming it, never rewritten in place"
            )
        return data


def _position(sorted_values: Tensor, value: int) -> int | None:
    """Where ``value`` is in ``sorted_values``, or None (``features._positions``)."""
    pos = bisect_left(sorted_values, value)
    return pos if pos < len(sorted_values) and sorted_values[pos] == value else None


class PlainHead:
    """A bundle's labels and logits for a few texts, read from its weights file as they are needed."""

    def __init__(self, run_dir: Path):
        meta = read_meta(run_dir)
        path, fh = open_weights(run_dir, meta)
        self._file = fh  # kept open for the reads; closed with the process
        fd, size = fh.fileno(), meta["weights"]["bytes"]
        head = os.pread(fd, 8, 0)
        head = os.pread(fd, min(8 + int.from_bytes(head, "little"), size), 0)
        check_header(head, meta, path)
        try:
            found = extents(head, size)
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, RecursionError) as exc:
            raise BundleError(f"{path}: not a valid safetensors file ({exc})") from None
        check_shapes(meta, {name: (shape, dtype) for name, (dtype, shape, _) in found.items()}, path)
        t = {name: Tensor(fd, path, dtype, shape, offset) for name, (dtype, shape, offset) in found.items()}
        self.bias = [f32(b) for b in t["bias"]]
        if not all(math.isfinite(b) for b in self.bias):
            raise BundleError(f"{path}: the weights hold NaN or infinite values, or negative norms (modified?)")
        h = meta["head"]
        self.task = task_of(meta)  # how the logits are decided (plain_decide) and recorded
        self.labels: list[str] = list(meta["labels"])
        self.normalize = make_normalizer(meta["tokenizer"])
        self.unk, self.norm, self.vocab_size = h["unk_index"], h["norm"], h["vocab_size"]
        self.ngrams, self.buckets = h["ngrams"], h["buckets"]
        self.ngram_hash = h.get("ngram_hash", LEGACY_NGRAM_HASH)
        self.scores, self.norm_terms, self.scale = t["scores"], t["norm_terms"], t.get("scale")
        self.buckets_kept, self.words_kept = t["ngram_buckets"], t.get("kept_words")
        self.keys, self.ids, self.bits = t["vocab.keys"], t["vocab.ids"], h["vocab_bits"]
        self._long_tokens, self._long_ids = t["vocab.long_tokens"], t["vocab.long_ids"]
        self._long: dict[bytes, int] | None = None
        words = self.vocab_size if self.words_kept is None else len(self.words_kept)
        self.unseen_row = words + len(self.buckets_kept)  # the row shared by every feature without one

    # -- text to ids (``inference.Predictor.encode``, ``token_table.TokenTable.lookup``) ----------
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids, from the tokens of the texts joined (one call, as numpy's path)."""
        joined = f" {_SEPARATOR} ".join(texts)
        if joined.count(_SEPARATOR) != len(texts) - 1:  # a text holds the separator itself
            return [[self.token_id(t) for t in self.normalize(text).split()] for text in texts]
        docs: list[list[int]] = [[]]
        for token in self.normalize(joined).split():
            if token == b"\x00":
                docs.append([])
            else:
                docs[-1].append(self.token_id(token))
        return docs

    def token_id(self, token: bytes) -> int:
        if len(token) > MAX_KEY_BYTES:  # its key is not whole: looked up in full
            if self._long is None:
                ids = [self._long_ids[i] for i in range(len(self._long_ids))]
                self._long = dict(zip(self._long_tokens.read().split(), ids, strict=True))
            return self._long.get(token, self.unk)
        first, second = key_of(token)
        slot, mask = slot_of(first, second, self.bits), (1 << self.bits) - 1
        for _ in range(len(self.keys) + 1):  # a table always has empty slots; a tampered one might not
            key = self.keys[slot]
            if key == (first, second):
                return self.ids[slot]
            if key[1] == 0:
                break
            slot = (slot + 1) & mask
        return self.unk

    # -- ids to logits (``head.Head.logits``) ---------------------------------------------------
    def known_ids(self, ids: list[int]) -> list[int]:
        """``ids``, words without a row (dropped by ``compress``) as ``<unk>``."""
        if self.words_kept is None:
            return ids
        return [i if _position(self.words_kept, i) is not None else self.unk for i in ids]

    def row(self, feature: int) -> int:
        """The table's row of a feature (``features.RowMap.to_rows``)."""
        if feature < self.vocab_size:
            if self.words_kept is None:
                return feature
            pos = _position(self.words_kept, feature)
        else:
            pos = _position(self.buckets_kept, feature - self.vocab_size)
            if pos is not None:
                pos += self.unseen_row - len(self.buckets_kept)
        return self.unseen_row if pos is None else pos

    def features(self, ids: list[int]) -> list[list[int]]:
        """The document's features, order by order: its tokens, then each n-gram's bucket."""
        orders = [ids]
        if self.ngrams > 1 and self.buckets > 0:
            for n in range(2, self.ngrams + 1):
                grams = (ids[i : i + n] for i in range(len(ids) - n + 1))
                orders.append([self.vocab_size + ngram_bucket(g, self.buckets, self.ngram_hash) for g in grams])
        return orders

    def score_row(self, row: int) -> list[float]:
        """A row of the table as float32 (an int8 row scaled back)."""
        values = self.scores[row]
        if self.scale is None:
            return list(values)  # float32 as read; float16 widens exactly
        scale = self.scale[row]
        return [f32(v * scale) for v in values]

    def logits(self, known: list[int]) -> list[float]:
        """One document's logits from its ``known_ids``: Σ scores[f] / norm + bias, in float32 as
        ``Head`` sums them."""
        total, mass = [0.0] * len(self.bias), 0.0
        for feats in self.features(known):
            rows = [self.row(f) for f in feats]
            table = [self.score_row(r) for r in rows]
            total = [f32(t + segment_sum([r[c] for r in table])) for c, t in enumerate(total)]
            mass = f32(mass + segment_sum([self.norm_terms[r] for r in rows]))
        if self.norm == "l2":
            mass = f32(math.sqrt(mass)) if not mass < 0 else math.nan  # np.sqrt: NaN below 0, and of NaN
        norm = mass if math.isnan(mass) else max(mass, TINY)  # np.maximum keeps a NaN
        if self.norm == "none":  # tfidf-sum: the weights are final
            norm = f32(1.0)
        out = [f32(f32(t / norm) + b) for t, b in zip(total, self.bias, strict=True)]
        if not all(math.isfinite(x) for x in out):  # only a tampered table gets here
            raise BundleError(
                "the model's weights hold NaN or infinite values (modified?); `classify evaluate` checks it whole"
            )
        return out

    def score(self, texts: Sequence[str]) -> tuple[list[list[float]], list[int]]:
        """Each text's logits, and how many of its tokens the model knows."""
        docs = [self.known_ids(ids) for ids in self.encode(texts)]
        return [self.logits(ids) for ids in docs], [sum(i != self.unk for i in ids) for ids in docs]
