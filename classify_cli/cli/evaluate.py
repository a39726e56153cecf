from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..model.metrics import HIGHER_IS_BETTER, LOWER_IS_BETTER, METRICS, SET_METRICS
from ..util.errors import EXIT_BELOW_THRESHOLD
from ._util import (
    DEFAULT_RUN,
    Bar,
    Debug,
    LabelField,
    LabelSep,
    ModelDir,
    TextFields,
    app,
    column_overrides,
    err,
    listed,
    plain_console,
    run,
    shown,
)


def render_table(report: dict) -> None:
    from rich.table import Table

    console = plain_console()
    # model and data as rows, not a title: long paths would wrap a title over several lines
    summary = Table(show_header=False)
    summary.add_row("model", shown(report["model"]))
    summary.add_row("data", shown(report["data"]))
    several = report["task"] == "multi_label"
    metrics = SET_METRICS if several else METRICS
    for key in ("n", *(m for m in metrics if m != "mean_confidence"), "oov_rate"):
        value = report[key]
        summary.add_row(key, f"{value:,}" if isinstance(value, int) else f"{value:.4f}")
    if several:
        decision = report["decision"]
        own = f" ({len(decision['thresholds'])} labels their own)" if decision.get("thresholds") else ""
        summary.add_row("threshold", f"{decision['threshold']}{own}")
        summary.add_row("labels per text", "{true:.3f} true, {predicted:.3f} predicted".format(**report["cardinality"]))
    console.print(summary)
    extra = ("predicted",) if several else ()
    per_class = Table(
        "label", "precision", "recall", "f1", "support", *extra, title="per label" if several else "per class"
    )
    for label, m in report["per_class"].items():
        per_class.add_row(
            shown(label),
            f"{m['precision']:.4f}",
            f"{m['recall']:.4f}",
            f"{m['f1']:.4f}",
            str(m["support"]),
            *(str(m[key]) for key in extra),
        )
    console.print(per_class)
    if not several:  # a set of labels per text has no confusion matrix: the per-label table says it
        cm = Table("true \\ predicted", *map(shown, report["labels"]), title="confusion matrix")
        for label, row in zip(report["labels"], report["confusion_matrix"], strict=True):
            cm.add_row(shown(label), *map(str, row))
        console.print(cm)
    drift = report["drift"]
    if "oov_rate" in drift:
        table = Table("drift", "batch", "training", title="drift from the training data")
        table.add_row("OOV rate", f"{drift['oov_rate']['batch']:.4f}", f"{drift['oov_rate']['reference']:.4f}")
        table.add_row(
            "mean confidence",
            f"{drift['mean_confidence']['batch']:.4f}",
            f"{drift['mean_confidence']['reference']:.4f}",
        )
        for lab in report["labels"]:
            dist = drift["label_distribution"]
            table.add_row(f"share {shown(lab)}", f"{dist['batch'][lab]:.3f}", f"{dist['reference'].get(lab, 0):.3f}")
        console.print(table)


class Format(StrEnum):
    table = "table"
    json = "json"


def evaluate(
    model: Path, data: Path | None, under: list[str], over: list[str], output: Path | None, columns: dict
) -> tuple[dict, list[dict]]:
    """Evaluate, check thresholds, write --output; returns the report and failed checks."""
    from ..serve.evaluation import (
        check_thresholds,
        default_data,
        dumps,
        parse_threshold,
    )
    from ..serve.evaluation import evaluate as evaluate_model
    from ..util.fs import write_output

    fail_under = [parse_threshold(t, HIGHER_IS_BETTER, "--fail-under") for t in under]
    fail_over = [parse_threshold(t, LOWER_IS_BETTER, "--fail-over") for t in over]
    with Bar("rows", "evaluating") as bar:
        report = evaluate_model(model, data if data is not None else default_data(model), columns, bar.advance)
    report["thresholds"] = check_thresholds(report, fail_under, fail_over)
    # when it ran: `report --history` orders a cron job's daily reports by it
    report["evaluated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    if output is not None:
        write_output(output, (dumps(report) + "\n").encode())
    return report, [c for c in report["thresholds"] if not c["passed"]]


@app.command("evaluate")
def evaluate_cli(
    model: ModelDir = DEFAULT_RUN,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Prepared data directory (its test split) or a labeled file/directory "
            "[default: the data the model was trained on].",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    output: Annotated[
        Path | None, typer.Option("--output", help="Also write the JSON report here (atomically).", show_default=False)
    ] = None,
    fail_under: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-under",
            metavar="METRIC=VALUE",
            help=f"METRIC=VALUE: exit 1 if METRIC ({', '.join(HIGHER_IS_BETTER)}) is below; VALUE alone: "
            "the model's main metric (accuracy; micro_f1 for a set of labels per text). Repeatable.",
            show_default=False,
        ),
    ] = None,
    fail_over: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-over",
            metavar="METRIC=VALUE",
            help=f"METRIC=VALUE: exit 1 if METRIC ({', '.join(LOWER_IS_BETTER)}) is above. Repeatable.",
            show_default=False,
        ),
    ] = None,
    text_fields: TextFields = None,
    label_field: LabelField = None,
    label_sep: LabelSep = None,
    debug: Debug = False,
) -> None:
    """Measure a model on labeled data: accuracy, F1, drift.

    Also loss, calibration (ECE) and the confusion matrix. Exit codes: 0 ok, 1 a
    --fail-under/--fail-over threshold was not met, 2 usage or input error.

    \b
    Examples:
      classify evaluate --model runs/ag_news --data data/ag_news
      classify evaluate --data new.csv --format json --fail-under accuracy=0.85
    """
    from ..serve.evaluation import dumps

    columns = column_overrides(text_fields, label_field, label_sep)
    report, failed = run(evaluate, model, data, fail_under or [], fail_over or [], output, columns, debug=debug)
    unknown = report["unknown_labels"]
    counts = listed(f"{label} {n:,}" for label, n in unknown["labels"].items())
    if unknown.get("rows"):
        err(f"warning: skipped {unknown['rows']:,} rows whose label the model does not know: {counts}")
    if unknown.get("left_out"):  # a set of labels per text: the rest of the row was scored
        err(f"warning: left out {unknown['left_out']:,} labels the model does not know: {counts}")
    overlap = report["train_overlap"]
    if overlap["rows"]:
        err(
            f"warning: {overlap['rows']:,} of {report['n']:,} evaluated rows ({overlap['fraction']:.1%}) are "
            "documents the model was trained on: the scores flatter it"
        )
    for warning in report["drift"]["warnings"]:
        err(f"warning: drift: {warning}")
    if fmt is Format.json:
        print(dumps(report), flush=True)
    else:
        render_table(report)
    for check in failed:
        bound = f"< {check['fail_under']}" if "fail_under" in check else f"> {check['fail_over']}"
        err(f"FAILED: {check['metric']} {check['actual']:.4f} {bound}")
    if failed:
        raise typer.Exit(EXIT_BELOW_THRESHOLD)
