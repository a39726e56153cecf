"""Labeling a few texts without numpy, for ``predict TEXT``: ``prediction.label_columns``'s decision
over ``PlainHead``'s logits, in plain Python, and the same records, table and JSON object.

The logits are numpy's to the bit; the probabilities too but where ``math.exp`` and numpy's
exp differ in their last bit, which the 6 digits printed never show (tests/test_plain_head.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from ..model.plain_head import PlainHead
from .prediction import OUTPUTS, Labeled, Options, records_of

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


def label_columns(head: PlainHead, texts: Sequence[str], opts: Options) -> Labeled:
    """``prediction.label_columns`` as the model's task decides it, one text at a time."""
    logits, known = head.score(texts)
    tops, top_probs, abstained, chosen = Rows(), Rows(), [], []
    for row, n_known in zip(logits, known, strict=True):
        top, probs, why, mine = head.task.plain_decide(
            head.task.plain_probabilities(row), n_known, opts.k, opts.min_confidence
        )
        tops.append(top)
        top_probs.append(probs)
        abstained.append(why)
        chosen.append(mine)
    return Labeled(list(texts), tops, top_probs, abstained, chosen=None if None in chosen else chosen)


def write_few(
    run_dir: Path,
    texts: Sequence[str],
    k: int,
    min_confidence: float,
    fmt: str,
    out: IO[str],
    rule: Callable = lambda task: task,
) -> None:
    """Label ``texts`` with the model in ``run_dir`` and write them as ``predict`` does: a table,
    or (``json``, one text) one object. ``rule`` gives the task its decision rule (``--threshold``)."""
    head = PlainHead(run_dir)
    head.task = rule(head.task)
    opts = Options(k=min(k, len(head.labels)), min_confidence=min_confidence)
    batch = label_columns(head, texts, opts)
    if fmt == "json":
        (record,) = records_of(batch, head, opts)  # type: ignore[arg-type]
        out.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
        return
    output = OUTPUTS[fmt]
    out.write(output.head(head, opts) + output.batch(batch, head, opts) + output.tail)  # type: ignore[arg-type]
    out.flush()
