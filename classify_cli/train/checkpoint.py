"""Checkpoints of an interrupted training run, for ``classify train --resume``.

``RUN_DIR/checkpoint/`` holds ``state.json`` (progress, config, optimizer and scheduler
state, the data it trains on) and ``tensors.safetensors`` (current and best weights), and is
replaced as a whole (written under a temporary name, then renamed). No pickle.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..model.rundir import CHECKPOINT
from ..util import safetensors
from ..util.config import config_from_dict
from ..util.errors import BundleError
from ..util.fs import atomic_write_bytes, atomic_write_json, read_regular
from ..util.schema import COUNT, SHA256, Checked, Float, Int, Invalid, List, Map, Maybe, Obj, Str
from ..util.swap import atomic_directory

CHECKPOINT_FORMAT = "classify-checkpoint"
CHECKPOINT_VERSION = 3  # 2: the best epoch kept as its class table; 3: n-grams hashed by multiply-shift


def save_checkpoint(run_dir: Path, state: dict[str, Any], tensors: dict[str, np.ndarray]) -> Path:
    data = safetensors.to_bytes(tensors)
    target = Path(run_dir) / CHECKPOINT
    with atomic_directory(target) as tmp:
        atomic_write_bytes(tmp / "tensors.safetensors", data)
        atomic_write_json(
            tmp / "state.json",
            {
                "format": CHECKPOINT_FORMAT,
                "version": CHECKPOINT_VERSION,
                "tensors_sha256": hashlib.sha256(data).hexdigest(),
                **state,
            },
        )
    return target


_TORCH_STATE = Map(Checked(lambda value: value))  # torch's own state dicts: torch checks them on loading
STATE_SCHEMA = Obj(
    {
        "format": Str((CHECKPOINT_FORMAT,)),
        "version": Int(CHECKPOINT_VERSION, CHECKPOINT_VERSION),
        "tensors_sha256": SHA256,
        "config": Checked(config_from_dict),
        "data": Obj({"path": Str(), "vocab_sha256": SHA256}, {"vectors_sha256": SHA256}),
        "progress": Obj(  # training.RunState
            {
                "epoch_rng": Map(Checked(lambda value: value)),
                "epoch": Int(1),
                "step": COUNT,
                "loss_sum": Float(),
                "seen": COUNT,
                "seconds": Float(0),
                "best_loss": Maybe(Float()),
                "since_best": COUNT,
                "history": List(Map(Checked(lambda value: value))),
            }
        ),
        "optimizer": _TORCH_STATE,
        "scheduler": _TORCH_STATE,
    },
    {"world_size": Int(1)},  # ranks of the run (torchrun); absent: one process
)


def read_state(run_dir: Path) -> dict[str, Any]:
    """The checkpoint's state.json (progress, config, data), without its tensors."""
    folder = Path(run_dir) / CHECKPOINT
    if not (folder / "state.json").is_file():
        raise BundleError(f"no checkpoint to resume in {run_dir} (it is written when training is interrupted)")
    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BundleError(f"{folder}: unreadable checkpoint ({exc})") from None
    if (
        not isinstance(state, dict)
        or state.get("format") != CHECKPOINT_FORMAT
        or state.get("version") != CHECKPOINT_VERSION
    ):
        raise BundleError(
            f"{folder}: not a checkpoint this classify can resume (another version wrote it); train again without --resume"
        )
    try:
        STATE_SCHEMA.check(state, "")
    except Invalid as exc:
        raise BundleError(f"{folder}: invalid checkpoint ({exc})") from None
    return state


def load_checkpoint(run_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    folder = Path(run_dir) / CHECKPOINT
    state = read_state(run_dir)
    try:
        data = read_regular(folder / "tensors.safetensors")
    except OSError as exc:
        raise BundleError(f"{folder}: unreadable checkpoint ({exc})") from None
    if hashlib.sha256(data).hexdigest() != state.get("tensors_sha256"):
        raise BundleError(f"{folder}: checksum mismatch (modified or truncated)")
    return state, safetensors.arrays(bytearray(data), folder / "tensors.safetensors")  # writable: torch takes them


def remove_checkpoint(run_dir: Path) -> None:
    import shutil

    shutil.rmtree(Path(run_dir) / CHECKPOINT, ignore_errors=True)
