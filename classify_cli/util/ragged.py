"""Ragged arrays: many variable-length rows stored end to end in one flat array.

``values[offsets[i]:offsets[i + 1]]`` is row i; ``offsets`` has one more entry than there
are rows. This is the layout ``nn.EmbeddingBag`` takes, so batches are slices, not lists.
"""

from __future__ import annotations

import numpy as np


def fingerprints(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row's values in order (uint64): equal rows get equal
    fingerprints, different ones almost surely not (a collision among n rows has odds n²/2⁶⁵).
    Each value is mixed with its position in the row (splitmix64) and the row sums them."""
    out = np.zeros(len(offsets) - 1, dtype=np.uint64)
    row_lengths = np.diff(offsets)
    for lo, hi in _blocks(offsets):  # a block at a time: temporaries stay small
        block = values[offsets[lo] : offsets[hi]].astype(np.uint64)
        starts = np.repeat(offsets[lo:hi] - offsets[lo], row_lengths[lo:hi])
        z = block * np.uint64(0x9E3779B97F4A7C15) + (np.arange(len(block), dtype=np.uint64) - starts.astype(np.uint64))
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
        sums = np.concatenate([np.zeros(1, np.uint64), np.cumsum(z, dtype=np.uint64)])  # wraps: a sum mod 2**64
        local = offsets[lo : hi + 1] - offsets[lo]
        out[lo:hi] = sums[local[1:]] - sums[local[:-1]] + row_lengths[lo:hi].astype(np.uint64)
    return out


def offsets_from_lengths(row_lengths: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(row_lengths) + 1, dtype=np.int64)
    np.cumsum(row_lengths, out=offsets[1:])
    return offsets


def take_rows(offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gather index and offsets for rows ``rows`` (in that order) of a ragged array.

    ``values[index]`` (for any array laid out like ``values``) with the returned offsets is
    the selected rows as a new ragged array.
    """
    rows = np.asarray(rows, dtype=np.int64)
    starts = offsets[rows]
    row_lengths = offsets[rows + 1] - starts
    new_offsets = offsets_from_lengths(row_lengths)
    # position j of the output comes from starts[row] + (j - new_offsets[row])
    index = np.arange(new_offsets[-1], dtype=np.int64)
    index += np.repeat(starts - new_offsets[:-1], row_lengths)
    return index, new_offsets


def select_rows(
    values: np.ndarray, offsets: np.ndarray, rows: np.ndarray, *, in_place: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``rows`` (ascending, distinct) of a ragged array, as a new ragged array.

    All rows give back ``values`` itself. Otherwise the values are copied a block of rows at
    a time, so no temporary grows with the corpus; ``in_place`` moves them to the front of
    ``values`` (which is then overwritten) and returns a view of it instead of a new array.
    """
    n_rows = len(offsets) - 1
    if len(rows) == n_rows:  # ascending and distinct, so every row in order
        return values, offsets
    row_lengths = np.diff(offsets)
    keep = np.zeros(n_rows, dtype=bool)
    keep[rows] = True
    new_offsets = offsets_from_lengths(row_lengths[rows])
    out = values if in_place else np.empty(new_offsets[-1], dtype=values.dtype)
    written = 0
    for lo, hi in _blocks(offsets):
        # a copy of the block's kept values: writing them at ``written`` <= offsets[lo] is safe in place
        block = values[offsets[lo] : offsets[hi]][np.repeat(keep[lo:hi], row_lengths[lo:hi])]
        out[written : written + len(block)] = block
        written += len(block)
    return out[:written], new_offsets


# a block of rows holds at most this many rows and, unless one row is longer, values: its
# temporaries (a few 8-byte copies of its values) stay a few MiB however long the rows are
_BLOCK_ROWS = 65_536
_BLOCK_VALUES = 1 << 20


def _blocks(offsets: np.ndarray):
    """``(lo, hi)`` row ranges covering a ragged array's rows in order, block by block."""
    n_rows, lo = len(offsets) - 1, 0
    while lo < n_rows:
        hi = min(lo + _BLOCK_ROWS, int(np.searchsorted(offsets, offsets[lo] + _BLOCK_VALUES, side="right")) - 1)
        hi = min(max(hi, lo + 1), n_rows)
        yield lo, hi
        lo = hi


def row_ids(offsets: np.ndarray) -> np.ndarray:
    """For each value, the index of the row it belongs to."""
    return np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))


def segment_sum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of each row of a ragged array (0 for empty rows); ``values`` may have trailing axes."""
    out = np.zeros((len(offsets) - 1, *values.shape[1:]), dtype=values.dtype)
    nonempty = np.flatnonzero(offsets[1:] > offsets[:-1])
    if len(nonempty):
        # reduceat sums from each start to the next one, so empty rows must be left out
        out[nonempty] = np.add.reduceat(values, offsets[nonempty], axis=0)
    return out
