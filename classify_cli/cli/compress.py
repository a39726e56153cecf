from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..util.display import byte_sizes
from ._util import DEFAULT_RUN, Debug, ModelDir, app, err, run


class Dtype(StrEnum):
    float32 = "float32"
    float16 = "float16"
    int8 = "int8"


@app.command("compress")
def compress_cli(
    out: Annotated[Path, typer.Option("--out", help="Directory for the compressed model (a new bundle).")],
    model: ModelDir = DEFAULT_RUN,
    max_features: Annotated[
        int | None,
        typer.Option(
            "--max-features",
            help="Keep this many features (words and n-grams) with the largest rows [default: 75,000; "
            "not with --max-size].",
            show_default=False,
        ),
    ] = None,
    max_size: Annotated[
        str | None,
        typer.Option(
            "--max-size",
            help="Keep as many features as fit in this size (model.json and weights): bytes, or 500K, 1.6MB, 2MiB "
            "[not with --max-features].",
            show_default=False,
        ),
    ] = None,
    dtype: Annotated[Dtype, typer.Option("--dtype", help="How the class-score table is stored.")] = Dtype.int8,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="Prepared data for the validation accuracy [default: the model's].", show_default=False
        ),
    ] = None,
    debug: Debug = False,
) -> None:
    """Write a small copy of a model, for deployment.

    Like fastText's `quantize -cutoff`: keeps the features whose class-score rows are largest and quantizes the table; prints
    the sizes and the validation accuracy before and after as JSON.

    \b
    Examples:
      classify compress --model runs/ag_news --out runs/ag_news-small
      classify compress --model runs/ag_news --out runs/ag_news-1mb --max-size 1MB
    """
    from ..train.compress import compress
    from ..util.display import parse_size

    def compress_to(max_size: str | None) -> dict:
        max_bytes = None if max_size is None else parse_size(max_size)
        return compress(model, out, max_features, dtype.value, data, max_bytes)

    summary = run(compress_to, max_size, debug=debug)
    before, after = summary["bytes"]["before"], summary["bytes"]["after"]
    name, acc = next(((k, v) for k, v in summary.items() if k.startswith("validation_") and "before" in v), ("", None))
    line = "compressed {} -> {}".format(*byte_sizes(before, after))
    line += f", {summary['features']['after']:,} features"
    if acc:
        line += f"; {name.replace('_', ' ').replace('micro f1', 'micro-F1')} {acc['before']:.4f} -> {acc['after']:.4f}"
    else:
        line += "; the model's prepared data is gone, so no validation accuracy (pass --data)"
    err(line)
    print(json.dumps(summary))
