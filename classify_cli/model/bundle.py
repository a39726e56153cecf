"""Saving and loading a trained model: its scoring tensors in one safetensors file, the rest in JSON.

A run directory holds ``model.json`` (labels, tokenizer, configs, the ``head`` section that
gives every tensor's shape, the name, size and SHA-256 of the tensors file) and
``model-<hash>.safetensors`` (the scoring tensors of ``head.py``: the class-score table and
the vocabulary as a hash table). Saving writes the tensors under a new name first and then
replaces ``model.json`` atomically, so a crash at any point leaves the previous model intact
and loadable. Loading checks the format version, the size and checksum of the file (or, for
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

from ..text.tokens import TOKENIZER
from ..util import safetensors
from ..util.config import MAX_BUCKETS, MAX_EMBED_DIM, SPLITS, WEIGHTINGS, section_schema
from ..util.errors import BundleError
from ..util.fs import atomic_write_json, atomic_write_with, json_text, open_regular
from ..util.schema import (
    CHECKSUM,
    COUNT,
    FRACTION,
    LABEL,
    LABELS,
    SHA256,
    TIMESTAMP,
    Checked,
    Float,
    Int,
    Map,
    Maybe,
    Obj,
    Str,
    read_document,
    sealed,
)
from ..util.version import __version__
from .head import DTYPES, scoring_shapes
from .metrics import TUNABLE
from .rundir import META, MODEL_FILE, MODEL_FORMAT
from .task import check_task

MODEL_VERSION = 3  # 3: model.json checked against a schema and sealed with its checksum


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


def read_meta(run_dir: Path) -> dict[str, Any]:
    run_dir = Path(run_dir)
    file = run_dir / META
    if not run_dir.exists():
        raise BundleError(f"no model at {run_dir} (train one with `classify train --out {run_dir}`)")
    if not run_dir.is_dir():  # a model is a run directory; reading "file/model.json" is no answer
        raise BundleError(f"no model at {run_dir} (a file, not a run directory)")
    try:
        meta = read_document(
            file, MODEL_FORMAT, MODEL_VERSION, MODEL_SCHEMA, ("model file", "model description"), "train it again"
        )
    except FileNotFoundError:
        raise BundleError(f"{run_dir} holds no trained model ({META} missing)") from None
    _check_meta(meta, file)
    return meta


def is_compressed(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a bundle ``classify compress`` wrote."""
    try:
        return "compressed" in read_meta(run_dir)["head"]
    except BundleError:
        return False


MODEL_SCHEMA = Obj(
    {
        "format": Str((MODEL_FORMAT,)),
        "version": Int(MODEL_VERSION, MODEL_VERSION),
        "classify_version": Str(max_len=64),
        "created": TIMESTAMP,
        "labels": LABELS,
        "tokenizer": TOKENIZER,
        "features": Obj(
            {
                "ngrams": Int(1, 5),
                "buckets": Int(1, MAX_BUCKETS),
                "weighting": Str(WEIGHTINGS),
                "kept_buckets": COUNT,
                "unseen_idf": Float(0),
                "supervised_weight": Float(0),
                "n_train_docs": COUNT,
            }
        ),
        "model": section_schema("model"),
        "train": section_schema("train"),
        "prepare": Maybe(section_schema("prepare")),
        "data": Obj(
            {
                "path": Str(),
                "source": Maybe(Str()),
                "vocab_sha256": SHA256,
                "rows": Map(COUNT, Str(SPLITS)),
                "per_class": Map(COUNT, LABEL),
            }
        ),
        "head": Obj(
            {
                "vocab_size": Int(1, 2**31 - 1),
                "unk_index": COUNT,
                "ngrams": Int(1, 5),
                "buckets": Int(1, MAX_BUCKETS),
                "norm": Str(("l1", "l2")),
                "dtype": Str(tuple(DTYPES)),
                "kept_words": COUNT,
                "kept_buckets": COUNT,
                "vocab_bits": Int(10, 40),
                "long_bytes": COUNT,
                "long_tokens": COUNT,
            },
            {"compressed": Obj({"from": Str(), "max_features": Int(1), "dtype": Str(tuple(DTYPES))})},
        ),
        "train_effective": Obj({"batch_size": Int(1), "lr": Float(0)}),
        "model_effective": Obj({"embed_dim": Int(1, MAX_EMBED_DIM)}),
        "best": Obj({"epoch": Int(1), "val_loss": Float(0), "val_accuracy": FRACTION}),
        "reference": Obj(
            {"oov_rate": FRACTION, "mean_confidence": FRACTION, "label_distribution": Map(FRACTION, LABEL)}
        ),
        "weights": Obj(
            {
                "file": Str(pattern=MODEL_FILE.pattern),
                "sha256": SHA256,
                "bytes": COUNT,
                "header_sha256": SHA256,
            }
        ),
        CHECKSUM: SHA256,
    },
    {
        "task": Checked(check_task),  # what it answers (model/task.py); models made before it was kept lack it
        "world_size": Int(1),  # ranks that trained it (torchrun); models made before it was kept lack it
        "tuned": Obj(  # classify tune chose its config: by what, on which split, from how many trials
            {
                "metric": Str(TUNABLE),
                "on": Str(("validation", "train folds")),
                "value": Float(),
                "trial": COUNT,
                "trials": Int(1),
                "budget_s": Float(0),
                "seconds": Float(0),
            },
            {
                "folds": Int(2),  # judged by k-fold cross-validation of the train split ("train folds")
                "max_bytes": Int(1),  # --max-size: the model, compressed where need be, is no larger
            },
        ),
    },
)


def _check_meta(meta: dict[str, Any], file: Path) -> None:
    """What ties model.json's fields together (the schema checks each alone)."""
    labels, head = set(meta["labels"]), meta["head"]
    tied = {
        "data.per_class": set(meta["data"]["per_class"]) == labels,
        "reference.label_distribution": set(meta["reference"]["label_distribution"]) == labels,
        "head.unk_index": head["unk_index"] < head["vocab_size"],
        "head.kept_words": head["kept_words"] <= head["vocab_size"],
        "head.kept_buckets": head["kept_buckets"] <= head["buckets"],
    }
    for what, ok in tied.items():
        if not ok:
            raise BundleError(f"{file}: invalid model description ({what} disagrees with the rest)")


def load_bundle(run_dir: Path, *, verify: bool = True) -> Bundle:
    """Load a bundle. ``verify=False`` checks the file's size and header (its checksum, the
    tensors' shapes and dtypes) but not the SHA-256 of its data: labeling a few texts then
    costs what they touch, not a read of the whole table."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    path = run_dir / Path(meta["weights"]["file"]).name
    try:
        fh = open_regular(path)
    except FileNotFoundError:
        raise BundleError(f"{path} is missing") from None
    expected = meta["weights"]["bytes"]
    if os.fstat(fh.fileno()).st_size != expected:
        fh.close()
        raise BundleError(f"{path}: checksum mismatch (size differs: modified or truncated)")
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
        size = int.from_bytes(data[:8], "little")
        if hashlib.sha256(data[: 8 + size]).hexdigest() != meta["weights"].get("header_sha256"):
            raise BundleError(f"{path}: checksum mismatch (header modified)")
    tensors = safetensors.arrays(data, path)
    for name, (shape, dtype) in scoring_shapes(meta).items():
        got = (tuple(tensors[name].shape), str(tensors[name].dtype)) if name in tensors else "missing"
        if got != (shape, dtype):
            raise BundleError(f"{path}: tensor {name} is {got}, expected {(shape, dtype)}")
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


def model_info(run_dir: Path) -> dict[str, Any]:
    """What ``classify info`` shows: the model as its model.json describes it (checked whole).
    Its keys are snake_case and stable: ``info --format json`` prints them for scripts."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    head, data, best = meta["head"], meta["data"], meta["best"]
    weights = run_dir / meta["weights"]["file"]
    info = {
        "model": str(run_dir),
        "labels": meta["labels"],
        "vocabulary": head["vocab_size"],
        "features": {
            "words_kept": head["kept_words"],
            "ngram_buckets_kept": head["kept_buckets"],
            "ngrams": head["ngrams"],
            "weighting": meta["features"]["weighting"],
        },
        "embed_dim": meta["model_effective"]["embed_dim"],
        "best_epoch": best["epoch"],
        "val_accuracy": round(best["val_accuracy"], 4),
        "val_loss": round(best["val_loss"], 4),
        "data": data["source"] or data["path"],
        "rows": data["rows"],
        "train": {
            "lr": meta["train_effective"]["lr"],
            "batch_size": meta["train_effective"]["batch_size"],
            "ranks": meta.get("world_size", 1),
        },
        "size": {"weights_bytes": meta["weights"]["bytes"], "dtype": head["dtype"]},
        "compressed": "compressed" in head,
        "tuned": meta.get("tuned", False),
        "created": meta["created"],
        "classify_version": meta["classify_version"],
    }
    if not weights.is_file():
        info["warning"] = f"{weights.name} is missing"
    return info
