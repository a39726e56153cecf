"""Token ids on disk while ``prepare`` works: written as they are made, read back a block of
documents at a time, so memory holds a block and the per-document arrays, not the corpus.
And ``drop_resident``, which lets go of a mapped file's pages once a pass is done with them."""

from __future__ import annotations

import mmap
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..util.errors import EnvironmentFailure
from ..util.ragged import offsets_from_lengths, select_rows

FLUSH_TOKENS = 1 << 20  # int32 ids buffered before a write (4 MiB)
READ_TOKENS = 1 << 20  # ids read back at a time (4 MiB, a few such temporaries at once)


class TokenSink:
    """Documents' int32 ids appended to ``path``; the documents' lengths kept in memory. With
    ``translate``, each buffer of ids is passed through it on its way to the file."""

    def __init__(self, path: Path, translate: Callable[[np.ndarray], np.ndarray] | None = None):
        self.path, self.translate = Path(path), translate
        self._file = open(self.path, "wb")  # noqa: SIM115 (closed by ``finish``)
        self._buffer = array("i")
        self._lengths = array("q")

    def add(self, ids: list[int]) -> None:
        self._buffer.extend(ids)
        self._lengths.append(len(ids))
        if len(self._buffer) >= FLUSH_TOKENS:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        try:
            ids = self._buffer
            if self.translate is not None:
                ids = self.translate(np.frombuffer(ids, dtype=np.int32)).astype(np.int32, copy=False)
            ids.tofile(self._file)
        except OSError as exc:  # a full disk, most likely
            raise EnvironmentFailure(f"cannot write the work file {self.path}: {exc.strerror or exc}") from None
        del self._buffer[:]

    def finish(self) -> SpilledIds:
        self._flush()
        self._file.close()
        lengths = np.frombuffer(self._lengths, dtype=np.int64) if len(self._lengths) else np.zeros(0, np.int64)
        return SpilledIds(self.path, offsets_from_lengths(lengths))

    def close(self) -> None:
        self._file.close()


class SpilledIds:
    """A ragged array of int32 ids whose values are in a file and whose offsets are in memory."""

    def __init__(self, path: Path, offsets: np.ndarray):
        self.path, self.offsets = Path(path), offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def rows(self, rows: np.ndarray, remap: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Rows ``rows`` (ascending, distinct) as ragged blocks ``(ids, offsets)``, in order, with
        every id looked up in ``remap`` when given; about ``READ_TOKENS`` ids read at a time."""
        offsets = self.offsets
        with open(self.path, "rb") as fh:
            lo = 0
            while lo < len(self):
                # documents [lo, hi): at least one, and no more than READ_TOKENS ids past the first
                hi = max(lo + 1, int(np.searchsorted(offsets, offsets[lo] + READ_TOKENS, side="right")) - 1)
                hi = min(hi, len(self))
                first, last = np.searchsorted(rows, [lo, hi])
                if last > first:
                    fh.seek(int(offsets[lo]) * 4)
                    ids = np.fromfile(fh, dtype=np.int32, count=int(offsets[hi] - offsets[lo]))
                    ids, local = select_rows(
                        ids, offsets[lo : hi + 1] - offsets[lo], rows[first:last] - lo, in_place=True
                    )
                    if remap is not None:
                        ids = remap[ids]
                    yield ids, local
                lo = hi

    def lengths(self, rows: np.ndarray) -> np.ndarray:
        return np.diff(self.offsets)[rows]


def drop_resident(array: np.ndarray) -> None:
    """Unmap the pages of a memory-mapped ``array`` (a view of a mapped file) from this
    process: they stay in the page cache, written ones too, and come back on the next
    touch, so the resident size stays a window instead of growing to the file's."""
    base = mapping_of(array)
    if base is not None and hasattr(mmap, "MADV_DONTNEED"):
        base.madvise(mmap.MADV_DONTNEED)


def mapping_of(array: np.ndarray) -> mmap.mmap | None:
    """The memory map ``array`` is a view of, or None for an array in memory."""
    base = array
    while base is not None and not isinstance(base, mmap.mmap):
        if isinstance(base, memoryview):  # np.frombuffer's, over a mapped file
            base = base.obj
        else:
            base = getattr(base, "_mmap", None) or getattr(base, "base", None)
    return base
