from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..inputs.sources import DEFAULT_HUB_DATASET
from ..util.config import TASK_CHOICES
from ._util import (
    DEFAULT_DATA,
    Bar,
    Debug,
    LabelField,
    LabelSep,
    Overrides,
    TextFields,
    app,
    column_overrides,
    listed,
    load_config_or_default,
    parse_overrides,
    run,
    shown,
)

Task = StrEnum("Task", {name: name for name in TASK_CHOICES})


def prepare(source: str, out: Path, config: Path | None, overrides: list[str] | None, columns: dict) -> dict:
    from ..data.prepare import prepare_corpus
    from ..inputs.sources import open_source

    cfg = load_config_or_default(
        config, {**parse_overrides(overrides), **{("prepare", k): v for k, v in columns.items()}}
    )
    with Bar("rows", "reading") as bar:  # the source is opened once out is locked and checked
        return prepare_corpus(lambda: open_source(source, cfg.prepare), out, cfg.prepare, log=bar.log, tick=bar.advance)


@app.command("prepare")
def prepare_cli(
    source: Annotated[
        str,
        typer.Option(
            "--from",
            metavar="SOURCE",
            help="Hub dataset name, a CSV/JSONL/JSON/Parquet file, or a directory of train/validation/test files.",
        ),
    ] = DEFAULT_HUB_DATASET,
    out: Annotated[Path, typer.Option("--out", help="Directory to write the prepared splits to.")] = DEFAULT_DATA,
    config: Annotated[Path | None, typer.Option("--config", help="TOML config (default: configs/agnews.toml).")] = None,
    overrides: Overrides = None,
    text_fields: TextFields = None,
    label_field: LabelField = None,
    label_sep: LabelSep = None,
    task: Annotated[
        Task | None,
        typer.Option(
            "--task",
            help="single: one label per text; multi: a set of labels per text (possibly none); auto: multi when "
            "a label is a list or --label-sep is given [default: prepare.task].",
            show_default=False,
        ),
    ] = None,
    debug: Debug = False,
) -> None:
    """Split and tokenize a labeled corpus for training.

    Writes train/validation/test splits (carving the missing ones from train) and a
    vocabulary built from the train split alone.

    \b
    Examples:
      classify prepare --from data/ag_news_sample --out data/ag_news
      classify prepare --from news.csv --out data/news --set prepare.text_fields='["title","body"]'
      classify prepare --from tagged.csv --out data/tagged --label-field tags --label-sep "|"
    """
    columns = column_overrides(text_fields, label_field, label_sep) | ({"task": task.value} if task else {})
    manifest = run(prepare, source, out, config, overrides, columns, debug=debug)
    rows = ", ".join(f"{name} {info['rows']:,}" for name, info in manifest["splits"].items())
    several = " (several per text)" if manifest.get("task") == "multi_label" else ""
    print(
        f"{shown(out)}: {rows} rows; vocabulary {manifest['vocab_size']:,}; labels{several} {listed(manifest['labels'])}"
    )
