from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..inputs.readers import FORMATS
from ..serve.prediction import OUTPUTS
from ..util.errors import BundleError, InputError
from ._util import DEFAULT_RUN, Bar, Debug, ModelDir, TextFields, app, column_overrides, run

# --format's choices: every output prediction.OUTPUTS has; --input-format's: auto, then readers.FORMATS
OutFormat = StrEnum("OutFormat", [(name, name) for name in OUTPUTS])

InFormat = StrEnum("InFormat", [("auto", "auto"), *((name, name) for name in FORMATS)])
IN_FORMAT_HELP = "For --file: " + "; ".join(f"{name}: {f.help}" for name, f in FORMATS.items())


def predict(
    model: Path,
    texts: list[str],
    file: str | None,
    input_format: InFormat,
    fmt: OutFormat,
    k: int,
    min_confidence: float,
    explain: bool,
    text_fields: list[str] | None = None,
    id_field: str | None = None,
    threshold: float | None = None,
    min_labels: int | None = None,
) -> None:
    """Label the texts (arguments, or a file streamed in batches) and write them to stdout."""
    from ..serve import plain_labels
    from ..serve.api import apply_rule, check_options

    if not file and (texts == ["-"] or (not texts and sys.stdin is not None and not sys.stdin.isatty())):
        # `-`, or a pipe and no TEXT: stdin, one text per line, as `--file -` and Unix tools read it
        texts, file = [], "-"
    if bool(texts) == bool(file):
        raise InputError("give either TEXT arguments or --file PATH (- for stdin)")
    try:
        check_options(k, min_confidence, ("-k", "--min-confidence"))
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc)) from None
    if id_field is not None and not file:
        raise InputError("--id-field names a column of --file's input")
    if explain and not OUTPUTS[fmt.value].explains:
        shown_in = ", ".join(name for name, o in OUTPUTS.items() if o.explains)
        raise InputError(f"--explain is shown in {shown_in} output; {fmt.value} has no place for it")

    def rule(task):  # --threshold and --min-labels, checked against the model's task
        try:
            names = ("--threshold", "--min-labels", "--min-confidence")
            return apply_rule(task, threshold, min_labels, names, min_confidence)
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc)) from None

    if not file and plain_labels.applies(texts, fmt.value, explain):
        # a few texts as a table or one object: plain Python reads their rows, no numpy to import
        try:
            plain_labels.write_few(model, texts, k, min_confidence, fmt.value, sys.stdout, rule)
        except (IndexError, ValueError) as exc:
            raise inconsistent(model) from exc
        return
    from ..model.bundle import load_bundle
    from ..model.inference import Predictor
    from ..serve.prediction import Options, label_stream, write_labels

    # a few texts touch a few rows: reading the whole file for its checksum would cost more
    bundle = load_bundle(model, verify=bool(file))
    predictor = Predictor(bundle)
    predictor.task = rule(predictor.task)
    opts = Options(
        k=min(k, len(predictor.labels)), min_confidence=min_confidence, explain=explain, ids=id_field is not None
    )
    source: Iterable[str] = texts
    if file:
        from ..inputs.sources import read_texts
        from ..util.config import PrepareConfig

        columns = {**(bundle.meta.get("prepare") or {}), **column_overrides(text_fields, None)}
        source = read_texts(file, input_format.value, PrepareConfig(**columns), id_field)
    if fmt is OutFormat.json and not file and len(texts) == 1:  # one text: one object, not a list
        _, (record,) = next(label_stream(predictor, source, opts))
        sys.stdout.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
        return
    try:
        with Bar("texts", "labeling", enabled=bool(file)) as bar:  # a few TEXT arguments need none
            write_labels(predictor, source, opts, fmt.value, sys.stdout, bar.advance)
    except (IndexError, ValueError) as exc:  # only an unverified (TEXT) load gets here with such a file
        raise inconsistent(model) from exc


def inconsistent(model: Path) -> BundleError:
    return BundleError(f"{model}: the model file's data is inconsistent (modified?); `classify evaluate` verifies it")


@app.command("predict")
def predict_cli(
    texts: Annotated[
        list[str] | None, typer.Argument(help="Text(s) to label.", metavar="TEXT", show_default=False)
    ] = None,
    model: ModelDir = DEFAULT_RUN,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            "-f",
            metavar="PATH",
            help="Label every text of a file (- for stdin), streamed in batches.",
            show_default=False,
        ),
    ] = None,
    input_format: Annotated[
        InFormat,
        typer.Option(
            "--input-format",
            help=IN_FORMAT_HELP + "; auto picks by suffix (lines for stdin and other suffixes).",
        ),
    ] = InFormat.auto,
    fmt: Annotated[OutFormat, typer.Option("--format", help="Output format.")] = OutFormat.table,
    k: Annotated[int, typer.Option("-k", "--top-k", min=1, metavar="K", help="Show the k most likely labels.")] = 1,
    min_confidence: Annotated[
        float, typer.Option("--min-confidence", help="Abstain (no label) below this probability.")
    ] = 0.0,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show the tokens and n-grams that pushed the decision most.")
    ] = False,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            metavar="P",
            help="Several labels per text: give each label of probability >= P (0 to 1) [default: the model's, "
            "chosen on validation].",
            show_default=False,
        ),
    ] = None,
    min_labels: Annotated[
        int | None,
        typer.Option(
            "--min-labels",
            metavar="N",
            help="Several labels per text: at least the N most likely, even below the threshold [default: 0].",
            show_default=False,
        ),
    ] = None,
    text_fields: TextFields = None,
    id_field: Annotated[
        str | None,
        typer.Option(
            "--id-field",
            metavar="NAME",
            help="Column carried into every record as its id (first field; in the table, before the text).",
            show_default=False,
        ),
    ] = None,
    debug: Debug = False,
) -> None:
    """Label text: the most likely label(s), with probabilities.

    TEXT "-", or no TEXT with stdin a pipe, reads stdin (one text per line). The top k with
    -k. A text with no known tokens, or below --min-confidence, gets no label (abstains).

    \b
    Examples:
      classify predict --model runs/ag_news "Stocks rally as the Fed holds rates"
      classify predict --file texts.txt --format jsonl > labels.jsonl
      cut -f2 titles.tsv | classify predict --format csv
    """
    run(
        predict,
        model,
        texts or [],
        file,
        input_format,
        fmt,
        k,
        min_confidence,
        explain,
        text_fields,
        id_field,
        threshold,
        min_labels,
        debug=debug,
    )
