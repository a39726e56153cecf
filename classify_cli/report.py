"""Pictures of a run: learning curves and the confusion matrix, as PNG files (matplotlib)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

from .errors import EnvironmentFailure, InputError
from .fsutil import atomic_write_bytes

SOFTWARE = "classify report"


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise EnvironmentFailure(
            "matplotlib is not installed; install the plots extra: pip install 'classify-cli[plots]'"
        ) from None
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    # the tag says the file is ours: report replaces its own pictures and no one else's
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight", metadata={"Software": SOFTWARE})
    plt.close(fig)
    return buffer.getvalue()


def plot_curves(history: list[dict[str, Any]]) -> bytes:
    """The learning curves as PNG bytes."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(epochs, [r["train_loss"] for r in history], marker="o", label="train")
    loss_ax.plot(epochs, [r["val_loss"] for r in history], marker="o", label="validation")
    best = min(history, key=lambda r: r["val_loss"])  # the epoch train saved
    for ax in (loss_ax, acc_ax):
        ax.axvline(best["epoch"], color="grey", linestyle="--", label=f"best epoch {best['epoch']}")
    loss_ax.set(title="cross-entropy loss", xlabel="epoch", ylabel="loss")
    loss_ax.legend()
    acc_ax.plot(epochs, [r["val_accuracy"] for r in history], marker="o", color="tab:orange", label="validation")
    acc_ax.set(title="accuracy", xlabel="epoch", ylabel="accuracy")
    acc_ax.legend()
    return _png(fig)


def plot_confusion(report: dict[str, Any]) -> bytes:
    """The confusion matrix (rows normalized, counts written in) as PNG bytes."""
    plt = _pyplot()
    import numpy as np

    labels = report["labels"]
    counts = np.array(report["confusion_matrix"], dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 3, 1.2 * len(labels) + 2))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j, i, f"{int(counts[i, j])}", ha="center", va="center", color="white" if rates[i, j] > 0.5 else "black"
            )
    ax.set(
        xlabel="predicted",
        ylabel="true",
        title=f"confusion matrix (accuracy {report['accuracy']:.3f}, n={report['n']})",
    )
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of true class")
    return _png(fig)


def write_report(run_dir: Path, out_dir: Path | None, data: Path | None) -> list[Path]:
    """curves.png from metrics.jsonl and confusion.png from evaluating on ``data``.

    Both pictures are drawn before either is written, so a run or data that cannot be used
    leaves nothing behind.
    """
    from .evaluation import default_data, evaluate

    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is not a directory; choose another --out")
    _pyplot()  # fail before any work when matplotlib is missing
    for name in PICTURES:
        if os.path.lexists(out_dir / name) and not is_our_picture(out_dir / name):
            raise InputError(
                f"{out_dir / name} was not drawn by classify report; refusing to replace it (choose another --out)"
            )
    history = read_history(run_dir)
    if data is None:
        data = default_data(run_dir)
    pictures = dict(zip(PICTURES, (plot_curves(history), plot_confusion(evaluate(run_dir, data))), strict=True))
    for name, png in pictures.items():
        atomic_write_bytes(out_dir / name, png)
    return [out_dir / name for name in pictures]


PICTURES = ("curves.png", "confusion.png")


def is_our_picture(path: Path) -> bool:
    """A regular PNG file whose text chunk names classify report as the software that drew it."""
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)  # matplotlib writes its text chunks before the image data
    return head.startswith(b"\x89PNG") and b"tEXtSoftware\x00" + SOFTWARE.encode() in head


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch rows of ``metrics.jsonl``."""
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        raise InputError(f"{run_dir} has no metrics.jsonl (not a finished training run)")
    try:
        history = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{metrics}: not valid JSON lines (corrupt or truncated)") from None
    if not history:
        raise InputError(f"{metrics} is empty (not a finished training run)")
    return history
