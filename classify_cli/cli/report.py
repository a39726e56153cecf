from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._util import DEFAULT_RUN, Debug, app, err, run


@app.command("report")
def report_cli(
    run_dir: Annotated[
        Path | None,
        typer.Argument(help=f"Run directory of a trained model [default: {DEFAULT_RUN}].", show_default=False),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Data for the confusion matrix [default: as evaluate].", show_default=False),
    ] = None,
    history: Annotated[
        str | None,
        typer.Option(
            "--history",
            metavar="DIR_OR_GLOB",
            help="Instead of a run: draw each metric of the reports `evaluate --output` wrote (a directory's "
            "*.json, or a quoted glob) over time, with the days that failed a threshold marked, and write "
            "history-METRIC.png and history.html.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Where to write the pictures [default: RUN_DIR; with --history, the directory of the reports].",
            show_default=False,
        ),
    ] = None,
    debug: Debug = False,
) -> None:
    """Draw PNGs of a run, or of evaluate reports over time.

    A run's: learning curves and a confusion matrix (per-label scores for a model of
    several labels per text). With --history: each metric of the reports `evaluate
    --output` wrote, by day, failed days marked, and an HTML page of them.
    Needs matplotlib (pip install matplotlib).

    \b
    Examples:
      classify report runs/ag_news --out runs/ag_news
      classify report --history /srv/reports --out /srv/www/classifier
    """
    from ..serve.report import write_pictures

    if run_dir is None and history is None:
        run_dir = DEFAULT_RUN
    for path in run(write_pictures, run_dir, out, data, history, err, debug=debug):
        print(path)
