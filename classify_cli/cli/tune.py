from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..model.metrics import SET_TUNABLE, TUNABLE
from ..train.trials import FOLDS, FOLDS_BELOW_VALIDATION, FOLDS_UP_TO_TRAIN
from ._signals import Format, stop_on_signals
from ._util import DEFAULT_DATA, DEFAULT_RUN, Bar, Debug, Overrides, app, load_config_or_default, parse_overrides, run

Metric = StrEnum("Metric", {name: name for name in (*TUNABLE, *SET_TUNABLE)})


def tune(
    data: Path,
    out: Path,
    config: Path | None,
    overrides: dict,
    budget: float,
    trials,
    metric: str | None,
    seed: int,
    folds: int | None,
    max_size: str | None,
):
    from ..train.tune import default_metric
    from ..train.tune import tune as search
    from ..util.display import parse_size

    metric = metric or default_metric(data)
    max_bytes = None if max_size is None else parse_size(max_size)
    cfg = load_config_or_default(config, overrides)
    # until trial 0 (the config given) ends, Ctrl-C aborts at once (exit 130, nothing written);
    # after it, Ctrl-C stops the trial under way and keeps the best so far
    with stop_on_signals() as (should_stop, signals), Bar("trials") as bar:

        def on_trial(row, best) -> None:
            signals.started()
            shown = "-" if row[metric] is None else f"{row[metric]:.4f}"
            so_far = "-" if best is None else f"{best[metric]:.4f}"
            line = f"trial {row['trial']:>3}  {row['state']:<9} {metric} {shown}  best {so_far}  {row['seconds']:.1f}s"
            bar.log(line)
            bar.update(row["trial"] + 1, trials, "trials")

        return search(
            data,
            out,
            cfg,
            budget=budget,
            trials=trials,
            metric=metric,
            seed=seed,
            folds=folds,
            max_bytes=max_bytes,
            log=bar.log,
            on_trial=on_trial,
            should_stop=should_stop,
        )


@app.command("tune")
def tune_cli(
    data: Annotated[Path, typer.Option("--data", help="Prepared data (its test split is never read).")] = DEFAULT_DATA,
    out: Annotated[Path, typer.Option("--out", help="Run directory for the chosen model.")] = DEFAULT_RUN,
    budget: Annotated[
        float,
        typer.Option(
            "--budget", help="Wall-time budget of the search, in seconds (trial 0, the config given, always finishes)."
        ),
    ] = 300.0,
    trials: Annotated[
        int | None,
        typer.Option("--trials", help="Stop after this many trials [default: when the budget is spent].", min=1),
    ] = None,
    metric: Annotated[
        Metric | None,
        typer.Option(
            "--metric",
            help="What trials are judged by [default: accuracy; micro_f1 for several labels per text].",
            show_default=False,
        ),
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML config to start from (trial 0).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the search and of every trial.")] = 0,
    folds: Annotated[
        int | None,
        typer.Option(
            "--folds",
            help="Judge each trial by k-fold cross-validation of the train split; 1: by the validation split "
            f"[default: {FOLDS} when validation has under {FOLDS_BELOW_VALIDATION} documents and train at most "
            f"{FOLDS_UP_TO_TRAIN:,}, else 1].",
            show_default=False,
            min=1,
        ),
    ] = None,
    max_size: Annotated[
        str | None,
        typer.Option(
            "--max-size",
            metavar="SIZE",
            help="Tune for a model (model.json and weights) no larger than this: bytes, or 500K, 2M, 1.5MB "
            "(powers of 1000; KiB, MiB: of 1024). Each trial's model is compressed to fit where need be, as "
            "`classify compress` does, and judged so; the output may then be a compressed model, which "
            "cannot be resumed.",
            show_default=False,
        ),
    ] = None,
    overrides: Overrides = None,
    fmt: Annotated[
        Format | None,
        typer.Option("--format", help="text (a table of trials) or json [default: text on a terminal, else json]."),
    ] = None,
    debug: Debug = False,
) -> None:
    """Search for the best config within a time budget.

    Optuna's TPE proposes configs (learning rate, batch size, StepLR gamma, patience, embedding
    size, n-gram order, weighting, supervised and n-gram weights), starting from the config
    given; weak trials are stopped after two epochs. Trials are judged on the validation split,
    or, where it is small, by cross-validation of the train split (--folds). The test split is
    never read. The chosen model is saved like `train` saves one, with tuned.toml (its config)
    and trials.jsonl beside it. Ctrl-C stops and keeps the best so far. Needs optuna
    (pip install optuna).

    \b
    Example:
      classify tune --data data/ag_news --out runs/tuned --budget 120
    """
    extra = run(parse_overrides, overrides, debug=debug)
    metric = None if metric is None else str(metric)
    summary = run(tune, data, out, config, extra, budget, trials, metric, seed, folds, max_size, debug=debug)
    if (fmt or (Format.text if sys.stdout.isatty() else Format.json)) is Format.json:
        print(json.dumps(summary))
        return
    print(describe_trials(summary))


def describe_trials(summary: dict) -> str:
    metric = summary["metric"]
    rows = summary["trials"]
    params = [k for k in rows[0] if "." in k] if rows else []
    sized = bool(rows) and "bytes" in rows[0]  # --max-size: each model's size as judged
    lines = ["  ".join(["trial", "state    ", f"{metric:>8}", *(["   bytes"] if sized else []), "seconds", *params])]
    for r in rows:
        value = "-" if r[metric] is None else f"{r[metric]:.4f}"
        cells = [f"{r['trial']:>5}", f"{r['state']:<9}", f"{value:>8}"]
        if sized:
            cells.append(f"{'-' if r['bytes'] is None else r['bytes']:>8}")
        cells.append(f"{r['seconds']:>7.1f}")
        cells += [f"{r.get(p):.4g}" if isinstance(r.get(p), float) else str(r.get(p)) for p in params]
        lines.append("  ".join(cells))
    lines.append(f"{summary['chosen_because']}; saved to {summary['out']}")
    return "\n".join(lines)
