"""Inference with numpy alone: fast to start, and (uncompressed) the torch model's numbers.

The forward pass lives in ``head.py`` (the model is linear up to the logits, so a bundle is
a table of class scores per feature); this module turns texts into token ids with the
bundle's own vocabulary table and asks the head for logits, probabilities and explanations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ..text.tokens import encode_token, make_normalizer, make_tokenizer
from ..util.ragged import fingerprints, offsets_from_lengths, segment_sum
from .bundle import Bundle
from .head import Head, Scored
from .task import task_of

T = TypeVar("T")

# joins many texts into one string for tokenizing; not whitespace, so it survives as a token
_SEPARATOR = "\x00"


@dataclass
class Encoded:
    ids: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1


class Predictor:
    def __init__(self, bundle: Bundle):
        meta = bundle.meta
        self.task = task_of(meta)  # what the logits mean: probabilities, decisions, records
        self.labels: list[str] = list(meta["labels"])
        # joins a text's labels in CSV: the separator its training data used, else "|"
        self.label_sep: str = (meta.get("prepare") or {}).get("label_sep") or "|"
        self.tokenize = make_tokenizer(meta["tokenizer"])
        self._normalize = make_normalizer(meta["tokenizer"])
        self.head = Head(bundle.tensors, meta["head"])
        self.unk_index = self.head.unk_index
        self.check_intact = bundle.check_intact

    # -- text to ids ---------------------------------------------------------------------
    def encode(self, texts: Iterable[str]) -> Encoded:
        """Token ids of many texts: tokenized as one string, so Python's per-call cost is paid once."""
        texts = list(texts)
        joined = f" {_SEPARATOR} ".join(texts)
        if joined.count(_SEPARATOR) != len(texts) - 1:  # a text holds the separator itself
            return self._encode_each(texts)
        ids = self.head.vocab.lookup(self._normalize(joined), separator=ord(_SEPARATOR))
        is_sep = ids == -1
        lengths = np.bincount(np.cumsum(is_sep)[~is_sep], minlength=len(texts)) if len(texts) else np.zeros(0, np.int64)
        return Encoded(ids[~is_sep], offsets_from_lengths(lengths))

    def _encode_each(self, texts: Sequence[str]) -> Encoded:
        docs = [self.head.vocab.lookup(self._normalize(text)) for text in texts]
        lengths = np.array([len(d) for d in docs], dtype=np.int64)
        ids = np.concatenate(docs) if docs else np.zeros(0, np.int64)
        return Encoded(ids.astype(np.int64), offsets_from_lengths(lengths))

    def lookup_tokens(self, tokens: Sequence[str]) -> np.ndarray:
        """The model's ids of ``tokens`` (``<unk>``'s for those it does not know)."""
        return self.head.vocab.lookup(b" ".join(encode_token(t) for t in tokens))

    # -- ids to logits -------------------------------------------------------------------
    def logits_from_ids(self, ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        return self.head.logits(ids, offsets)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        enc = self.encode(texts)
        return self.logits_from_ids(enc.ids, enc.offsets)

    def score(self, texts: Sequence[str], prints: bool = False) -> Scored:
        """Logits plus, per text, how many tokens it has and how many the model knows (and,
        with ``prints``, its fingerprint: evaluate's check for training rows). Called once a batch."""
        self.check_intact()
        enc = self.encode(texts)
        known = segment_sum((self.head.known_ids(enc.ids) != self.unk_index).astype(np.int64), enc.offsets)
        fingerprinted = fingerprints(enc.ids, enc.offsets) if prints else None
        return Scored(self.logits_from_ids(enc.ids, enc.offsets), np.diff(enc.offsets), known, fingerprinted)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return self.task.probabilities(self.logits(texts))

    def split_probabilities(self, split) -> np.ndarray:
        """The probabilities of a prepared split's documents (its token ids, already numbered)."""
        return self.task.probabilities(self.logits_from_ids(split.ids.astype(np.int64), split.offsets))

    def explain(self, text: str, label: int | None = None, top: int = 5) -> list[tuple[str, float]]:
        """Features that pushed class ``label`` most (the task's decision; by default the
        largest logit): (feature, contribution to its logit)."""
        tokens = self.tokenize(text)
        _, contrib = self.head.contributions(self.encode([text]).ids)
        predicted = int(np.argmax(contrib.sum(axis=0) + self.head.bias)) if label is None else label
        names = list(tokens) + [
            " ".join(tokens[i : i + n]) for n in range(2, self.head.spec.ngrams + 1) for i in range(len(tokens) - n + 1)
        ]
        scores: dict[str, float] = {}
        for name, value in zip(names, contrib[:, predicted], strict=True):
            scores[name] = scores.get(name, 0.0) + float(value)
        return sorted(scores.items(), key=lambda kv: -kv[1])[:top]


# --- scoring many texts on every core -------------------------------------------------------


def _score(state: tuple[Predictor, Callable, bool], batch) -> Scored:
    predictor, texts_of, prints = state
    return predictor.score(texts_of(batch), prints)


def score_batches(
    predictor: Predictor,
    batches: Iterable[T],
    texts_of: Callable[[T], list[str]],
    workers: int | None = None,
    prints: bool = False,
) -> Iterator[tuple[T, Scored]]:
    """Each batch with the scores of its texts, in order, tokenized in parallel worker processes."""
    from ..util.parallel import parallel_map

    return parallel_map(_score, (predictor, texts_of, prints), batches, workers)
