"""Prepared data on disk: token ids, offsets and labels per split (safetensors), the
vocabulary (JSON) and a manifest that describes them, checked whole against its schema and
sealed with checksums. Written atomically by ``prepare``, read back verified by ``train`` and
``evaluate``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..text.tokens import TOKENIZER, Vocab
from ..util import safetensors
from ..util.config import SPLITS, section_schema
from ..util.errors import BundleError, InputError
from ..util.fs import (
    atomic_write_json,
    atomic_write_json_list,
    atomic_write_with,
    open_regular,
    read_regular,
    sha256_file,
)
from ..util.schema import (
    CHECKSUM,
    COUNT,
    LABEL,
    LABELS,
    SHA256,
    TIMESTAMP,
    Bool,
    Int,
    List,
    Map,
    Obj,
    Str,
    read_document,
    sealed,
)
from ..util.swap import atomic_directory
from ..util.version import __version__
from .labels import SINGLE_LABEL, TASK_NAMES, label_counts, task_of_labels
from .spill import drop_resident

DATA_FORMAT = "classify-prepared-data"
DATA_VERSION = 2  # 2: manifest.json checked against a schema and sealed with its checksum
MANIFEST = "manifest.json"
VOCAB = "vocab.json"
PRINTS = "fingerprints.safetensors"  # ragged.fingerprints of the train documents
_SPLIT = Str(SPLITS)
MANIFEST_SCHEMA = Obj(
    {
        "format": Str((DATA_FORMAT,)),
        "version": Int(DATA_VERSION, DATA_VERSION),
        "classify_version": Str(max_len=64),
        "created": TIMESTAMP,
        "source": Str(),
        "source_files": Map(Str(), _SPLIT),
        "carved": List(_SPLIT, max_len=len(SPLITS), unique=True),
        "skipped_empty_text": Map(COUNT, _SPLIT),
        "train_overlap": Obj({"validation": COUNT, "test": COUNT, "dropped": Bool()}),
        "config": Obj({"prepare": section_schema("prepare")}),
        "labels": LABELS,
        "tokenizer": TOKENIZER,
        "vocab_size": Int(1, 2**31 - 1),
        "splits": Obj(
            {split: Obj({"rows": COUNT, "tokens": COUNT, "per_class": Map(COUNT, LABEL)}) for split in SPLITS}
        ),
        "files": Obj(
            {name: SHA256 for name in (VOCAB, *(f"{split}.safetensors" for split in SPLITS))}, {PRINTS: SHA256}
        ),
        CHECKSUM: SHA256,
    },
    {"task": Str(TASK_NAMES)},  # absent in data prepared before a text could have several labels
)


@dataclass
class Split:
    """Token ids of every document end to end, where each starts (one more: where they end), and
    its labels (``labels.py``: a class index, or a row of 0/1 per label)."""

    ids: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class PreparedData:
    path: Path
    vocab: Vocab
    labels: list[str]
    tokenizer: dict[str, Any]
    manifest: dict[str, Any]
    splits: dict[str, Split]


# tokens per step where a whole-corpus numpy call would make an int64 copy of the ids
BLOCK_TOKENS = 1 << 22


def vocab_matches(path: Path, vocab_sha256: str | None) -> bool:
    """Whether the prepared data at ``path`` has the vocabulary a model records (model.json's
    ``data.vocab_sha256``): only then do its token ids mean the words the model learned."""
    try:
        return vocab_sha256 is not None and sha256_file(Path(path) / VOCAB) == vocab_sha256
    except OSError:
        return False


def is_prepared_data(path: Path) -> bool:
    """Whether ``path`` holds data ``prepare`` wrote (of any format version: it may be
    replaced by a newer one) and nothing else: a folder with other files in it is not ours
    to replace, even with a manifest."""
    return holds_prepared_manifest(path) and not foreign_entries(path)


def holds_prepared_manifest(path: Path) -> bool:
    try:
        manifest = json.loads(read_regular(Path(path) / MANIFEST).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == DATA_FORMAT


def foreign_entries(path: Path) -> list[str]:
    """Names in ``path`` that ``prepare`` does not write (a model trained into it, notes)."""
    ours = {MANIFEST, VOCAB, PRINTS, *(f"{split}.safetensors" for split in SPLITS)}
    return sorted(p.name for p in Path(path).iterdir() if p.name not in ours)


PREPARED_DATA = "prepared data"


def prepared_output(out: Path):
    """The directory to write prepared data into; it becomes ``out`` when the block succeeds."""
    return atomic_directory(out, is_prepared_data, PREPARED_DATA)


def write_split(
    path: Path, n_tokens: int, offsets: np.ndarray, labels: np.ndarray, id_blocks: Iterable[np.ndarray]
) -> None:
    """A split's safetensors file, its ids written block by block as ``id_blocks`` yields them
    (``n_tokens`` in all), so a split is never whole in memory."""
    label_type = np.uint8 if labels.ndim == 2 else np.int64
    offsets, labels = offsets.astype(np.int64, copy=False), np.ascontiguousarray(labels, dtype=label_type)
    shapes = {
        "ids": (np.int32, (n_tokens,)),
        "labels": (label_type, labels.shape),
        "offsets": (np.int64, offsets.shape),
    }

    def write_ids(fh) -> None:
        written = 0
        for block in id_blocks:
            np.ascontiguousarray(block, dtype=np.int32).tofile(fh)
            written += len(block)
        if written != n_tokens:
            raise AssertionError(f"{path.name}: {written} ids written, {n_tokens} expected")

    writers = {"ids": write_ids, "labels": labels.tofile, "offsets": offsets.tofile}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(safetensors.header(shapes))
            for name in sorted(shapes):  # the header's order
                writers[name](fh)

    atomic_write_with(path, write)


def write_vocab(tmp: Path, vocab: Vocab) -> None:
    atomic_write_json_list(tmp / VOCAB, vocab.itos)  # a large vocabulary's strings are not copied


def seal_prepared(
    tmp: Path,
    vocab_size: int,
    labels: list[str],
    tokenizer: dict[str, Any],
    extra: dict[str, Any],
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    train_prints: np.ndarray,
) -> dict[str, Any]:
    """The train fingerprints and the manifest, written beside the vocabulary and the splits'
    files in ``tmp``; ``splits`` gives each split's (offsets, labels). Returns the manifest."""
    manifest: dict[str, Any] = {
        "format": DATA_FORMAT,
        "version": DATA_VERSION,
        "classify_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
        "task": task_of_labels(next(iter(splits.values()))[1]),
        "labels": labels,
        "tokenizer": tokenizer,
        "vocab_size": vocab_size,
        "splits": {
            name: {
                "rows": len(split_labels),
                "tokens": int(offsets[-1]),
                "per_class": {labels[i]: int(c) for i, c in enumerate(label_counts(split_labels, len(labels)))},
            }
            for name, (offsets, split_labels) in splits.items()
        },
        "files": {},
    }
    # evaluate's check for training rows reads these, not the train split
    atomic_write_with(tmp / PRINTS, lambda file: file.write_bytes(safetensors.to_bytes({"train": train_prints})))
    manifest["files"] = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
    manifest = sealed(manifest)
    atomic_write_json(tmp / MANIFEST, manifest)
    return manifest


def read_manifest(path: Path) -> dict[str, Any]:
    path = Path(path)
    file = path / MANIFEST
    if path.is_file():  # a corpus given where its prepared form belongs
        raise InputError(
            f"{path} is a file, not prepared data: prepare it first, e.g. "
            f"`classify prepare --from {path} --out data/{path.stem}`, then train with --data data/{path.stem}"
        )
    if not path.is_dir():
        from ..inputs.sources import SAMPLE_HINT

        raise InputError(
            f"no prepared data at {path}: run `classify prepare --from SOURCE --out {path}` first "
            f"(SOURCE: a CSV/JSONL/Parquet file, a directory or a Hub dataset; {SAMPLE_HINT})"
        )
    try:
        manifest = read_document(
            file, DATA_FORMAT, DATA_VERSION, MANIFEST_SCHEMA, ("prepared-data manifest", "manifest"), "prepare again"
        )
    except FileNotFoundError:
        raise BundleError(f"{path} is not prepared data (no {MANIFEST}); run `classify prepare --out {path}`") from None
    labels = set(manifest["labels"])
    if any(set(s["per_class"]) != labels for s in manifest["splits"].values()):
        raise BundleError(f"{file}: invalid manifest (splits' per_class disagree with labels); prepare again")
    return manifest


def _verified_map(path: Path, manifest: dict[str, Any]):
    """The file memory-mapped (read-only) once its checksum, read a block at a time, matches:
    its pages are the page cache's, not this process's to hold."""
    import mmap

    expected = manifest.get("files", {}).get(path.name)
    try:
        if expected is None or sha256_file(path) != expected:
            raise BundleError(f"{path}: checksum does not match the manifest (modified or truncated); prepare again")
        with open_regular(path) as fh:
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise BundleError(f"{path} is missing; prepare the data again") from None
    except (OSError, ValueError) as exc:  # ValueError: an empty file cannot be mapped
        raise BundleError(f"{path}: unreadable ({exc}); prepare again") from None


def _check_split(split: Split, manifest: dict[str, Any], name: str, file: Path) -> None:
    """What indexes something lies in its range: arrays whose checksum was recomputed after an
    edit are refused here, not by an IndexError (or a wrong answer) in training."""
    rows, tokens = manifest["splits"][name]["rows"], manifest["splits"][name]["tokens"]
    ids, offsets, labels = split.ids, split.offsets, split.labels
    n_labels = len(manifest["labels"])
    if manifest.get("task", SINGLE_LABEL) == SINGLE_LABEL:
        ok = labels.dtype == np.int64 and labels.shape == (rows,)
        ok = ok and (not rows or (0 <= labels.min() and labels.max() < n_labels))
    else:
        ok = labels.dtype == np.uint8 and labels.shape == (rows, n_labels) and (not rows or labels.max() <= 1)
    ok = ok and ids.dtype == np.int32 and offsets.dtype == np.int64
    ok = ok and ids.shape == (tokens,) and offsets.shape == (rows + 1,)
    ok = ok and offsets[0] == 0 and offsets[-1] == tokens and bool((np.diff(offsets) >= 0).all())
    for lo in range(0, tokens, BLOCK_TOKENS):  # a block at a time: min/max of 100M ids holds no copy
        block = ids[lo : lo + BLOCK_TOKENS]
        ok = ok and 0 <= block.min() and block.max() < manifest["vocab_size"]
        drop_resident(ids)  # a mapped file: the check leaves no pages behind
    if not ok:
        raise BundleError(f"{file}: its arrays disagree with the manifest (modified?); prepare again")


def train_fingerprints(path: Path) -> np.ndarray:
    """The train documents' fingerprints, verified: the small file prepare keeps (else, for data
    prepared without it, computed from the train split)."""
    from ..util.ragged import fingerprints

    path = Path(path)
    manifest = read_manifest(path)
    if PRINTS in manifest["files"]:
        prints = safetensors.arrays(_verified_map(path / PRINTS, manifest), path / PRINTS).get("train")
        if prints is None or prints.dtype != np.uint64 or prints.shape != (manifest["splits"]["train"]["rows"],):
            raise BundleError(f"{path / PRINTS}: not the train split's fingerprints; prepare again")
        return prints
    train = load_prepared(path, ("train",)).splits["train"]
    return fingerprints(train.ids, train.offsets)


def load_prepared(path: Path, splits: Iterable[str] = SPLITS) -> PreparedData:
    """Load and verify prepared data (checksums and format version); the arrays are read-only."""

    path = Path(path)
    manifest = read_manifest(path)
    itos = json.loads(bytes(_verified_map(path / VOCAB, manifest)))
    try:
        vocab = Vocab(itos)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{path / VOCAB}: invalid vocabulary ({exc})") from None
    loaded = {}
    for name in splits:
        file = path / f"{name}.safetensors"
        tensors = safetensors.arrays(_verified_map(file, manifest), file)  # views of the file: no copy
        try:
            # offsets and labels copied (small), so dropping a split's ids unmaps its file
            loaded[name] = Split(tensors["ids"], tensors["offsets"].copy(), tensors["labels"].copy())
        except KeyError as exc:
            raise BundleError(f"{file}: tensor {exc} is missing; prepare again") from None
        _check_split(loaded[name], manifest, name, file)
    return PreparedData(path, vocab, list(manifest["labels"]), dict(manifest["tokenizer"]), manifest, loaded)
