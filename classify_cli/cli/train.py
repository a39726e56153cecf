from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ._util import Debug, app, color_ok, err, parse_overrides, run
from .prepare import load_config_or_default


def train(data: Path, out: Path, config: Path | None, overrides: dict, progress: bool) -> dict:
    from ..training import train as train_model

    cfg = load_config_or_default(config, overrides)
    total = cfg.train.epochs

    def log_epoch(r) -> None:
        best = " *" if r.is_best else ""
        err(
            f"epoch {r.epoch:>3}/{total}  lr {r.lr:.4g}  train loss {r.train_loss:.4f}  "
            f"val loss {r.val_loss:.4f}  val acc {r.val_accuracy:.4f}  {r.seconds:.1f}s{best}"
        )

    if not progress:
        return train_model(data, out, cfg, log=err, on_epoch=log_epoch)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("", total=total)

        def on_epoch(r) -> None:
            bar.console.print(
                f"epoch {r.epoch:>3}/{total}  lr {r.lr:.4g}  train loss {r.train_loss:.4f}  "
                f"val loss {r.val_loss:.4f}  val acc {r.val_accuracy:.4f}  {r.seconds:.1f}s"
                + (" [bold green]*[/]" if r.is_best else "")
            )
            bar.update(task, advance=1, description=f"val acc {r.val_accuracy:.4f}")

        return train_model(data, out, cfg, log=lambda m: bar.console.print(m), on_epoch=on_epoch)


@app.command("train")
def train_cli(
    data: Annotated[Path, typer.Option("--data", help="Prepared data directory (from `classify prepare`).")] = Path(
        "data/ag_news"
    ),
    out: Annotated[Path, typer.Option("--out", help="Run directory for the model bundle and metrics.")] = Path(
        "runs/ag_news"
    ),
    config: Annotated[Path | None, typer.Option("--config", help="TOML config (default: configs/agnews.toml).")] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="auto, cpu, cuda or mps (overrides train.device).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (overrides train.seed).")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Number of epochs (overrides train.epochs).")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate (overrides train.lr).")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config key: section.key=value.")
    ] = None,
    debug: Debug = False,
) -> None:
    """Fit the EmbeddingBag + Linear classifier with SGD, StepLR and gradient clipping.

    The epoch with the best validation accuracy is saved; prints a JSON summary on stdout.
    """
    extra = run(parse_overrides, overrides, debug=debug)
    for key, value in (("device", device), ("seed", seed), ("epochs", epochs), ("lr", lr)):
        if value is not None:
            extra[("train", key)] = value
    summary = run(train, data, out, config, extra, color_ok(), debug=debug)
    print(json.dumps(summary))
