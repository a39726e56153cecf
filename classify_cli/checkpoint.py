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

from .errors import BundleError
from .fsutil import atomic_directory, atomic_write_bytes, atomic_write_json

CHECKPOINT = "checkpoint"
CHECKPOINT_FORMAT = "classify-checkpoint"
CHECKPOINT_VERSION = 2  # 2: the best epoch kept as its class table


def save_checkpoint(run_dir: Path, state: dict[str, Any], tensors: dict[str, np.ndarray]) -> Path:
    from safetensors.numpy import save

    data = save({k: np.ascontiguousarray(v) for k, v in tensors.items()})
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


def load_checkpoint(run_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    folder = Path(run_dir) / CHECKPOINT
    if not (folder / "state.json").is_file():
        raise BundleError(f"no checkpoint to resume in {run_dir} (it is written when training is interrupted)")
    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        data = (folder / "tensors.safetensors").read_bytes()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{folder}: unreadable checkpoint ({exc})") from None
    if state.get("format") != CHECKPOINT_FORMAT or state.get("version") != CHECKPOINT_VERSION:
        raise BundleError(f"{folder}: not a supported classify checkpoint")
    if hashlib.sha256(data).hexdigest() != state.get("tensors_sha256"):
        raise BundleError(f"{folder}: checksum mismatch (modified or truncated)")
    try:
        return state, load(data)
    except (SafetensorError, ValueError) as exc:
        raise BundleError(f"{folder}: invalid tensors ({exc})") from None


def remove_checkpoint(run_dir: Path) -> None:
    import shutil

    shutil.rmtree(Path(run_dir) / CHECKPOINT, ignore_errors=True)
