"""classify writes and reads safetensors itself (util/safetensors.py: no copy of a large table);
the official library must read what it writes and write what it reads, for every dtype."""

import numpy as np
import pytest
from safetensors.numpy import load, save

from classify_cli.util import safetensors
from classify_cli.util.errors import BundleError


def tensors_of_every_dtype() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for code, name in safetensors.DTYPES.items():
        values = rng.integers(0, 2, size=(3, 4)) if name == "bool" else rng.integers(-50, 50, size=(3, 4))
        if name.startswith("u"):
            values = np.abs(values)
        out[code.lower()] = values.astype(name)
    out["empty"] = np.zeros((0, 5), np.float32)
    out["strided"] = np.arange(7, dtype=np.int64)[::2]  # not contiguous: written as its values
    return out


def test_the_library_reads_what_classify_writes():
    tensors = tensors_of_every_dtype()
    read = load(safetensors.to_bytes(tensors))
    assert read.keys() == tensors.keys()
    for name, array in tensors.items():
        assert read[name].dtype == array.dtype
        np.testing.assert_array_equal(read[name], array)


def test_classify_reads_what_the_library_writes():
    tensors = tensors_of_every_dtype()
    data = save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata={"made_by": "the library"})
    read = safetensors.arrays(data, "x.safetensors")
    assert read.keys() == tensors.keys()  # the metadata entry is not a tensor
    for name, array in tensors.items():
        np.testing.assert_array_equal(read[name], array)


@pytest.mark.parametrize("cut", [4, 20, -3])
def test_a_file_cut_short_is_refused(cut):
    data = safetensors.to_bytes({"w": np.ones((4, 4), np.float32)})
    with pytest.raises(BundleError, match="not a valid safetensors file"):
        safetensors.arrays(data[:cut], "x.safetensors")
