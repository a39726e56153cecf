"""Pictures of a run: learning curves and the confusion matrix, as PNG files (matplotlib)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from .errors import EnvironmentFailure, InputError
from .fsutil import atomic_write_bytes


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


def _save(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
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
    _save(fig, path)
    plt.close(fig)


def plot_confusion(report: dict[str, Any], path: Path) -> None:
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
    _save(fig, path)
    plt.close(fig)


def write_report(run_dir: Path, out_dir: Path | None, data: Path | None) -> list[Path]:
    """curves.png from metrics.jsonl and confusion.png from evaluating on ``data``."""
    from .evaluation import default_data, evaluate

    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir
    _pyplot()  # fail before any work when matplotlib is missing
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        raise InputError(f"{run_dir} has no metrics.jsonl (not a finished training run)")
    history = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    if data is None:
        data = default_data(run_dir)
    written = [out_dir / "curves.png", out_dir / "confusion.png"]
    plot_curves(history, written[0])
    plot_confusion(evaluate(run_dir, data), written[1])
    return written
