"""Saving and loading a trained model: weights in safetensors, everything else in JSON.

A run directory holds ``model.json`` (labels, vocabulary, tokenizer, configs, the name and
SHA-256 of the weights file) and ``weights-<hash>.safetensors``. Saving writes the weights
under a new name first and then replaces ``model.json`` atomically, so a crash at any point
leaves the previous model intact and loadable. Loading checks the format version, the
checksum and every tensor's shape: a tampered or foreign file is refused, and no file is
ever unpickled. This module does not import torch.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import BundleError
from .features import TFIDF
from .fsutil import atomic_write_bytes, atomic_write_json

MODEL_FORMAT = "classify-model"
MODEL_VERSION = 1
META = "model.json"


@dataclass
class Bundle:
    path: Path
    meta: dict[str, Any]
    tensors: dict[str, np.ndarray]

    @property
    def labels(self) -> list[str]:
        return self.meta["labels"]


def save_bundle(run_dir: Path, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    from safetensors.numpy import save

    run_dir = Path(run_dir)
    data = save({k: np.ascontiguousarray(v) for k, v in tensors.items()})
    digest = hashlib.sha256(data).hexdigest()
    weights = f"weights-{digest[:16]}.safetensors"
    atomic_write_bytes(run_dir / weights, data)
    full = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "classify_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **meta,
        "weights": {"file": weights, "sha256": digest},
    }
    atomic_write_json(run_dir / META, full)  # the commit point
    for old in run_dir.glob("weights-*.safetensors"):
        if old.name != weights:
            old.unlink(missing_ok=True)
    return run_dir / META


def read_meta(run_dir: Path) -> dict[str, Any]:
    run_dir = Path(run_dir)
    file = run_dir / META
    if not run_dir.exists():
        raise BundleError(f"no model at {run_dir} (train one with `classify train --out {run_dir}`)")
    if not run_dir.is_dir():  # a model is a run directory; reading "file/model.json" is no answer
        raise BundleError(f"no model at {run_dir} (a file, not a run directory)")
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{run_dir} holds no trained model ({META} missing)") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BundleError(f"{file}: not valid JSON (corrupt or truncated)") from None
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise BundleError(f"{file}: not a classify model file")
    if meta.get("version") != MODEL_VERSION:
        raise BundleError(
            f"{file}: model format version {meta.get('version')!r} is not supported (expected {MODEL_VERSION})"
        )
    return meta


def _shapes(meta: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    f = meta["features"]
    vocab, dim, classes, kept = len(meta["vocab"]), meta["model"]["embed_dim"], len(meta["labels"]), f["kept_buckets"]
    shapes = {
        "word_embedding": (vocab, dim),
        "ngram_embedding": (kept, dim),
        "ngram_buckets": (kept,),
        "fc_weight": (classes, dim),
        "fc_bias": (classes,),
    }
    if f["weighting"] in TFIDF:
        shapes |= {"word_idf": (vocab,), "ngram_idf": (kept,)}
    return shapes


def load_bundle(run_dir: Path) -> Bundle:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    try:
        weights = run_dir / Path(meta["weights"]["file"]).name
        expected = meta["weights"]["sha256"]
        shapes = _shapes(meta)
    except (KeyError, TypeError):
        raise BundleError(f"{run_dir / META}: incomplete model description") from None
    try:
        data = weights.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{weights} is missing") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise BundleError(f"{weights}: checksum mismatch (modified or truncated)")
    try:
        tensors = load(data)
    except (SafetensorError, ValueError) as exc:
        raise BundleError(f"{weights}: not a valid safetensors file ({exc})") from None
    for name, shape in shapes.items():
        if name not in tensors or tuple(tensors[name].shape) != shape:
            got = tuple(tensors[name].shape) if name in tensors else "missing"
            raise BundleError(f"{weights}: tensor {name} is {got}, expected {shape}")
    return Bundle(run_dir, meta, tensors)
