from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ._util import Debug, app, run
from .evaluate import Format


def predict(model: Path, texts: list[str], k: int) -> list[dict]:
    """Top-k labels with probabilities for each text (numpy only: no torch import)."""
    from ..bundle import load_bundle
    from ..inference import Predictor

    predictor = Predictor(load_bundle(model))
    probs = predictor.probabilities(texts)
    k = max(1, min(k, len(predictor.labels)))
    results = []
    for text, p in zip(texts, probs, strict=True):
        top = p.argsort()[::-1][:k]
        results.append(
            {
                "text": text,
                "label": predictor.labels[top[0]],
                "probability": round(float(p[top[0]]), 6),
                "top": [{"label": predictor.labels[i], "probability": round(float(p[i]), 6)} for i in top],
            }
        )
    return results


@app.command("predict")
def predict_cli(
    texts: Annotated[list[str], typer.Argument(help="Text(s) to label.")],
    model: Annotated[Path, typer.Option("--model", help="Run directory holding the trained model.")] = Path(
        "runs/ag_news"
    ),
    k: Annotated[int, typer.Option("-k", "--top-k", min=1, help="Show the k most likely labels.")] = 1,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    debug: Debug = False,
) -> None:
    """Label text: the most likely label and its probability (top k with -k)."""
    results = run(predict, model, texts, k, debug=debug)
    if fmt is Format.json:
        payload = results[0] if len(results) == 1 else results
        print(json.dumps(payload, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("text", "label", "probability")
    for r in results:
        shown = r["text"] if len(r["text"]) <= 60 else r["text"][:57] + "..."
        for i, t in enumerate(r["top"]):
            table.add_row(shown if i == 0 else "", t["label"], f"{t['probability']:.4f}")
    Console().print(table)
