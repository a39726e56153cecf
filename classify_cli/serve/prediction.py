"""Labeling texts in bulk: records with top-k probabilities, abstentions and explanations,
formatted as JSON lines or CSV in the worker processes (formatting costs as much as scoring)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import TYPE_CHECKING

from ..model.task import NO_KNOWN_TOKENS
from ..util.display import FixedTable
from ..util.parallel import batches, parallel_map

if TYPE_CHECKING:  # numpy where it is used: predict's --help lists OUTPUTS without it
    import numpy as np

    from ..model.inference import Predictor

BATCH = 4096  # texts read, scored and written at a time: memory stays bounded for any input size


@dataclass(frozen=True)
class Options:
    k: int = 1
    min_confidence: float = 0.0
    explain: bool = False
    ids: bool = False  # the texts come as (text, id) pairs and every record carries its id


@dataclass
class Labeled:
    """A batch's predictions, column by column."""

    texts: list[str]
    tops: np.ndarray  # (n, k) label indices, most likely first
    top_probs: np.ndarray  # (n, k) their probabilities, rounded to 6 digits
    abstained: list[str | None]  # why a text gets no label, or None
    ids: list[str] | None = None  # each text's id (predict --id-field)
    chosen: list[list[tuple[int, float]]] | None = None  # a set of labels per text: (label, probability) each


def label_columns(predictor: Predictor, texts: list[str], opts: Options) -> Labeled:
    """The texts' labels as the model's task decides them."""
    scored = predictor.score(texts)
    decision = predictor.task.decide(
        predictor.task.probabilities(scored.logits), scored.known, opts.k, opts.min_confidence
    )
    return Labeled(texts, decision.tops, decision.top_probs, decision.abstained, chosen=decision.chosen)


def records_of(batch: Labeled, predictor: Predictor, opts: Options) -> list[dict]:
    labels = predictor.labels
    records = []
    chosen = batch.chosen or [None] * len(batch.texts)
    for text, top, probs, why, mine in zip(
        batch.texts, batch.tops.tolist(), batch.top_probs.tolist(), batch.abstained, chosen, strict=True
    ):
        record = {
            **({"id": batch.ids[len(records)]} if batch.ids is not None else {}),
            "text": text,
            **predictor.task.record(labels, top, probs, why, mine),
        }
        if opts.explain:  # nothing to explain where no feature is known: the bias alone decided
            if mine is None:
                reasons = [] if why == NO_KNOWN_TOKENS else predictor.explain(text, top[0], top=5)
                record["explain"] = _explained(reasons)
            else:  # each label the text gets, explained apart
                record["explain"] = {labels[j]: _explained(predictor.explain(text, j, top=5)) for j, _ in mine}
        records.append(record)
    return records


def _explained(reasons: list[tuple[str, float]]) -> list[dict]:
    return [{"feature": f, "contribution": round(c, 6)} for f, c in reasons]


def csv_header(k: int, ids: bool = False, several: bool = False) -> list[str]:
    """``label`` is the most likely label even when the text abstains (as the table shows it);
    ``abstained`` says why it is withheld, empty when it is not (JSON's ``label`` null). With a
    set of labels per text, ``labels`` and their ``probabilities`` (each joined by the
    training data's label separator) come first, and the top k as ``top_1`` .. ``top_k``."""
    head = ["id"] if ids else []
    if several:
        head += ["labels", "probabilities"]
        for i in range(1, k + 1):
            head += [f"top_{i}", f"probability_{i}"]
        return [*head, "abstained", "text"]
    head += ["label", "probability"]
    for i in range(2, k + 1):
        head += [f"label_{i}", f"probability_{i}"]
    return [*head, "abstained", "text"]


def csv_field(value: str) -> str:
    """One CSV field, quoted only where needed, as ``csv.writer`` writes it (but ``\r`` is always
    quoted) and several times faster than it on long texts."""
    if '"' in value:
        return '"' + value.replace('"', '""') + '"'
    if "," in value or "\n" in value or "\r" in value:
        return '"' + value + '"'
    return value


def csv_rows(batch: Labeled, labels: list[str], sep: str = "|") -> str:
    """CSV rows (``csv_header`` columns), built column-wise: no record objects on the way."""
    import numpy as np

    names = np.array([csv_field(label) for label in labels], dtype=object)
    columns = [map(csv_field, batch.ids)] if batch.ids is not None else []
    if batch.chosen is not None:
        columns.append([csv_field(sep.join(labels[j] for j, _ in mine)) for mine in batch.chosen])
        columns.append([csv_field(sep.join(repr(p) for _, p in mine)) for mine in batch.chosen])
    for j in range(batch.tops.shape[1]):
        columns += [names[batch.tops[:, j]].tolist(), map(repr, batch.top_probs[:, j].tolist())]
    abstained = (csv_field(why or "") for why in batch.abstained)
    lines = map(",".join, zip(*columns, abstained, map(csv_field, batch.texts), strict=True))
    return "".join(line + "\n" for line in lines)


def json_string(text: str) -> str:
    """``json.dumps(text, ensure_ascii=False)``; the ASCII encoder is faster and alike on ASCII
    but for DEL, which it escapes."""
    return encode_basestring_ascii(text) if text.isascii() and "\x7f" not in text else encode_basestring(text)


def json_rows(batch: Labeled, labels: list[str]) -> list[str]:
    """Each text's record as ``json.dumps`` writes it (``records_of``, without explanations),
    built from the columns: several times faster than making and dumping the dicts."""
    import numpy as np

    names = np.array([json_string(label) for label in labels], dtype=object)
    probs = [list(map(repr, batch.top_probs[:, j].tolist())) for j in range(batch.tops.shape[1])]
    ranked = [
        [
            f'{{"label": {name}, "probability": {p}}}'
            for name, p in zip(names[batch.tops[:, j]].tolist(), probs[j], strict=True)
        ]
        for j in range(batch.tops.shape[1])
    ]
    tops = ranked[0] if len(ranked) == 1 else list(map(", ".join, zip(*ranked, strict=True)))
    first = names[batch.tops[:, 0]].tolist()
    opening = ["{"] * len(first) if batch.ids is None else [f'{{"id": {json_string(i)}, ' for i in batch.ids]
    return [
        f'{start}"text": {json_string(text)}, "label": {label if why is None else "null"}, "probability": {p}, '
        f'"top": [{top}]' + ("}" if why is None else f', "abstained": {json_string(why)}}}')
        for start, text, label, p, top, why in zip(
            opening, batch.texts, first, probs[0], tops, batch.abstained, strict=True
        )
    ]


def json_objects(batch: Labeled, predictor: Predictor, opts: Options) -> list[str]:
    """Each record as one line of JSON (the fast column-wise path for one label per text,
    unless there are explanations)."""
    if not opts.explain and batch.chosen is None:
        return json_rows(batch, predictor.labels)
    return [json.dumps(r, ensure_ascii=False, allow_nan=False) for r in records_of(batch, predictor, opts)]


def table_rows(batch: Labeled, predictor: Predictor, opts: Options) -> str:
    return FixedTable(predictor.labels, opts.explain).rows(records_of(batch, predictor, opts))


@dataclass(frozen=True)
class Output:
    """One output format of ``predict``: ``batch`` formats a labeled batch (in a worker);
    the writer puts ``head`` before the first batch, ``sep`` between batches and ``tail``
    after the last, or ``empty`` alone when there was none."""

    batch: Callable[[Labeled, Predictor, Options], str]
    head: Callable[[Predictor, Options], str] = lambda predictor, opts: ""
    sep: str = ""
    tail: str = ""
    empty: str = ""
    explains: bool = True  # has a place for --explain


OUTPUTS = {
    "table": Output(table_rows, lambda predictor, opts: FixedTable(predictor.labels, opts.explain).header()),
    "json": Output(
        lambda b, p, o: ",\n".join(json_objects(b, p, o)), lambda p, o: "[", sep=",\n", tail="]\n", empty="[]\n"
    ),
    "jsonl": Output(lambda b, p, o: "".join(row + "\n" for row in json_objects(b, p, o))),
    "csv": Output(
        lambda b, p, o: csv_rows(b, p.labels, p.label_sep),
        lambda p, o: ",".join(csv_header(o.k, o.ids, p.task.name == "multi_label")) + "\n",
        explains=False,
    ),
}


def _label_and_format(state: tuple[Predictor, Options, str | None], items: list):
    predictor, opts, fmt = state
    ids = None
    if opts.ids:
        items, ids = [text for text, _ in items], [i for _, i in items]
    batch = label_columns(predictor, items, opts)
    batch.ids = ids
    return records_of(batch, predictor, opts) if fmt is None else OUTPUTS[fmt].batch(batch, predictor, opts)


def _batches(texts: Iterable, opts: Options):
    return batches(texts, BATCH, (lambda item: len(item[0])) if opts.ids else len)


def label_stream(
    predictor: Predictor, texts: Iterable[str], opts: Options, fmt: str | None = None
) -> Iterator[tuple[list, list[dict] | str]]:
    """Each batch of texts with its records (``fmt`` None) or formatted text, in input order,
    labeled on every core."""
    return parallel_map(_label_and_format, (predictor, opts, fmt), _batches(texts, opts))


def write_labels(
    predictor: Predictor,
    texts: Iterable[str],
    opts: Options,
    fmt: str,
    out,
    tick: Callable[[int], None] = lambda n: None,
) -> None:
    """Label ``texts`` and write them to ``out`` in output format ``fmt``, each batch as it is
    done. Nothing (not even a header) before the first batch: an input refused at its start
    (empty, malformed) leaves ``out`` empty."""
    output = OUTPUTS[fmt]
    first = True
    for batch, chunk in label_stream(predictor, texts, opts, fmt):
        out.write((output.head(predictor, opts) if first else output.sep) + chunk)
        tick(len(batch))
        first = False
    out.write(output.empty if first else output.tail)
    out.flush()
