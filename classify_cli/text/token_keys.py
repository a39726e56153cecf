"""The token table's keys and hash slots, for one token at a time in plain Python (``predict
TEXT``); ``token_table.py`` computes the same for a whole buffer at once with numpy."""

from __future__ import annotations

MAX_KEY_BYTES = 15  # 8 bytes in the first word, 7 in the second, whose top byte holds the length
MIX = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9)
_WORD = (1 << 64) - 1


def key_of(token: bytes) -> tuple[int, int]:
    """The two key words of a token of at most MAX_KEY_BYTES bytes, unsigned: its bytes
    zero-padded, little-endian, and its length in the top byte of the second."""
    return int.from_bytes(token[:8], "little"), int.from_bytes(token[8:15], "little") | len(token) << 56


def slot_of(first: int, second: int, bits: int) -> int:
    """The slot a key's probe starts at, in a table of ``2**bits`` slots."""
    h = (first * MIX[0] & _WORD) ^ (second * MIX[1] & _WORD)
    h ^= h >> 29
    return (h * MIX[2] & _WORD) >> (64 - bits)
