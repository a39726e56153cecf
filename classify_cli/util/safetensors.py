"""The safetensors format, written and read with numpy in one place for model bundles, prepared
data and checkpoints: a header (8-byte length, JSON padded to 8 bytes), then each tensor's bytes
in name order. Reading maps arrays over the bytes without a copy and checks every extent; the
header alone (``extents``) is read without numpy, for ``predict TEXT``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import IO, TYPE_CHECKING

from .errors import BundleError

if TYPE_CHECKING:  # numpy where arrays are made: reading a header needs none
    import numpy as np

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
# bytes per element, as numpy's dtype.itemsize: the header is read without numpy
ITEMSIZE = {"bool": 1, "int8": 1, "uint8": 1, "float16": 2, "int16": 2, "uint16": 2}
ITEMSIZE |= {"float32": 4, "int32": 4, "uint32": 4, "float64": 8, "int64": 8, "uint64": 8}


def header(shapes: dict[str, tuple[np.dtype, tuple[int, ...]]]) -> bytes:
    """The header of a file of these (dtype, shape) tensors, their data in name order: writers
    then append each one's bytes (so a large tensor can be written block by block)."""
    import numpy as np

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
    import numpy as np

    arrays = {name: np.ascontiguousarray(tensors[name]) for name in sorted(tensors)}
    return header({name: (a.dtype, a.shape) for name, a in arrays.items()}), list(arrays.values())


def write(fh: IO[bytes], tensors: dict[str, np.ndarray]) -> None:
    """The file, written from the arrays themselves: no copy of them in memory."""
    head, arrays = layout(tensors)
    fh.write(head)
    for array in arrays:
        fh.write(array.reshape(-1).view("uint8"))


def to_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    head, arrays = layout(tensors)
    return head + b"".join(array.reshape(-1).view("uint8").tobytes() for array in arrays)


def extents(head, file_size: int) -> dict[str, tuple[str, tuple[int, ...], int]]:
    """Each tensor's dtype, shape and first byte in the file, from ``head`` (the file's first bytes,
    its header whole), once checked to lie inside a file of ``file_size`` bytes. A header that is
    not one raises ValueError (KeyError, TypeError, ...: the exceptions ``arrays`` explains)."""
    size = int.from_bytes(head[:8], "little")
    if file_size < 8 + size:
        raise ValueError("header runs past the end")
    entries = json.loads(bytes(head[8 : 8 + size]))
    found = {}
    for name, info in entries.items():
        if name == "__metadata__":
            continue
        dtype = DTYPES[info["dtype"]]
        shape = tuple(int(d) for d in info["shape"])
        begin, end = (int(x) for x in info["data_offsets"])
        count = math.prod(shape)
        extent_ok = 0 <= begin <= end and end - begin == count * ITEMSIZE[dtype] and 8 + size + end <= file_size
        if not extent_ok or min(shape, default=0) < 0:
            raise ValueError(f"tensor {name} lies outside the file")
        found[name] = (dtype, shape, 8 + size + begin)
    return found


def arrays(buffer, path: Path) -> dict[str, np.ndarray]:
    """Arrays over a file's bytes (no copy; read-only unless ``buffer`` is writable), after
    checking the header and that every tensor lies inside the file."""
    import numpy as np

    try:
        return {
            name: np.frombuffer(buffer, dtype=dtype, count=math.prod(shape), offset=offset).reshape(shape)
            for name, (dtype, shape, offset) in extents(buffer, len(buffer)).items()
        }
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, RecursionError) as exc:
        raise BundleError(f"{path}: not a valid safetensors file ({exc})") from None
