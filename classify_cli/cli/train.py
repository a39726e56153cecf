from __future__ import annotations

import contextlib
import functools
import json
import shlex
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..train.distributed import BACKENDS
from ._signals import Format, stop_on_signals
from ._util import (
    DEFAULT_DATA,
    DEFAULT_RUN,
    Bar,
    Debug,
    Overrides,
    app,
    err,
    load_config_or_default,
    parse_overrides,
    run,
)

Backend = StrEnum("Backend", {name: name for name in BACKENDS})


SCORES = {"val_accuracy": ("val acc", "accuracy"), "val_micro_f1": ("val micro-F1", "micro-F1")}  # short, long


def format_epoch(r, total: int) -> str:
    return (
        # fixed widths: the columns line up from one epoch to the next
        f"epoch {r.epoch:>3}/{total}  lr {r.lr:<8.4g}  train loss {r.train_loss:.4f}  "
        f"val loss {r.val_loss:.4f}  {SCORES[r.score_name][0]} {r.val_score:.4f}  {r.seconds:6.1f}s"
        + ("  *best" if r.is_best else "")
    )


@contextlib.contextmanager
def tensorboard_logger(log_dir: Path | None) -> Iterator[Callable[[object], None]]:
    """Per-epoch scalars for TensorBoard when a directory is given (needs the tensorboard package)."""
    if log_dir is None:
        yield lambda result: None
        return
    from ..util.errors import EnvironmentFailure

    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise EnvironmentFailure("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    writers: list[SummaryWriter] = []

    def log(r) -> None:
        # the log directory is made at the first epoch, not before: a refused run creates no
        # directory (and one inside the run directory would make it look like someone else's)
        if not writers:
            writers.append(SummaryWriter(log_dir=str(log_dir)))
        writer = writers[0]
        writer.add_scalar("loss/train", r.train_loss, r.epoch)
        writer.add_scalar("loss/validation", r.val_loss, r.epoch)
        writer.add_scalar(f"{SCORES[r.score_name][1]}/validation", r.val_score, r.epoch)
        writer.add_scalar("lr", r.lr, r.epoch)
        writer.flush()

    try:
        yield log
    finally:
        for writer in writers:
            writer.close()


def train(
    data: Path, out: Path, config: Path | None, overrides: dict, resume: bool, tensorboard: Path | None, backend: str
) -> dict | None:
    """Train (as one rank of several under torchrun); the summary, on rank 0 only."""
    from ..train.distributed import joined
    from ..train.run import train as train_model

    epochs = overrides.get(("train", "epochs")) if resume else None
    with (
        joined(backend) as world,
        stop_on_signals(quiet=not world.is_main) as (should_stop, signals),
        tensorboard_logger(tensorboard if world.is_main else None) as board,
        Bar("steps", enabled=world.is_main) as bar,
    ):
        # within the world: a rank whose config is bad stops the others, which name it
        cfg = world.together(lambda: None if resume else load_config_or_default(config, overrides))
        # read once training runs: by then a resumed run's checkpoint has been checked
        total = functools.cache(lambda: epochs or total_epochs(cfg, out))

        def on_epoch(r) -> None:
            bar.log(format_epoch(r, total()))
            board(r)

        def on_step(epoch: int, step: int, steps: int) -> None:
            signals.started()
            bar.update(step, steps, f"epoch {epoch}/{total()}")

        summary = train_model(
            data,
            out,
            cfg,
            resume=resume,
            log=bar.log,
            on_read=lambda done, total: bar.update(done >> 20, total >> 20, "vectors", "MiB"),
            on_epoch=on_epoch,
            on_step=on_step,
            should_stop=should_stop,
            epochs=epochs,
            world=world,
        )
    return summary if world.is_main else None


def total_epochs(cfg, out: Path) -> int:
    """Epochs of the run (from the checkpoint's config when resuming)."""
    if cfg is not None:
        return cfg.train.epochs
    from ..train.checkpoint import read_state

    return read_state(out)["config"]["train"]["epochs"]


@app.command("train")
def train_cli(
    data: Annotated[
        Path, typer.Option("--data", help="Prepared data directory (from `classify prepare`).")
    ] = DEFAULT_DATA,
    out: Annotated[Path, typer.Option("--out", help="Run directory for the model bundle and metrics.")] = DEFAULT_RUN,
    config: Annotated[Path | None, typer.Option("--config", help="TOML config (default: configs/agnews.toml).")] = None,
    device: Annotated[
        str | None, typer.Option("--device", metavar="DEVICE", help="auto, cpu, cuda or mps (overrides train.device).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (overrides train.seed).")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Number of epochs (overrides train.epochs).")] = None,
    lr: Annotated[
        float | None,
        typer.Option("--lr", help='Learning rate (overrides train.lr; with batch_size "auto", the rate at batch 64).'),
    ] = None,
    vectors: Annotated[
        Path | None,
        typer.Option(
            "--vectors",
            help="Pretrained word vectors to start from: GloVe or .vec text (maybe .gz), word2vec .bin "
            "(overrides model.vectors).",
            show_default=False,
        ),
    ] = None,
    vectors_vocab: Annotated[
        str | None,
        typer.Option(
            "--vectors-vocab",
            metavar="train|all|N",
            help="Words never seen in training that keep their vectors: none, all, or those among the "
            "file's first N (overrides model.vectors_vocab).",
            show_default=False,
        ),
    ] = None,
    overrides: Overrides = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="Continue the interrupted run in this directory (its config and data; --epochs N may extend it).",
            show_default=False,
        ),
    ] = None,
    tensorboard: Annotated[
        Path | None,
        typer.Option(
            "--tensorboard", help="Log per-epoch scalars to this TensorBoard log directory.", show_default=False
        ),
    ] = None,
    fmt: Annotated[
        Format | None,
        typer.Option("--format", help="How to end: text, or one JSON line [default: text on a terminal, else json]."),
    ] = None,
    backend: Annotated[
        Backend,
        typer.Option("--backend", help="Under torchrun: how ranks talk (auto: NCCL for CUDA tensors, else gloo)."),
    ] = "auto",
    debug: Debug = False,
) -> None:
    """Train the classifier on prepared data.

    EmbeddingBag + Linear, SGD with StepLR and gradient clipping. The epoch with the lowest
    validation loss is saved. On a terminal it ends with a summary, otherwise (or with
    --format json) with one JSON line. Ctrl-C or SIGTERM saves a checkpoint at the next step;
    `--resume RUN_DIR` continues it.

    \b
    Examples:
      classify train --data data/ag_news --out runs/ag_news
      classify train --data data/news --out runs/news --epochs 5 --set model.ngrams=3
      classify train --data data/few --out runs/few --vectors glove.6B.50d.txt
      torchrun --standalone --nproc-per-node 2 -m classify_cli train --data data/ag_news --out runs/ag_news
    """
    extra = run(parse_overrides, overrides, debug=debug)
    for key, value in (("device", device), ("seed", seed), ("epochs", epochs), ("lr", lr)):
        if value is not None:
            extra[("train", key)] = value
    if vectors is not None:
        extra[("model", "vectors")] = str(vectors)
    if vectors_vocab is not None:
        extra[("model", "vectors_vocab")] = int(vectors_vocab) if vectors_vocab.isdigit() else vectors_vocab
    if resume is not None:
        if set(extra) - {("train", "epochs")} or config is not None:
            err(
                "error: --resume continues with the checkpoint's own config (--epochs N alone may change): "
                "drop --config/--set/--seed/..."
            )
            raise typer.Exit(2)
        out = resume
    summary = run(train, data, out, config, extra, resume is not None, tensorboard, str(backend), debug=debug)
    if summary is None:  # a rank other than 0: rank 0 reports
        return
    if (fmt or (Format.text if sys.stdout.isatty() else Format.json)) is Format.json:
        print(json.dumps(summary))
    else:
        print(describe_run(summary))


def describe_run(summary: dict) -> str:
    """The end of a run, for a person: what was kept, where, and what to do next."""
    model = shlex.quote(summary["out"])
    stopped = summary["epochs_run"] < summary["epochs"]
    name = next(name for name in SCORES if name in summary)
    since = "no lower validation loss" if name == "val_accuracy" else "no higher validation micro-F1"
    return (
        f"best epoch {summary['best_epoch']} of {summary['epochs_run']}"
        + (f" (stopped early: {since} since)" if stopped else "")
        + f": validation {SCORES[name][1]} {summary[name]:.4f}, loss {summary['val_loss']:.4f}"
        + (f", threshold {summary['decision']['threshold']}" if "decision" in summary else "")
        + f" ({summary['seconds']:.1f} s)\n"
        + f"saved to {summary['out']}\n"
        + "next:\n"
        + f"  classify evaluate --model {model}\n"
        + f'  classify predict --model {model} "some text"'
    )
