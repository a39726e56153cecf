"""Saving and loading a trained model: its scoring tensors in one safetensors file, the rest in JSON.

A run directory holds ``model.json`` (labels, tokenizer, configs, the ``head`` section that
gives every tensor's shape, the name, size and SHA-256 of the tensors file) and
``model-<hash>.safetensors`` (the scoring tensors of ``head.py``: the class-score table and
the vocabulary as a hash table). Saving writes the tensors under a new name first and then
replaces ``model.json`` atomically, so a crash at any point leaves the previous model intact
and loadable. Loading checks ``model.json`` (``meta.py``), the size and checksum of the file (or, for
``predict TEXT``, of its header) and every tensor's shape and dtype. A file of up to
``READ_WHOLE`` bytes is then read into memory; a larger one is mapped (start-up reads only the
rows a text touches), and ``Bundle.check_intact`` tells, between batches, whether it was cut
short since. A tampered or foreign file is refused, and no file is ever unpickled. This
module does not import torch.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..util import safetensors
from ..util.errors import BundleError
from ..util.fs import atomic_write_json, atomic_write_with, json_text
from ..util.schema import sealed
from ..util.version import __version__
from .meta import MODEL_VERSION, check_header, check_shapes, open_weights, read_meta
from .rundir import META, MODEL_FORMAT

# weights files up to this size are read into memory; larger ones are mapped, and a file cut short
# while mapped would kill the process with SIGBUS at the next page it reads
READ_WHOLE = 64 << 20


@dataclass
class Bundle:
    path: Path
    meta: dict[str, Any]
    tensors: dict[str, np.ndarray]
    mapped_file: BinaryIO | None = None  # the weights' open file, where they are mapped

    @property
    def labels(self) -> list[str]:
        return self.meta["labels"]

    def check_intact(self) -> None:
        """Raise ``BundleError`` if the mapped weights file was cut short since it was loaded:
        long runs call it between batches, before a read past its new end kills the process.
        (A file replaced by a rename, as classify writes, leaves the mapped one intact.)"""
        if self.mapped_file is not None and os.fstat(self.mapped_file.fileno()).st_size < self.meta["weights"]["bytes"]:
            raise BundleError(
                f"{self.path}: the weights file was truncated while in use; a model must be replaced "
                "by writing a new file and renaming it, never rewritten in place"
            )


def save_bundle(run_dir: Path, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    run_dir = Path(run_dir)
    header, arrays = safetensors.layout(tensors)
    digest, header_digest = hashlib.sha256(header), hashlib.sha256(header).hexdigest()
    for array in arrays:
        digest.update(array.reshape(-1).view(np.uint8))  # hashed and written from the arrays: no copy of the model
    full = _full_meta(meta, header, arrays, digest.hexdigest(), header_digest)
    name = full["weights"]["file"]

    def write(path: Path) -> None:
        with open(path, "wb") as fh:
            fh.write(header)
            for array in arrays:
                fh.write(array.reshape(-1).view(np.uint8))

    atomic_write_with(run_dir / name, write)
    atomic_write_json(run_dir / META, full)  # the commit point
    for old in [*run_dir.glob("model-*.safetensors"), *run_dir.glob("weights-*.safetensors")]:
        if old.name != name:
            old.unlink(missing_ok=True)
    return run_dir / META


def _full_meta(meta: dict[str, Any], header: bytes, arrays: list[np.ndarray], digest: str, header_digest: str):
    """model.json as written: ``meta`` with the format, the time and the weights file, sealed."""
    full = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "classify_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **meta,
        "weights": {
            "file": f"model-{digest[:16]}.safetensors",
            "sha256": digest,
            "bytes": len(header) + sum(a.nbytes for a in arrays),
            "header_sha256": header_digest,
        },
    }
    return sealed(full)


def bundle_bytes(tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> int:
    """The bytes ``save_bundle(tensors, meta)`` would write (model.json and the weights file),
    without writing or hashing them: every digest has the same length."""
    header, arrays = safetensors.layout(tensors)
    full = _full_meta(meta, header, arrays, "0" * 64, "0" * 64)
    return full["weights"]["bytes"] + len(json_text(full).encode())


def load_bundle(run_dir: Path, *, verify: bool = True) -> Bundle:
    """Load a bundle. ``verify=False`` checks the file's size and header (its checksum, the
    tensors' shapes and dtypes) but not the SHA-256 of its data: labeling a few texts then
    costs what they touch, not a read of the whole table."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    path, fh = open_weights(run_dir, meta)
    expected = meta["weights"]["bytes"]
    kept = None  # the open file of a mapped bundle, to see it cut short (Bundle.check_intact)
    if expected <= READ_WHOLE:
        with fh:
            data: Any = fh.read()  # in memory: truncating the file later cannot pull pages from under it
        if verify and hashlib.sha256(data).hexdigest() != meta["weights"]["sha256"]:
            raise BundleError(f"{path}: checksum mismatch (modified or truncated)")
    else:
        kept = fh
        if verify:
            digest = hashlib.sha256()
            for chunk in iter(lambda: fh.read(1 << 20), b""):  # streamed: the file is mapped, not held
                digest.update(chunk)
            if digest.hexdigest() != meta["weights"]["sha256"]:
                raise BundleError(f"{path}: checksum mismatch (modified or truncated)")
        data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    if not verify:
        check_header(data[: 8 + int.from_bytes(data[:8], "little")], meta, path)
    tensors = safetensors.arrays(data, path)
    check_shapes(meta, {name: (tuple(t.shape), str(t.dtype)) for name, t in tensors.items()}, path)
    if verify:
        _check_indices(tensors, meta["head"], path)
    _check_finite(tensors, path, whole=verify)
    return Bundle(run_dir, meta, tensors, kept)


def _check_finite(tensors: dict[str, np.ndarray], path: Path, whole: bool) -> None:
    """No NaN or infinity in the weights, and no negative norm term (its square root is NaN): a
    file whose checksums were recomputed after such an edit would print ``"probability": NaN``.
    The bias always; the per-row tensors only with ``whole`` (``Head.logits`` checks what it
    computes from them, for the loads that read only the rows a text touches)."""
    ok = bool(np.isfinite(tensors["bias"]).all())
    if whole:
        norms, table = tensors["norm_terms"], tensors["scores"]
        ok = ok and bool(np.isfinite(norms).all() and (norms >= 0).all())
        ok = ok and bool("scale" not in tensors or np.isfinite(tensors["scale"]).all())
        step = max(1, (1 << 22) // max(1, table.shape[1]))  # rows at a time: no table-sized temporary
        for first in range(0, len(table) if table.dtype.kind == "f" else 0, step):
            ok = ok and bool(np.isfinite(table[first : first + step]).all())
    if not ok:
        raise BundleError(f"{path}: the weights hold NaN or infinite values, or negative norms (modified?)")


def _check_indices(tensors: dict[str, np.ndarray], head: dict[str, Any], path: Path) -> None:
    """What indexes something else lies in its range: a file whose checksum was recomputed after
    tampering is refused rather than crashing or hanging later."""

    def sorted_below(values: np.ndarray, limit: int) -> bool:
        return bool(len(values) == 0 or (values[0] >= 0 and values[-1] < limit and (np.diff(values) > 0).all()))

    ok = sorted_below(tensors["ngram_buckets"], head["buckets"])
    ok &= sorted_below(tensors.get("kept_words", np.zeros(0, np.int32)), head["vocab_size"])
    ids, long_ids = tensors["vocab.ids"], tensors["vocab.long_ids"]
    used = tensors["vocab.keys"][:, 1] != 0
    ok &= bool((ids[used] >= 0).all() and (ids[used] < head["vocab_size"]).all() and not used.all())
    ok &= bool(len(long_ids) == 0 or (long_ids.min() >= 0 and long_ids.max() < head["vocab_size"]))
    ok &= len(tensors["vocab.long_tokens"].tobytes().split()) == len(long_ids)
    if not ok:
        raise BundleError(f"{path}: the tensors index out of range (modified?)")
