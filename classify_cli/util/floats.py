"""numpy's float arithmetic in plain Python: float32 rounding and numpy's pairwise sums, so that a
few texts are scored and decided without importing numpy, to numpy's bit."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

_FLOAT32 = struct.Struct("<f")


def f32(x: float) -> float:
    """``x`` rounded to float32 (to infinity beyond its range, as numpy's float32 arithmetic)."""
    try:
        return _FLOAT32.unpack(_FLOAT32.pack(x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def pairwise_sum(values: Sequence[float], rounded=f32) -> float:
    """numpy's pairwise summation (``add.reduce`` of a contiguous run), each step ``rounded``."""
    n = len(values)
    if n < 8:
        total = 0.0
        for v in values:
            total = rounded(total + v)
        return total
    if n <= 128:
        acc = list(values[:8])
        whole = n - n % 8
        for i in range(8, whole, 8):
            for j in range(8):
                acc[j] = rounded(acc[j] + values[i + j])
        total = rounded(
            rounded(rounded(acc[0] + acc[1]) + rounded(acc[2] + acc[3]))
            + rounded(rounded(acc[4] + acc[5]) + rounded(acc[6] + acc[7]))
        )
        for v in values[whole:]:
            total = rounded(total + v)
        return total
    half = n // 2
    half -= half % 8
    return rounded(pairwise_sum(values[:half], rounded) + pairwise_sum(values[half:], rounded))
