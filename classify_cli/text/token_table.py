"""Token ids of whitespace-separated UTF-8 text, found with numpy: no Python object per token.

Splitting a long string into millions of token objects and looking each up in a dict is
most of what scoring texts costs in Python. Here the tokens stay in the byte buffer: every
token of at most 15 bytes is turned, whole, into a 128-bit key (its bytes zero-padded, and
its length in the top byte) and found in an open-addressing hash table, all tokens of a
buffer probed at once. Keys are compared in full, so the result is exact, the same as
``[index.get(token, default) for token in data.split()]``. Longer tokens (rare: URLs and
the like) go through a dict.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .token_keys import MAX_KEY_BYTES, MIX

# _LOW_BYTES[n] keeps the n low (first, little-endian) bytes of a word
_LOW_BYTES = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)
_MIX = tuple(np.uint64(m) for m in MIX)


def token_spans(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of the tokens ``data.split()`` would give."""
    byte = np.frombuffer(data, dtype=np.uint8)
    word = np.zeros(len(data) + 2, dtype=bool)
    # not what bytes.split() splits on: " " or "\t\n\v\f\r" (9-13; the subtraction wraps below 9)
    np.logical_and(byte - np.uint8(9) > 4, byte != 32, out=word[1:-1])
    edges = np.flatnonzero(word[1:] != word[:-1])
    return edges[0::2], edges[1::2]


def _keys(data: bytes, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two key words of each token (meaningful for tokens of at most MAX_KEY_BYTES)."""
    padded = data + bytes(16)
    # the 8 bytes that begin at each position: an unaligned view with a stride of one byte
    words = np.ndarray((len(data) + 9,), dtype="<u8", buffer=padded, strides=(1,))
    first = words[starts] & _LOW_BYTES[np.minimum(lengths, 8)]
    second = words[starts + 8] & _LOW_BYTES[np.clip(lengths - 8, 0, 7)]
    second |= lengths.astype(np.uint64) << np.uint64(56)
    return first, second


def token_keys(tokens: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two key words of each token of at most MAX_KEY_BYTES, and which tokens those are."""
    lengths = np.array([len(t) for t in tokens], dtype=np.int64)
    short = lengths <= MAX_KEY_BYTES
    starts = np.zeros(len(tokens), dtype=np.int64)
    np.cumsum(lengths[:-1] + 1, out=starts[1:])
    first, second = _keys(b" ".join(tokens), starts[short], lengths[short])
    return first, second, short


def _slots(first: np.ndarray, second: np.ndarray, bits: int) -> np.ndarray:
    h = first * _MIX[0] ^ second * _MIX[1]
    h ^= h >> np.uint64(29)
    return ((h * _MIX[2]) >> np.uint64(64 - bits)).astype(np.int64)


# the table is at most this full: linear probing stays short, and a vocabulary of n tokens
# takes 20 bytes a slot for about 1.4-2.9 n slots
MAX_LOAD = 0.7


class TokenTable:
    """Token (bytes without whitespace) -> id, for every token of a buffer at once.

    Its state is three arrays (``keys``, ``ids``, and the long tokens) that a model file
    stores as they are, so loading one costs nothing and a lookup touches only its slots.
    """

    def __init__(self, keys: np.ndarray, ids: np.ndarray, long_tokens: bytes, long_ids: np.ndarray, default: int):
        self.keys, self.ids, self.default = keys, ids, default
        self.bits = len(keys).bit_length() - 1
        if len(keys) != 1 << self.bits or keys.shape[1:] != (2,) or len(ids) != len(keys):
            raise ValueError("a token table has a power of two of slots, each a two-word key and an id")
        self.mask = (1 << self.bits) - 1
        self._long_tokens, self._long_ids = long_tokens, long_ids
        self._long: dict[bytes, int] | None = None

    @classmethod
    def build(cls, tokens: Sequence[bytes], ids: Sequence[int], default: int) -> TokenTable:
        ids = np.asarray(ids, dtype=np.int32)
        if any(t.split() != [t] for t in tokens):
            raise ValueError("a token is empty or holds whitespace")
        first, second, short = token_keys(tokens)
        bits = max(10, int(np.ceil(np.log2(max(short.sum(), 1) / MAX_LOAD))))
        keys = np.zeros((1 << bits, 2), dtype=np.int64)  # a zero second word marks an empty slot
        slot_ids = np.full(1 << bits, -1, dtype=np.int32)
        _insert(keys, slot_ids, first.view(np.int64), second.view(np.int64), ids[short], bits)
        long = [t for t, s in zip(tokens, short, strict=True) if not s]
        return cls(keys, slot_ids, b" ".join(long), ids[~short], default)

    def with_default(self, default: int) -> TokenTable:
        """The same table, answering ``default`` for a token it does not hold."""
        return TokenTable(self.keys, self.ids, self._long_tokens, self._long_ids, default)

    def arrays(self) -> dict[str, np.ndarray]:
        """What a model file stores of the table (``from_arrays`` reads it back)."""
        return {
            "keys": self.keys,
            "ids": self.ids,
            "long_tokens": np.frombuffer(self._long_tokens, dtype=np.uint8),
            "long_ids": self._long_ids,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], default: int) -> TokenTable:
        return cls(arrays["keys"], arrays["ids"], arrays["long_tokens"].tobytes(), arrays["long_ids"], default)

    def items(self) -> tuple[list[bytes], np.ndarray]:
        """Every token with its id (slot order; long tokens last)."""
        used = np.flatnonzero(self.keys[:, 1] != 0)
        first, second = self.keys[used, 0].view(np.uint64), self.keys[used, 1].view(np.uint64)
        lengths = (second >> np.uint64(56)).astype(np.int64)
        tokens = [
            (int(f) | (int(s) & ((1 << 56) - 1)) << 64).to_bytes(16, "little")[:n]
            for f, s, n in zip(first.tolist(), second.tolist(), lengths.tolist(), strict=True)
        ]
        long = self._long_tokens.split() if self._long_tokens else []
        return tokens + long, np.concatenate([self.ids[used], self._long_ids]).astype(np.int64)

    def lookup(self, data: bytes, separator: int | None = None) -> np.ndarray:
        """Ids of ``data.split()``'s tokens (``default`` for unknown ones); a token that is the
        single byte ``separator`` gets -1."""
        starts, ends = token_spans(data)
        lengths = ends - starts
        first, second = _keys(data, starts, lengths)
        slot = _slots(first, second, self.bits)
        first, second = first.view(np.int64), second.view(np.int64)
        # the first probe for every token at once; most end there
        row = np.take(self.keys, slot, axis=0)
        hit = (row[:, 0] == first) & (row[:, 1] == second)
        out = np.full(len(starts), self.default, dtype=np.int64)
        out[hit] = np.take(self.ids, slot[hit])
        pending = np.flatnonzero(~hit & (row[:, 1] != 0))
        for _ in range(len(self.keys)):  # a table always has empty slots; a tampered one might not
            if not len(pending):
                break
            slot[pending] = (slot[pending] + 1) & self.mask
            row = np.take(self.keys, slot[pending], axis=0)
            hit = (row[:, 0] == first[pending]) & (row[:, 1] == second[pending])
            out[pending[hit]] = np.take(self.ids, slot[pending[hit]])
            pending = pending[~hit & (row[:, 1] != 0)]
        long = np.flatnonzero(lengths > MAX_KEY_BYTES)
        if len(long):  # their keys are not whole: look them up in full
            if self._long is None:
                self._long = dict(zip(self._long_tokens.split(), self._long_ids.tolist(), strict=True))
            for i in long:
                out[i] = self._long.get(data[starts[i] : ends[i]], self.default)
        if separator is not None:
            out[
                (lengths == 1) & (np.frombuffer(data, dtype=np.uint8)[np.minimum(starts, len(data) - 1)] == separator)
            ] = -1
        return out


def _insert(keys: np.ndarray, slot_ids: np.ndarray, first, second, ids, bits: int) -> None:
    mask = (1 << bits) - 1
    slot = _slots(first.view(np.uint64), second.view(np.uint64), bits)
    pending = np.arange(len(ids))
    while len(pending):
        s = slot[pending]
        free = np.flatnonzero(keys[s, 1] == 0)
        # of the keys that reach the same free slot, the first takes it, the rest probe on
        taken, first_at = np.unique(s[free], return_index=True)
        winners = pending[free[first_at]]
        keys[taken, 0], keys[taken, 1] = first[winners], second[winners]
        slot_ids[taken] = ids[winners]
        placed = np.zeros(len(pending), dtype=bool)
        placed[free[first_at]] = True
        pending = pending[~placed]
        slot[pending] = (slot[pending] + 1) & mask
