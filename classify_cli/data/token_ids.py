"""Provisional token ids for ``prepare``: each distinct token read gets the next id, in the
order tokens first occur, with memory of a few dozen bytes per distinct token.

A dict of every distinct token (its string, its int and its slot: about 130 bytes each) was
the largest thing that grew with a corpus. Here rows are looked up in a dict of the current
block's tokens only, and at the end of each block (``merge``) its tokens are found among
those of earlier blocks by their 64-bit hash: distinct tokens are kept as a sorted array of
hashes, the id of each, and their UTF-8 bytes end to end. A token whose hash equals an
earlier token's would be counted as that token (its text lost); among a million distinct
tokens the odds of any such pair are 10⁻⁸ (n²/2⁶⁵), as for the documents' fingerprints.
Where Python's str hash is narrower than 64 bits, an 8-byte BLAKE2b digest stands in.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from collections import defaultdict

import numpy as np

# defensive: the readers refuse lone surrogates, but a token holding one must not stop this
_ENCODING, _ERRORS = "utf-8", "surrogatepass"


def _digest(token: str) -> int:
    """A 64-bit hash of ``token``, for builds whose str hash is narrower."""
    return int.from_bytes(
        hashlib.blake2b(token.encode(_ENCODING, _ERRORS), digest_size=8).digest(), "little", signed=True
    )


_hash = hash if sys.hash_info.width >= 64 else _digest


class ProvisionalIds:
    def __init__(self) -> None:
        self.block: defaultdict[str, int] = defaultdict()  # the current block's tokens -> block ids
        self.block.default_factory = self.block.__len__
        self.hashes = np.zeros(0, dtype=np.int64)  # of every token merged so far, ascending
        self.ids = np.zeros(0, dtype=np.int32)  # the id of each of ``hashes``
        self.text = bytearray()  # every token merged so far in id order, UTF-8, end to end
        self.ends = array("q")  # where each token's bytes end in ``text``

    def __len__(self) -> int:
        """Distinct tokens merged so far."""
        return len(self.ends)

    def block_ids(self, tokens: list[str]) -> list[int]:
        """The ids of ``tokens`` within the current block, for ``merge`` to make final."""
        block = self.block
        return [block[t] for t in tokens]

    def merge(self, block_ids: np.ndarray) -> np.ndarray:
        """The provisional ids of ``block_ids`` (every id ``block_ids`` gave since the last
        merge); tokens new to the corpus get the next ids, in the order they first occurred.
        Starts a new block."""
        words = list(self.block)
        self.block.clear()
        hashes = np.fromiter(map(_hash, words), dtype=np.int64, count=len(words))
        at = np.searchsorted(self.hashes, hashes)
        known = at < len(self.hashes)
        known[known] = self.hashes[at[known]] == hashes[known]
        table = np.empty(len(words), dtype=np.int32)
        table[known] = self.ids[at[known]]
        new = np.flatnonzero(~known)  # ascending block ids: first occurrences in order
        first = len(self)
        table[new] = np.arange(first, first + len(new), dtype=np.int32)
        for i in new.tolist():
            self.text += words[i].encode(_ENCODING, _ERRORS)
            self.ends.append(len(self.text))
        by_hash = new[np.argsort(hashes[new], kind="stable")]  # equal insert points keep hash order
        self.hashes = np.insert(self.hashes, at[by_hash], hashes[by_hash])
        self.ids = np.insert(self.ids, at[by_hash], table[by_hash])
        return table[block_ids]

    def tokens(self) -> list[str]:
        """Every token merged, in id order."""
        text, tokens, start = memoryview(self.text), [], 0
        for end in self.ends:  # no list of offsets: a Python int each would cost more than the bytes
            tokens.append(str(text[start:end], _ENCODING, _ERRORS))
            start = end
        return tokens

    def release(self) -> None:
        """Let go of everything (the tokens have been taken)."""
        self.hashes, self.ids, self.text, self.ends = (
            np.zeros(0, np.int64),
            np.zeros(0, np.int32),
            bytearray(),
            array("q"),
        )
