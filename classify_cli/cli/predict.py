from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..errors import BundleError, InputError
from ._util import DEFAULT_RUN, Debug, ModelDir, app, plain_console, run, shown


class OutFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


class InFormat(str, Enum):
    auto = "auto"
    lines = "lines"
    csv = "csv"
    jsonl = "jsonl"
    parquet = "parquet"


def render_table(records: list[dict]) -> None:
    from rich.table import Table

    table = Table("text", "label", "probability")
    for r in records:
        text = shown(r["text"] if len(r["text"]) <= 60 else r["text"][:57] + "...")
        for i, t in enumerate(r["top"]):
            label = shown(t["label"]) if i or r["label"] is not None else f"({shown(t['label'])}: abstained)"
            table.add_row(text if i == 0 else "", label, f"{t['probability']:.4f}")
        for e in r.get("explain", []):
            table.add_row("", f"  because: {shown(e['feature'])}", f"{e['contribution']:+.4f}")
    plain_console().print(table)


def predict(
    model: Path,
    texts: list[str],
    file: str | None,
    input_format: InFormat,
    fmt: OutFormat,
    k: int,
    min_confidence: float,
    explain: bool,
) -> None:
    """Label the texts (arguments, or a file streamed in batches) and write them to stdout."""
    from ..bundle import load_bundle
    from ..config import PrepareConfig
    from ..inference import Predictor
    from ..prediction import Options, csv_header, label_stream
    from ..sources import read_texts

    if bool(texts) == bool(file):
        raise InputError("give either TEXT arguments or --file PATH (- for stdin)")
    if not 0.0 <= min_confidence <= 1.0:
        raise InputError("--min-confidence must be between 0 and 1")
    # a few texts touch a few rows: reading the whole file for its checksum would cost more
    bundle = load_bundle(model, verify=bool(file))
    predictor = Predictor(bundle)
    opts = Options(k=min(k, len(predictor.labels)), min_confidence=min_confidence, explain=explain)
    source: Iterable[str] = texts
    if file:
        source = read_texts(file, input_format.value, PrepareConfig(**(bundle.meta.get("prepare") or {})))
    out = sys.stdout
    if fmt is OutFormat.table or (fmt is OutFormat.json and not file and len(texts) == 1):
        try:
            records = [r for batch in label_stream(predictor, source, opts) for r in batch]
        except (IndexError, ValueError) as exc:  # only an unverified (TEXT) load gets here with such a file
            raise BundleError(
                f"{model}: the model file's data is inconsistent (modified?); `classify evaluate` verifies it"
            ) from exc
        if fmt is OutFormat.table:
            render_table(records)
        else:
            out.write(json.dumps(records[0], ensure_ascii=False) + "\n")
        return
    # streaming formats: formatted by the workers, written here as each batch comes back;
    # nothing (not even the CSV header) before the first batch, so an input refused at its
    # start (empty, malformed) leaves stdout empty
    first = True
    for chunk in label_stream(predictor, source, opts, fmt.value):
        if fmt is OutFormat.json:
            out.write(("[" if first else ",\n") + chunk)
        elif fmt is OutFormat.csv and first:
            out.write(",".join(csv_header(opts.k)) + "\n" + chunk)
        else:
            out.write(chunk)
        first = False
    if fmt is OutFormat.json:
        out.write("[]\n" if first else "]\n")
    out.flush()


@app.command("predict")
def predict_cli(
    texts: Annotated[list[str] | None, typer.Argument(help="Text(s) to label.", show_default=False)] = None,
    model: ModelDir = DEFAULT_RUN,
    file: Annotated[
        str | None,
        typer.Option(
            "--file", "-f", help="Label every text of a file (- for stdin), streamed in batches.", show_default=False
        ),
    ] = None,
    input_format: Annotated[
        InFormat,
        typer.Option(
            "--input-format",
            help="For --file: lines, csv, jsonl (JSON lines or a JSON array), parquet; auto picks by suffix.",
        ),
    ] = InFormat.auto,
    fmt: Annotated[OutFormat, typer.Option("--format", help="Output format.")] = OutFormat.table,
    k: Annotated[int, typer.Option("-k", "--top-k", min=1, help="Show the k most likely labels.")] = 1,
    min_confidence: Annotated[
        float, typer.Option("--min-confidence", help="Abstain (no label) below this probability.")
    ] = 0.0,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show the tokens and n-grams that pushed the decision most.")
    ] = False,
    debug: Debug = False,
) -> None:
    """Label text: the most likely label and its probability (top k with -k).

    A text with no known tokens, or below --min-confidence, gets no label (abstains).
    """
    run(predict, model, texts or [], file, input_format, fmt, k, min_confidence, explain, debug=debug)
