from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..errors import BundleError, InputError
from ._util import DEFAULT_RUN, Debug, ModelDir, TextFields, app, column_overrides, run, shown


class OutFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


class InFormat(StrEnum):
    auto = "auto"
    lines = "lines"
    csv = "csv"
    jsonl = "jsonl"
    parquet = "parquet"


NUMBER_WIDTH = 13


class TableWriter:
    """Records as rows of a table with fixed column widths, written as each batch is done (a
    long file prints as it goes, in bounded memory, and still lines up as one table). With
    explain, each text's features follow it, their contributions to the logit in a column of
    their own. Plain text, no Rich layout: a million rows take seconds, not minutes."""

    def __init__(self, labels: list[str], explain: bool, out=sys.stdout):
        from rich.cells import cell_len

        self.out, self.explain = out, explain
        self.numbers = ["probability"] + (["contribution"] if explain else [])
        self.label_width = max(cell_len(shown(label)) for label in labels) + len("(: abstained)")
        spare = shutil.get_terminal_size().columns - self.label_width - (NUMBER_WIDTH + 3) * len(self.numbers) - 3
        self.text_width = max(20, min(60, spare))
        self.started = False

    def _line(self, text: str, label: str, *numbers: str) -> str:
        from rich.cells import cell_len, set_cell_size

        if cell_len(text) > self.text_width:  # wide characters (CJK) count twice
            text = set_cell_size(text, self.text_width - 3) + "..."
        cells = [set_cell_size(text, self.text_width), set_cell_size(label, self.label_width)]
        return "   ".join([*cells, *(n.rjust(NUMBER_WIDTH) for n in numbers)]).rstrip() + "\n"

    def write(self, records: list[dict]) -> None:
        lines = []
        if not self.started:
            header = self._line("text", "label", *self.numbers)
            lines += [header, "─" * (len(header) - 1) + "\n"]
            self.started = True
        blank = [""] if self.explain else []
        for r in records:
            for i, t in enumerate(r["top"]):
                label = shown(t["label"]) if i or r["label"] is not None else f"({shown(t['label'])}: abstained)"
                lines.append(self._line(shown(r["text"]) if i == 0 else "", label, f"{t['probability']:.4f}", *blank))
            for e in r.get("explain", []):
                lines.append(self._line(f"  + {shown(e['feature'])}", "", "", f"{e['contribution']:+.4f}"))
        self.out.write("".join(lines))


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
    if explain and fmt is OutFormat.csv:
        raise InputError("--explain is shown in table, json and jsonl output; CSV has no place for it")
    # a few texts touch a few rows: reading the whole file for its checksum would cost more
    bundle = load_bundle(model, verify=bool(file))
    predictor = Predictor(bundle)
    opts = Options(k=min(k, len(predictor.labels)), min_confidence=min_confidence, explain=explain)
    source: Iterable[str] = texts
    if file:
        columns = {**(bundle.meta.get("prepare") or {}), **column_overrides(text_fields, None)}
        source = read_texts(file, input_format.value, PrepareConfig(**columns))
    out = sys.stdout
    if fmt is OutFormat.table or (fmt is OutFormat.json and not file and len(texts) == 1):
        try:
            table = TableWriter(predictor.labels, explain, out)
            for batch in label_stream(predictor, source, opts):  # printed as each batch is done
                if fmt is OutFormat.table:
                    table.write(batch)
                else:
                    out.write(json.dumps(batch[0], ensure_ascii=False) + "\n")
        except (IndexError, ValueError) as exc:  # only an unverified (TEXT) load gets here with such a file
            raise BundleError(
                f"{model}: the model file's data is inconsistent (modified?); `classify evaluate` verifies it"
            ) from exc
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
            help="For --file: lines, csv, jsonl (JSON lines or a JSON array), parquet; auto picks by suffix.",
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
    text_fields: TextFields = None,
    debug: Debug = False,
) -> None:
    """Label text: the most likely label and its probability.

    The top k with -k. A text with no known tokens, or below --min-confidence, gets no label
    (abstains).

    \b
    Examples:
      classify predict --model runs/ag_news "Stocks rally as the Fed holds rates"
      classify predict --file texts.txt --format jsonl > labels.jsonl
    """
    run(predict, model, texts or [], file, input_format, fmt, k, min_confidence, explain, text_fields, debug=debug)
