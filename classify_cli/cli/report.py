from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._util import DEFAULT_RUN, Debug, app, run


@app.command("report")
def report_cli(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of a trained model.")] = DEFAULT_RUN,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Data for the confusion matrix [default: as evaluate].", show_default=False),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Where to write the PNGs [default: RUN_DIR].", show_default=False)
    ] = None,
    debug: Debug = False,
) -> None:
    """Draw learning curves and a confusion matrix as PNGs.

    Needs matplotlib (pip install matplotlib).

    \b
    Example:
      classify report runs/ag_news --out runs/ag_news
    """
    from ..report import write_report

    for path in run(write_report, run_dir, out, data, debug=debug):
        print(path)
