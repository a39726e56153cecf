from __future__ import annotations

from enum import Enum
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


class Format(str, Enum):
    table = "table"
    json = "json"


def default_data(model: Path) -> Path:
    """The data the model was trained on, when it is still there; else data/ag_news."""
    from ..bundle import read_meta

    recorded = read_meta(model).get("data", {}).get("path")
    return Path(recorded) if recorded and Path(recorded).is_dir() else Path("data/ag_news")


@app.command("evaluate")
def evaluate_cli(
    model: Annotated[Path, typer.Option("--model", help="Run directory holding the trained model.")] = Path(
        "runs/ag_news"
    ),
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Prepared data directory (its test split) or a labeled file/directory "
            "[default: the data the model was trained on, else data/ag_news].",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    debug: Debug = False,
) -> None:
    """Measure a trained model on labeled data: accuracy, F1, loss, confusion matrix."""
    from ..evaluation import dumps, evaluate

    if data is None:
        data = run(default_data, model, debug=debug)
    report = run(evaluate, model, data, debug=debug)
    if fmt is Format.json:
        print(dumps(report))
    else:
        render_table(report)
