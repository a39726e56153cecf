"""Labeling texts in bulk: records with top-k probabilities, abstentions and explanations,
formatted as JSON lines or CSV in the worker processes (formatting costs as much as scoring)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import numpy as np

from .inference import Predictor, softmax
from .parallel import parallel_map

BATCH = 4096  # texts read, scored and written at a time: memory stays bounded for any input size


@dataclass(frozen=True)
class Options:
    k: int = 1
    min_confidence: float = 0.0
    explain: bool = False


def label_batch(predictor: Predictor, texts: list[str], opts: Options) -> list[dict]:
    """One record per text: label (None when abstaining), probability, top k, explanation."""
    labels = predictor.labels
    k = max(1, min(opts.k, len(labels)))
    scored = predictor.score(texts)
    probs = softmax(scored.logits.astype(np.float64))
    tops = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    records = []
    for i, text in enumerate(texts):
        top = tops[i]
        best = float(probs[i, top[0]])
        record = {
            "text": text,
            "label": labels[top[0]],
            "probability": round(best, 6),
            "top": [{"label": labels[j], "probability": round(float(probs[i, j]), 6)} for j in top],
        }
        if scored.known[i] == 0 or best < opts.min_confidence:
            record["label"] = None
            record["abstained"] = (
                "no known tokens" if scored.known[i] == 0 else f"confidence below {opts.min_confidence:g}"
            )
        if opts.explain:
            record["explain"] = [{"feature": f, "contribution": round(c, 6)} for f, c in predictor.explain(text, top=5)]
        records.append(record)
    return records


def csv_header(k: int) -> list[str]:
    head = ["label", "probability"]
    for i in range(2, k + 1):
        head += [f"label_{i}", f"probability_{i}"]
    return [*head, "text"]


def format_records(records: list[dict], fmt: str) -> str:
    """``jsonl``: one object per line; ``json``: list items joined by commas; ``csv``: rows."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for r in records:
            cells = [r["label"] or "", r["probability"]]
            for t in r["top"][1:]:
                cells += [t["label"], t["probability"]]
            writer.writerow([*cells, r["text"]])
        return buffer.getvalue()
    separator = "\n" if fmt == "jsonl" else ",\n"
    return separator.join(json.dumps(r, ensure_ascii=False) for r in records) + ("\n" if fmt == "jsonl" else "")


def _label_and_format(state: tuple[Predictor, Options, str | None], texts: list[str]):
    predictor, opts, fmt = state
    records = label_batch(predictor, texts, opts)
    return records if fmt is None else format_records(records, fmt)


def label_stream(
    predictor: Predictor, texts: Iterable[str], opts: Options, fmt: str | None = None
) -> Iterator[list[dict] | str]:
    """Batches of records (``fmt`` None) or of formatted text, in input order, labeled on every core."""
    it = iter(texts)
    batches = iter(lambda: list(islice(it, BATCH)), [])
    for _, out in parallel_map(_label_and_format, (predictor, opts, fmt), batches):
        yield out
