"""The safetensors format, written and read with numpy in one place for model bundles, prepared
data and checkpoints: a header (8-byte length, JSON padded to 8 bytes), then each tensor's bytes
in name order. Reading maps arrays over the bytes without a copy and checks every extent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

import numpy as np

from .errors import BundleError

DTYPES = {
    "BOOL": "bool",
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "I8": "int8",
    "I16": "int16",
    "I32": "int32",
    "I64": "int64",
    "U8": "uint8",
    "U16": "uint16",
    "U32": "uint32",
    "U64": "uint64",
}


def header(shapes: dict[str, tuple[np.dtype, tuple[int, ...]]]) -> bytes:
    """The header of a file of these (dtype, shape) tensors, their data in name order: writers
    then append each one's bytes (so a large tensor can be written block by block)."""
    codes = {v: k for k, v in DTYPES.items()}
    entries, offset = {}, 0
    for name in sorted(shapes):
        dtype, shape = np.dtype(shapes[name][0]), [int(d) for d in shapes[name][1]]
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        entries[name] = {"dtype": codes[str(dtype)], "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(entries, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text


def layout(tensors: dict[str, np.ndarray]) -> tuple[bytes, list[np.ndarray]]:
    """The header and the arrays in file order."""
    arrays = {name: np.ascontiguousarray(tensors[name]) for name in sorted(tensors)}
    return header({name: (a.dtype, a.shape) for name, a in arrays.items()}), list(arrays.values())


def write(fh: IO[bytes], tensors: dict[str, np.ndarray]) -> None:
    """The file, written from the arrays themselves: no copy of them in memory."""
    head, arrays = layout(tensors)
    fh.write(head)
    for array in arrays:
        fh.write(array.reshape(-1).view(np.uint8))


def to_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    head, arrays = layout(tensors)
    return head + b"".join(array.reshape(-1).view(np.uint8).tobytes() for array in arrays)


def arrays(buffer, path: Path) -> dict[str, np.ndarray]:
    """Arrays over a file's bytes (no copy; read-only unless ``buffer`` is writable), after
    checking the header and that every tensor lies inside the file."""
    try:
        size = int.from_bytes(buffer[:8], "little")
        if len(buffer) < 8 + size:
            raise ValueError("header runs past the end")
        entries = json.loads(bytes(buffer[8 : 8 + size]))
        tensors = {}
        for name, info in entries.items():
            if name == "__metadata__":
                continue
            dtype = np.dtype(DTYPES[info["dtype"]])
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(x) for x in info["data_offsets"])
            count = int(np.prod(shape, dtype=np.int64))
            if not 0 <= begin <= end or end - begin != count * dtype.itemsize or 8 + size + end > len(buffer):
                raise ValueError(f"tensor {name} lies outside the file")
            tensors[name] = np.frombuffer(buffer, dtype=dtype, count=count, offset=8 + size + begin).reshape(shape)
        return tensors
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, RecursionError) as exc:
        raise BundleError(f"{path}: not a valid safetensors file ({exc})") from None
