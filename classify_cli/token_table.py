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

MAX_KEY_BYTES = 15  # 8 bytes in the first word, 7 in the second, whose top byte holds the length
# _LOW_BYTES[n] keeps the n low (first, little-endian) bytes of a word
_LOW_BYTES = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))
# an empty slot: no token's key has a zero second word, whose top byte is the token's length
_EMPTY = (0, 0, -1)


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


def _slots(first: np.ndarray, second: np.ndarray, bits: int) -> np.ndarray:
    h = first * _MIX[0] ^ second * _MIX[1]
    h ^= h >> np.uint64(29)
    return ((h * _MIX[2]) >> np.uint64(64 - bits)).astype(np.int64)


class TokenTable:
    """Token (bytes without whitespace) -> id, for every token of a buffer at once."""

    def __init__(self, tokens: Sequence[bytes], ids: Sequence[int], default: int):
        self.default = default
        ids = np.asarray(ids, dtype=np.int64)
        lengths = np.array([len(t) for t in tokens], dtype=np.int64)
        if any(t.split() != [t] for t in tokens):
            raise ValueError("a token is empty or holds whitespace")
        short = lengths <= MAX_KEY_BYTES
        self.long = {t: int(i) for t, i, s in zip(tokens, ids, short, strict=True) if not s}
        joined = b" ".join(tokens)
        starts = np.zeros(len(tokens), dtype=np.int64)
        np.cumsum(lengths[:-1] + 1, out=starts[1:])
        first, second = _keys(joined, starts[short], lengths[short])
        self.bits = max(10, int(np.ceil(np.log2(max(short.sum(), 1) * 4))))  # at most 1/4 full
        self.mask = (1 << self.bits) - 1
        # one row per slot: the key's two words (their bits as int64) and the id: one gather per probe
        self.table = np.empty((1 << self.bits, 3), dtype=np.int64)
        self.table[:] = _EMPTY
        self._insert(first.view(np.int64), second.view(np.int64), ids[short])

    def _insert(self, first: np.ndarray, second: np.ndarray, ids: np.ndarray) -> None:
        slot = _slots(first.view(np.uint64), second.view(np.uint64), self.bits)
        pending = np.arange(len(ids))
        while len(pending):
            s = slot[pending]
            free = np.flatnonzero(self.table[s, 1] == 0)
            # of the keys that reach the same free slot, the first takes it, the rest probe on
            taken, first_at = np.unique(s[free], return_index=True)
            winners = pending[free[first_at]]
            self.table[taken] = np.stack([first[winners], second[winners], ids[winners]], axis=1)
            placed = np.zeros(len(pending), dtype=bool)
            placed[free[first_at]] = True
            pending = pending[~placed]
            slot[pending] = (slot[pending] + 1) & self.mask

    def lookup(self, data: bytes) -> np.ndarray:
        """Ids of ``data.split()``'s tokens (``default`` for unknown ones)."""
        starts, ends = token_spans(data)
        lengths = ends - starts
        first, second = _keys(data, starts, lengths)
        slot = _slots(first, second, self.bits)
        first, second = first.view(np.int64), second.view(np.int64)
        # the first probe for every token at once; most end there
        row = np.take(self.table, slot, axis=0)
        hit = (row[:, 0] == first) & (row[:, 1] == second)
        out = np.where(hit, row[:, 2], self.default)
        pending = np.flatnonzero(~hit & (row[:, 1] != 0))
        while len(pending):
            slot[pending] = (slot[pending] + 1) & self.mask
            row = np.take(self.table, slot[pending], axis=0)
            hit = (row[:, 0] == first[pending]) & (row[:, 1] == second[pending])
            out[pending[hit]] = row[hit, 2]
            pending = pending[~hit & (row[:, 1] != 0)]
        for i in np.flatnonzero(lengths > MAX_KEY_BYTES):  # their keys are not whole: look them up
            out[i] = self.long.get(data[starts[i] : ends[i]], self.default)
        return out
