"""Pictures of a run: learning curves and the confusion matrix (per-label scores for a set of
labels per text), as PNG files (matplotlib)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..model.metrics import METRICS, SET_METRICS
from ..model.rundir import METRICS_LOG
from ..util.errors import EnvironmentFailure, InputError
from ..util.fs import atomic_write_bytes

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
    # the epoch train saved (older runs' rows lack is_best: theirs was the lowest loss)
    best = [r for r in history if r.get("is_best")][-1:] or [min(history, key=lambda r: r["val_loss"])]
    for ax in (loss_ax, acc_ax):
        ax.axvline(best[0]["epoch"], color="grey", linestyle="--", label=f"best epoch {best[0]['epoch']}")
    loss_ax.set(title="training loss", xlabel="epoch", ylabel="loss")
    loss_ax.legend()
    key, name = ("val_micro_f1", "micro-F1") if "val_micro_f1" in history[0] else ("val_accuracy", "accuracy")
    acc_ax.plot(epochs, [r[key] for r in history], marker="o", color="tab:orange", label="validation")
    acc_ax.set(title=name, xlabel="epoch", ylabel=name)
    acc_ax.legend()
    fig.tight_layout()  # the second panel's axis label clear of the first
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


def plot_per_label(report: dict[str, Any]) -> bytes:
    """A set of labels per text: each label's precision, recall and F1 (and support), as PNG bytes."""
    plt = _pyplot()
    import numpy as np

    labels = report["labels"]
    per = report["per_class"]
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(0.9 * len(labels) + 4, 4))
    for i, metric in enumerate(("precision", "recall", "f1")):
        ax.bar(x + (i - 1) * 0.27, [per[label][metric] for label in labels], width=0.27, label=metric)
    ax.set_xticks(x, [f"{label}\n({per[label]['support']})" for label in labels], rotation=45, ha="right")
    ax.set(
        ylim=(0, 1),
        ylabel="score",
        title=f"per label at threshold {report['decision']['threshold']} (micro-F1 {report['micro_f1']:.3f}, "
        f"n={report['n']})",
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the bars, not over them
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
    report = evaluate(run_dir, data)
    several = report["task"] == "multi_label"  # per-label results: a set of labels has no confusion matrix
    second = ("per_label.png", plot_per_label(report)) if several else ("confusion.png", plot_confusion(report))
    pictures = dict([("curves.png", plot_curves(history)), second])
    for name, png in pictures.items():
        atomic_write_bytes(out_dir / name, png)
    return [out_dir / name for name in pictures]


PICTURES = ("curves.png", "confusion.png", "per_label.png")  # the second for one label per text, the third for several


def is_our_picture(path: Path) -> bool:
    """A regular PNG file whose text chunk names classify report as the software that drew it."""
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)  # matplotlib writes its text chunks before the image data
    return head.startswith(b"\x89PNG") and b"tEXtSoftware\x00" + SOFTWARE.encode() in head


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch rows of ``metrics.jsonl``."""
    metrics = run_dir / METRICS_LOG
    if not metrics.is_file():
        raise InputError(f"{run_dir} has no metrics.jsonl (not a finished training run)")
    try:
        history = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{metrics}: not valid JSON lines (corrupt or truncated)") from None
    if not history:
        raise InputError(f"{metrics} is empty (not a finished training run)")
    return history


# `report --history`: each metric of `evaluate --output` reports over time (evaluate's
# metrics, and the OOV rate it adds), as the models' task has them
HISTORY_METRICS = (*METRICS, "oov_rate")
SET_HISTORY_METRICS = (*SET_METRICS, "oov_rate")  # a set of labels per text


def metrics_of(report: dict[str, Any]) -> tuple[str, ...]:
    return SET_HISTORY_METRICS if report.get("task") == "multi_label" else HISTORY_METRICS


HISTORY_HTML = "history.html"
# the tag that says an HTML page is ours, as the PNG text chunk says a picture is
HTML_TAG = f'<meta name="generator" content="{SOFTWARE}">'


def history_pictures(metrics: tuple[str, ...] = HISTORY_METRICS) -> list[str]:
    return [f"history-{metric}.png" for metric in metrics]


def read_evaluations(source: str, warn: Callable[[str], None]) -> list[dict[str, Any]]:
    """The reports ``evaluate --output`` wrote, matched by ``source`` (a directory: its
    ``*.json``; else a glob), oldest first: by their ``evaluated_at``, else the file's mtime.
    A file that is not such a report is skipped with a warning; none at all is exit 2."""
    import glob

    if Path(source).is_dir():
        paths = sorted(Path(source).glob("*.json"))
    else:
        paths = sorted(Path(p) for p in glob.glob(source) if Path(p).is_file())
    if not paths:
        raise InputError(f"--history {source}: no files matched (give a directory of JSON reports or a glob)")
    found, skipped = [], []
    for path in paths:
        report, why = _evaluation(path)
        if report is None:
            skipped.append(f"{path}: {why}")
            continue
        found.append(report)
    if not found:
        raise InputError(
            f"--history {source}: none of the {len(paths)} files is a classify evaluate report ({skipped[0]})"
        )
    found.sort(key=lambda r: (r["when"], r["file"]))
    task = found[-1]["report"].get("task", "single_label")  # the newest report's: one table of metrics
    for r in found:
        if r["report"].get("task", "single_label") != task:
            skipped.append(f"{r['path']}: a model of another task than the newest report's ({task})")
    for line in skipped:
        warn(f"warning: skipped {line}")
    return [r for r in found if r["report"].get("task", "single_label") == task]


def _evaluation(path: Path) -> tuple[dict[str, Any] | None, str]:
    """The report in ``path`` with its time (``when``) and file name, or None and why not."""
    from datetime import UTC, datetime

    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None, "not valid JSON (corrupt or truncated?)"
    if not (
        isinstance(report, dict)
        and type(report.get("n")) is int
        # evaluate writes every metric, a number (null where it was not finite)
        and all(m in report and type(report[m]) in (int, float, type(None)) for m in metrics_of(report))
        and isinstance(report.get("thresholds", []), list)
    ):
        return None, "not a classify evaluate report"
    when = None
    if isinstance(report.get("evaluated_at"), str):
        try:
            when = datetime.fromisoformat(report["evaluated_at"])
        except ValueError:
            return None, f"evaluated_at {report['evaluated_at']!r} is not an ISO time"
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when is None:  # written before evaluate recorded the time: the file's
        when = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    checks = [c for c in report.get("thresholds", []) if isinstance(c, dict)]
    failed = [c for c in checks if c.get("passed") is False]
    return {"path": path, "file": path.name, "when": when, "report": report, "checks": checks, "failed": failed}, ""


def plot_history(rows: list[dict[str, Any]], metric: str) -> bytes:
    """``metric`` of each report over time as PNG bytes; failed days marked in red, with the
    thresholds of ``metric`` drawn."""
    plt = _pyplot()
    times = [r["when"] for r in rows]
    values = [r["report"].get(metric) for r in rows]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(times, [float("nan") if v is None else v for v in values], marker="o", label=metric)
    failed = [(t, v) for t, v, r in zip(times, values, rows, strict=True) if r["failed"] and v is not None]
    if failed:
        ax.scatter(*zip(*failed, strict=True), s=120, marker="x", color="red", zorder=3, label="failed a threshold")
    bounds = ("fail_under", "fail_over")
    limits = {
        (k, c[k])
        for r in rows
        for c in r["checks"]
        if c.get("metric") == metric
        for k in bounds
        if type(c.get(k)) in (int, float)
    }
    for kind, limit in sorted(limits, key=str):
        ax.axhline(limit, color="red", linestyle="--", linewidth=1, label=f"{kind.replace('_', '-')} {limit:g}")
    ax.set(title=f"{metric} over time", ylabel=metric)
    ax.legend(loc="best", fontsize="small")
    fig.autofmt_xdate()
    return _png(fig)


def history_html(rows: list[dict[str, Any]], pictures: dict[str, bytes]) -> str:
    """A self-contained page: the pictures (as data URIs) and a table of every report."""
    import base64
    from html import escape

    metrics = metrics_of(rows[0]["report"])
    head = ["evaluated at", "file", "model", "data", "n", *metrics, "thresholds"]
    lines = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        HTML_TAG,
        "<title>classify: evaluations over time</title>",
        "<style>body{font-family:sans-serif} table{border-collapse:collapse} td,th{border:1px solid #ccc;"
        "padding:2px 6px} tr.failed{background:#fdd}</style>",
        "</head><body>",
        f"<h1>Evaluations over time ({len(rows)} reports, {sum(bool(r['failed']) for r in rows)} failed)</h1>",
    ]
    for name, png in pictures.items():
        data = base64.b64encode(png).decode("ascii")
        lines.append(f'<p><img alt="{escape(name)}" src="data:image/png;base64,{data}"></p>')
    lines.append("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>")
    for r in rows:
        report = r["report"]
        cells = [
            r["when"].isoformat(timespec="seconds"),
            r["file"],
            str(report.get("model", "")),
            str(report.get("data", "")),
            f"{report['n']:,}",
        ]
        cells += ["" if report.get(m) is None else f"{report[m]:.4f}" for m in metrics]
        cells.append("; ".join(_check_text(c) for c in r["checks"]) or "none")
        row_class = ' class="failed"' if r["failed"] else ""
        lines.append(f"<tr{row_class}>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    lines.append("</table></body></html>")
    return "\n".join(lines) + "\n"


def _check_text(check: dict[str, Any]) -> str:
    bound = f"< {check.get('fail_under')}" if "fail_under" in check else f"> {check.get('fail_over')}"
    actual = check.get("actual")
    shown = f"{actual:.4f}" if isinstance(actual, int | float) else str(actual)
    return f"{'FAILED' if check.get('passed') is False else 'passed'}: {check.get('metric')} {shown} (fail if {bound})"


def is_our_page(path: Path) -> bool:
    """A regular file that starts as the pages ``report --history`` writes (its generator tag)."""
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as fh:
        head = fh.read(1 << 10)
    return HTML_TAG.encode() in head


def write_history(source: str, out_dir: Path | None, warn: Callable[[str], None]) -> list[Path]:
    """``history-METRIC.png`` for each metric and ``history.html`` (the pictures and the table)
    from the evaluate reports ``source`` matches, in ``out_dir`` (default: the directory that
    holds them). Everything is drawn before anything is written; only files this command
    wrote are replaced."""
    _pyplot()  # fail before any work when matplotlib is missing
    rows = read_evaluations(source, warn)
    if out_dir is None:  # beside the reports, as the run's pictures go in the run directory
        out_dir = Path(os.path.commonpath([r["path"].parent.absolute() for r in rows]))
    out_dir = Path(out_dir)
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is not a directory; choose another --out")
    metrics = metrics_of(rows[0]["report"])
    targets = [(name, is_our_picture) for name in history_pictures(metrics)] + [(HISTORY_HTML, is_our_page)]
    for name, ours in targets:
        if os.path.lexists(out_dir / name) and not ours(out_dir / name):
            raise InputError(
                f"{out_dir / name} was not written by classify report; refusing to replace it (choose another --out)"
            )
    pictures = {
        name: plot_history(rows, metric) for name, metric in zip(history_pictures(metrics), metrics, strict=True)
    }
    for name, png in pictures.items():
        atomic_write_bytes(out_dir / name, png)
    atomic_write_bytes(out_dir / HISTORY_HTML, history_html(rows, pictures).encode("utf-8"))
    return [*(out_dir / name for name in pictures), out_dir / HISTORY_HTML]


def write_pictures(
    run_dir: Path | None, out_dir: Path | None, data: Path | None, history: str | None, warn: Callable[[str], None]
) -> list[Path]:
    """What ``classify report`` draws: a run's pictures (``write_report``), or with ``history``
    the evaluations over time (``write_history``), which takes no run."""
    if history is None:
        if run_dir is None:
            raise InputError("give a run directory, or --history")
        return write_report(run_dir, out_dir, data)
    if run_dir is not None or data is not None:
        given = "RUN_DIR" if run_dir is not None else "--data"
        raise InputError(f"--history draws evaluate reports, not a run: leave out {given}")
    return write_history(history, out_dir, warn)
