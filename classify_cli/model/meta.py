"""A model's description, ``model.json``: its schema, reading and checking it, and the tensors it
promises the weights file holds (their shapes and dtypes). No numpy: ``info`` and ``predict TEXT``
read a model through this module alone.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, BinaryIO

from ..text.tokens import LEGACY_NGRAM_HASH, NGRAM_HASHES, TOKENIZER
from ..util.config import MAX_BUCKETS, MAX_EMBED_DIM, SPLITS, WEIGHTINGS, config_from_dict, section_schema
from ..util.errors import BundleError
from ..util.fs import open_regular
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
)
from .metrics import SET_TUNABLE, TUNABLE
from .rundir import META, MODEL_FILE, MODEL_FORMAT
from .task import check_task

MODEL_VERSION = 3  # 3: model.json checked against a schema and sealed with its checksum
DTYPES = ("float32", "float16", "int8")  # of the class-score table


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


def _vectors_vocab(value: Any) -> Any:
    config_from_dict({"model": {"vectors_vocab": value}})
    return value


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
                "norm": Str(("l1", "l2", "none")),
                "dtype": Str(tuple(DTYPES)),
                "kept_words": COUNT,
                "kept_buckets": COUNT,
                "vocab_bits": Int(10, 40),
                "long_bytes": COUNT,
                "long_tokens": COUNT,
            },
            {
                "compressed": Obj({"from": Str(), "max_features": Int(1), "dtype": Str(tuple(DTYPES))}),
                "ngram_hash": Str(NGRAM_HASHES),  # absent: the hash of models saved before it was recorded
            },
        ),
        "train_effective": Obj({"batch_size": Int(1), "lr": Float(0)}),
        # the table's width: model.embed_dim learned columns, after the vectors' own (as many at most)
        "model_effective": Obj({"embed_dim": Int(1, 2 * MAX_EMBED_DIM)}),
        # the chosen epoch and its validation numbers: accuracy, or micro-F1 for a set of labels
        "best": Obj({"epoch": Int(1), "val_loss": Float(0)}, {"val_accuracy": FRACTION, "val_micro_f1": FRACTION}),
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
        # a set of labels per text (task multi_label): how a text gets its labels (model/task.py)
        "decision": Obj(
            {"threshold": FRACTION, "chosen_on": Str(("validation",)), "micro_f1": Maybe(FRACTION)},
            {"thresholds": Map(FRACTION, LABEL)},
        ),
        # the pretrained vectors it started from (text/vectors.py)
        "vectors": Obj(
            {
                "file": Str(),
                "sha256": SHA256,
                "dim": Int(1, MAX_EMBED_DIM),
                "words": COUNT,
                "matched": COUNT,
                "kept": COUNT,
                "vocab": Checked(_vectors_vocab),
            }
        ),
        "world_size": Int(1),  # ranks that trained it (torchrun); models made before it was kept lack it
        "tuned": Obj(  # classify tune chose its config: by what, on which split, from how many trials
            {
                "metric": Str((*TUNABLE, *SET_TUNABLE)),
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


def scoring_shapes(meta: dict) -> dict[str, tuple[tuple[int, ...], str]]:
    """Each scoring tensor's shape and dtype as ``model.json`` describes the model."""
    h = meta["head"]
    rows = h["kept_words"] + h["kept_buckets"] + 1
    classes = len(meta["labels"])
    shapes = {
        "scores": ((rows, classes), h["dtype"]),
        "norm_terms": ((rows,), "float32"),
        "bias": ((classes,), "float32"),
        "ngram_buckets": ((h["kept_buckets"],), "int32"),
        "vocab.keys": ((1 << h["vocab_bits"], 2), "int64"),
        "vocab.ids": ((1 << h["vocab_bits"],), "int32"),
        "vocab.long_tokens": ((h["long_bytes"],), "uint8"),
        "vocab.long_ids": ((h["long_tokens"],), "int32"),
    }
    if h["kept_words"] != h["vocab_size"]:
        shapes["kept_words"] = ((h["kept_words"],), "int32")
    if h["dtype"] == "int8":
        shapes["scale"] = ((rows,), "float32")
    return shapes


def open_weights(run_dir: Path, meta: dict[str, Any]) -> tuple[Path, BinaryIO]:
    """The weights file ``model.json`` names, opened, once its size is the one recorded."""
    path = Path(run_dir) / Path(meta["weights"]["file"]).name
    try:
        fh = open_regular(path)
    except FileNotFoundError:
        raise BundleError(f"{path} is missing") from None
    if os.fstat(fh.fileno()).st_size != meta["weights"]["bytes"]:
        fh.close()
        raise BundleError(f"{path}: checksum mismatch (size differs: modified or truncated)")
    return path, fh


def check_header(head: bytes, meta: dict[str, Any], path: Path) -> None:
    """``head`` (the weights file's first 8 bytes and the header they measure) is the one recorded."""
    if hashlib.sha256(head).hexdigest() != meta["weights"].get("header_sha256"):
        raise BundleError(f"{path}: checksum mismatch (header modified)")


def check_shapes(meta: dict[str, Any], found: dict[str, tuple[tuple[int, ...], str]], path: Path) -> None:
    """The tensors ``found`` in the weights file (name -> shape, dtype) are those ``model.json`` describes."""
    for name, expected in scoring_shapes(meta).items():
        got = found.get(name, "missing")
        if got != expected:
            raise BundleError(f"{path}: tensor {name} is {got}, expected {expected}")


def model_info(run_dir: Path) -> dict[str, Any]:
    """What ``classify info`` shows: the model as its model.json describes it (checked whole).
    Its keys are snake_case and stable: ``info --format json`` prints them for scripts."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    head, data, best = meta["head"], meta["data"], meta["best"]
    weights = run_dir / meta["weights"]["file"]
    info = {
        "model": str(run_dir),
        "task": meta.get("task", "single_label"),
        "labels": meta["labels"],
        **({"decision": meta["decision"]} if "decision" in meta else {}),
        "vocabulary": head["vocab_size"],
        "features": {
            "words_kept": head["kept_words"],
            "ngram_buckets_kept": head["kept_buckets"],
            "ngrams": head["ngrams"],
            "ngram_hash": head.get("ngram_hash", LEGACY_NGRAM_HASH),
            "weighting": meta["features"]["weighting"],
        },
        "embed_dim": meta["model_effective"]["embed_dim"],
        # the pretrained vectors it started from: which file, and how many of its words it keeps
        **({"vectors": meta["vectors"]} if "vectors" in meta else {}),
        "best_epoch": best["epoch"],
        **{name: round(best[name], 4) for name in ("val_accuracy", "val_micro_f1") if name in best},
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
