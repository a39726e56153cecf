from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._util import Debug, app, run


def render_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    summary = Table(title=f"{report['model']} on {report['data']}", show_header=False)
    for key in ("n", "accuracy", "macro_f1", "weighted_f1", "loss", "ece", "oov_rate"):
        value = report[key]
        summary.add_row(key, f"{value:,}" if isinstance(value, int) else f"{value:.4f}")
    console.print(summary)
    per_class = Table("label", "precision", "recall", "f1", "support", title="per class")
    for label, m in report["per_class"].items():
        per_class.add_row(label, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", str(m["support"]))
    console.print(per_class)
    cm = Table("true \\ predicted", *report["labels"], title="confusion matrix")
    for label, row in zip(report["labels"], report["confusion_matrix"], strict=True):
        cm.add_row(label, *map(str, row))
    console.print(cm)
    unknown = report["unknown_labels"]
    if unknown["rows"]:
        console.print(f"skipped {unknown['rows']:,} rows with labels unknown to the model: {unknown['labels']}")


@app.command("evaluate")
def evaluate_cli(
    model: Annotated[Path, typer.Option("--model", help="Run directory holding the trained model.")] = Path(
        "runs/ag_news"
    ),
    data: Annotated[
        Path, typer.Option("--data", help="Prepared data directory (its test split) or a labeled file/directory.")
    ] = Path("data/ag_news"),
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    debug: Debug = False,
) -> None:
    """Measure a trained model on labeled data: accuracy, F1, loss, confusion matrix."""
    from ..errors import InputError

    if fmt not in ("table", "json"):
        run(_raise, InputError(f"--format must be table or json, not {fmt!r}"), debug=debug)
    from ..evaluation import dumps, evaluate

    report = run(evaluate, model, data, debug=debug)
    if fmt == "json":
        print(dumps(report))
    else:
        render_table(report)


def _raise(exc: Exception) -> None:
    raise exc
