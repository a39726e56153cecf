from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..util.display import byte_sizes
from ._util import DEFAULT_RUN, Debug, ModelDir, app, err, run

DEFAULT_MAX_FEATURES = 75_000  # about 3.5 MB at int8, however large the vocabulary


class Dtype(StrEnum):
    float32 = "float32"
    float16 = "float16"
    int8 = "int8"


@app.command("compress")
def compress_cli(
    out: Annotated[Path, typer.Option("--out", help="Directory for the compressed model (a new bundle).")],
    model: ModelDir = DEFAULT_RUN,
    max_features: Annotated[
        int, typer.Option("--max-features", help="Keep this many features (words and n-grams) with the largest rows.")
    ] = DEFAULT_MAX_FEATURES,
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
    Example:
      classify compress --model runs/ag_news --out runs/ag_news-small
    """
    from ..train.compress import compress

    summary = run(compress, model, out, max_features, dtype.value, data, debug=debug)
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
