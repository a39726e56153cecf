"""Labeling a few texts without numpy, for ``predict TEXT``: ``prediction.label_columns``'s decision
over ``PlainHead``'s logits, in plain Python, and the same records, table and JSON object.

The logits are numpy's to the bit; the probabilities too but where ``math.exp`` and numpy's
exp differ in their last bit, which the 6 digits printed never show (tests/test_plain_head.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from ..model.plain_head import PlainHead, pairwise_sum
from .prediction import NO_KNOWN_TOKENS, OUTPUTS, Labeled, Options, records_of

# the most text labeled here: plain Python takes 3-6 ms per 1,000 characters, importing numpy 60-70 ms
MAX_CHARS = 10_000


def applies(texts: Sequence[str], fmt: str, explain: bool) -> bool:
    """Whether ``predict`` labels ``texts`` here: a few of them, as a table or one JSON object,
    without explanations (the other outputs are formatted with numpy)."""
    shown_here = fmt == "table" or (fmt == "json" and len(texts) == 1)
    return shown_here and not explain and sum(map(len, texts)) <= MAX_CHARS


class Rows(list):
    """Rows of numbers where ``Labeled`` holds numpy arrays: the records read them with ``tolist``."""

    def tolist(self) -> list[list]:
        return [list(row) for row in self]


def softmax(logits: Sequence[float]) -> list[float]:
    """``inference.softmax`` of one row, in float64: the same shift, and the same sum (numpy's order)."""
    top = max(logits)
    exp = [math.exp(x - top) for x in logits]
    total = pairwise_sum(exp, float)
    return [e / total for e in exp]


def label_columns(head: PlainHead, texts: Sequence[str], opts: Options) -> Labeled:
    """``prediction.label_columns``: the top k labels, their probabilities rounded as ``np.round(p, 6)``
    (``round(p * 1e6) / 1e6``: the same multiply, half-to-even and divide), and why a text abstains."""
    k = max(1, min(opts.k, len(head.labels)))
    logits, known = head.score(texts)
    below = f"confidence below {opts.min_confidence:g}"
    tops, top_probs, abstained = Rows(), Rows(), []
    for row, n_known in zip(logits, known, strict=True):
        probs = softmax(row)
        top = sorted(range(len(probs)), key=lambda j: -probs[j])[:k]  # stable, as argsort(kind="stable")
        tops.append(top)
        top_probs.append([round(probs[j] * 1e6) / 1e6 for j in top])
        abstained.append(NO_KNOWN_TOKENS if n_known == 0 else below if top_probs[-1][0] < opts.min_confidence else None)
    return Labeled(list(texts), tops, top_probs, abstained)


def write_few(run_dir: Path, texts: Sequence[str], k: int, min_confidence: float, fmt: str, out: IO[str]) -> None:
    """Label ``texts`` with the model in ``run_dir`` and write them as ``predict`` does: a table,
    or (``json``, one text) one object."""
    head = PlainHead(run_dir)
    opts = Options(k=min(k, len(head.labels)), min_confidence=min_confidence)
    batch = label_columns(head, texts, opts)
    if fmt == "json":
        (record,) = records_of(batch, head, opts)  # type: ignore[arg-type]
        out.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
        return
    output = OUTPUTS[fmt]
    out.write(output.head(head, opts) + output.batch(batch, head, opts) + output.tail)  # type: ignore[arg-type]
    out.flush()
