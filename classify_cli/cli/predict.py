from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator
from enum import Enum
from itertools import islice
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ._util import Debug, app, run

BATCH = 4096  # texts read, scored and written at a time: memory stays bounded for any input size


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


def predict_records(model: Path, texts: Iterable[str], k: int, min_confidence: float, explain: bool) -> Iterator[dict]:
    """One record per text: label (None when abstaining), probability, top k, explanation."""
    import numpy as np

    from ..bundle import load_bundle
    from ..inference import Predictor, score_batches, softmax

    predictor = Predictor(load_bundle(model))
    labels = predictor.labels
    k = max(1, min(k, len(labels)))
    it = iter(texts)
    batches = iter(lambda: list(islice(it, BATCH)), [])
    for batch, scored in score_batches(predictor, batches, lambda b: b):
        probs = softmax(scored.logits.astype(np.float64))
        empty = scored.known == 0
        for i, (text, p) in enumerate(zip(batch, probs, strict=True)):
            top = np.argsort(-p, kind="stable")[:k]
            best = float(p[top[0]])
            record = {
                "text": text,
                "label": labels[top[0]],
                "probability": round(best, 6),
                "top": [{"label": labels[j], "probability": round(float(p[j]), 6)} for j in top],
            }
            if empty[i] or best < min_confidence:
                record["label"] = None
                record["abstained"] = "no known tokens" if empty[i] else f"confidence below {min_confidence:g}"
            if explain:
                record["explain"] = [
                    {"feature": f, "contribution": round(c, 6)} for f, c in predictor.explain(text, top=5)
                ]
            yield record


class Writer:
    """Writes records to stdout as they come, in one of the output formats."""

    def __init__(self, fmt: OutFormat, k: int, single: bool):
        self.fmt, self.k, self.single, self.count = fmt, k, single, 0
        self.rows: list[dict] = []
        self.csv = csv.writer(sys.stdout, lineterminator="\n") if fmt is OutFormat.csv else None

    def write(self, record: dict) -> None:
        fmt = self.fmt
        if fmt is OutFormat.jsonl:
            print(json.dumps(record, ensure_ascii=False))
        elif fmt is OutFormat.json:
            if not self.single:
                print(("[" if self.count == 0 else ",") + json.dumps(record, ensure_ascii=False))
            else:
                self.rows.append(record)
        elif fmt is OutFormat.csv:
            if self.count == 0:
                head = ["label", "probability"]
                for i in range(2, self.k + 1):
                    head += [f"label_{i}", f"probability_{i}"]
                self.csv.writerow([*head, "text"])
            cells = [record["label"] or "", record["probability"]]
            for t in record["top"][1:]:
                cells += [t["label"], t["probability"]]
            self.csv.writerow([*cells, record["text"]])
        else:
            self.rows.append(record)
        self.count += 1

    def close(self) -> None:
        if self.fmt is OutFormat.json:
            if self.single:
                print(json.dumps(self.rows[0], ensure_ascii=False))
            else:
                print("[]" if self.count == 0 else "]")
        elif self.fmt is OutFormat.table:
            render_table(self.rows)
        sys.stdout.flush()


def render_table(records: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("text", "label", "probability")
    for r in records:
        shown = r["text"] if len(r["text"]) <= 60 else r["text"][:57] + "..."
        for i, t in enumerate(r["top"]):
            label = t["label"] if i or r["label"] is not None else f"({t['label']}: abstained)"
            table.add_row(shown if i == 0 else "", label, f"{t['probability']:.4f}")
        for e in r.get("explain", []):
            table.add_row("", f"  because: {e['feature']}", f"{e['contribution']:+.4f}")
    Console().print(table)


def predict(
    model: Path,
    texts: list[str],
    file: str | None,
    input_format: InFormat,
    fmt: OutFormat,
    k: int,
    min_confidence: float,
    explain: bool,
) -> int:
    """Label the texts (arguments, or a file streamed in batches) and write them to stdout."""
    from ..bundle import read_meta
    from ..config import PrepareConfig
    from ..sources import read_texts

    if bool(texts) == bool(file):
        raise InputError("give either TEXT arguments or --file PATH (- for stdin)")
    if not 0.0 <= min_confidence <= 1.0:
        raise InputError("--min-confidence must be between 0 and 1")
    if file:
        prepare_cfg = PrepareConfig(**(read_meta(model).get("prepare") or {}))
        source: Iterable[str] = read_texts(file, input_format.value, prepare_cfg)
    else:
        source = texts
    writer = Writer(fmt, k, single=file is None and len(texts) == 1)
    for record in predict_records(model, source, k, min_confidence, explain):
        writer.write(record)
    writer.close()
    return writer.count


@app.command("predict")
def predict_cli(
    texts: Annotated[list[str] | None, typer.Argument(help="Text(s) to label.", show_default=False)] = None,
    model: Annotated[Path, typer.Option("--model", help="Run directory holding the trained model.")] = Path(
        "runs/ag_news"
    ),
    file: Annotated[
        str | None,
        typer.Option(
            "--file", "-f", help="Label every text of a file (- for stdin), streamed in batches.", show_default=False
        ),
    ] = None,
    input_format: Annotated[
        InFormat, typer.Option("--input-format", help="For --file: lines, csv, jsonl; auto picks by suffix.")
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
