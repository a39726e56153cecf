"""Text pipeline: the torchtext ``basic_english`` tokenizer, a Vocab and hashed n-grams.

torchtext stopped at 0.18 and cannot load beside current torch, so its semantics are
reproduced here: the same tokenizer rules, the same vocabulary order (specials first,
then by frequency, ties broken alphabetically), ``<unk>`` as the default index,
``min_freq`` and ``max_tokens``. Nothing here imports torch.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np

UNK = "<unk>"

# torchtext.data.utils._basic_english_normalize applies these regex substitutions after
# lower-casing, then splits on whitespace. All but "<br />" are single characters, so one
# str.translate does their work in a single pass; '"' goes first because torchtext removes
# it before it looks for "<br />".
_BASIC_ENGLISH_TABLE = str.maketrans(
    {
        "'": " '  ",
        ".": " . ",
        ",": " , ",
        "(": " ( ",
        ")": " ) ",
        "!": " ! ",
        "?": " ? ",
        ";": " ",
        ":": " ",
    }
)


def basic_english(text: str) -> list[str]:
    """Tokenize like torchtext's ``get_tokenizer("basic_english")``."""
    return text.lower().replace('"', "").replace("<br />", " ").translate(_BASIC_ENGLISH_TABLE).split()


class Vocab:
    """Token <-> index mapping whose unknown tokens map to the ``<unk>`` index."""

    def __init__(self, itos: Sequence[str], unk: str = UNK):
        self.itos = list(itos)
        self.stoi = {token: i for i, token in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary holds duplicate tokens")
        if unk not in self.stoi:
            raise ValueError(f"vocabulary lacks the default token {unk!r}")
        self.unk_index = self.stoi[unk]

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        return self.stoi.get(token, self.unk_index)

    def lookup_indices(self, tokens: Iterable[str]) -> list[int]:
        get, unk = self.stoi.get, self.unk_index
        return [get(t, unk) for t in tokens]

    def lookup_tokens(self, indices: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in indices]


def build_vocab(
    token_lists: Iterable[Iterable[str]],
    *,
    min_freq: int = 1,
    max_tokens: int | None = None,
    specials: Sequence[str] = (UNK,),
) -> Vocab:
    """Count tokens and keep the frequent ones, like ``build_vocab_from_iterator``.

    Specials come first; the rest is sorted by descending frequency, ties alphabetically;
    tokens seen fewer than ``min_freq`` times are dropped; ``max_tokens`` caps the total
    size, specials included.
    """
    counter: Counter[str] = Counter()
    for tokens in token_lists:
        counter.update(tokens)
    return vocab_from_counts(counter, min_freq=min_freq, max_tokens=max_tokens, specials=specials)


def vocab_from_counts(
    counter: Counter[str],
    *,
    min_freq: int = 1,
    max_tokens: int | None = None,
    specials: Sequence[str] = (UNK,),
) -> Vocab:
    if min_freq < 1:
        raise ValueError("min_freq must be at least 1")
    if max_tokens is not None and max_tokens <= len(specials):
        raise ValueError("max_tokens must exceed the number of special tokens")
    for special in specials:
        counter.pop(special, None)
    ordered = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    if max_tokens is not None:
        ordered = ordered[: max_tokens - len(specials)]
    return Vocab([*specials, *(tok for tok, freq in ordered if freq >= min_freq)])


def ngrams_iterator(tokens: Sequence[str], ngrams: int) -> Iterable[str]:
    """Yield the tokens, then every n-gram up to ``ngrams`` joined by spaces (torchtext order)."""
    yield from tokens
    for n in range(2, ngrams + 1):
        for i in range(len(tokens) - n + 1):
            yield " ".join(tokens[i : i + n])


# Hashed n-grams: n-grams are never stored in the vocabulary. Each n-gram of token ids is
# hashed into one of `buckets` rows placed after the vocabulary rows of the embedding table
# (fastText's trick), so the model size does not grow with the corpus.
_HASH_PRIME = np.int64(1_000_003)


def ngram_ids(
    ids: np.ndarray, offsets: np.ndarray, ngrams: int, vocab_size: int, buckets: int
) -> tuple[np.ndarray, np.ndarray]:
    """Add hashed n-gram features to flat token ids.

    ``ids`` holds every document's token ids end to end and ``offsets`` (length n_docs + 1)
    where each starts. Returns the same layout with each document's tokens followed by the
    bucket ids (``vocab_size + hash % buckets``) of its 2..ngrams-grams. Vectorized: no
    Python loop over documents.
    """
    ids = np.asarray(ids, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    if ngrams <= 1 or buckets <= 0:
        return ids, offsets
    lengths = np.diff(offsets)
    doc_of = np.repeat(np.arange(len(lengths)), lengths)
    parts = [ids]
    part_docs = [doc_of]
    for n in range(2, ngrams + 1):
        if len(ids) < n:
            break
        # position i starts an n-gram when i + n - 1 is still inside the same document
        starts = np.arange(len(ids) - n + 1)
        valid = doc_of[starts] == doc_of[starts + n - 1]
        starts = starts[valid]
        h = ids[starts].copy()
        for k in range(1, n):
            h = (h * _HASH_PRIME + ids[starts + k]) % buckets
        parts.append(vocab_size + h % buckets)
        part_docs.append(doc_of[starts])
    feats = np.concatenate(parts)
    docs = np.concatenate(part_docs)
    # stable sort by document keeps tokens first, then bigrams, trigrams, in order
    order = np.argsort(docs, kind="stable")
    counts = np.bincount(docs, minlength=len(lengths))
    new_offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(counts, out=new_offsets[1:])
    return feats[order], new_offsets


# AG News lost the "&" of its numeric HTML entities ("#39;" for an apostrophe) and kept
# bare backslashes where the source had line breaks; repairing both gives cleaner tokens.
_BROKEN_ENTITY = re.compile(r"(?<!&)#(\d{1,5});")


def clean_text(text: str) -> str:
    if "#" in text:
        text = _BROKEN_ENTITY.sub(r"&#\1;", text)
    if "&" in text:
        text = html.unescape(text)
    if "\\" in text:
        text = text.replace("\\", " ")
    return text


def make_tokenizer(spec: dict) -> Callable[[str], list[str]]:
    """The tokenizer a prepared corpus or model bundle records in its ``tokenizer`` spec."""
    if spec.get("name") != "basic_english":
        raise ValueError(f"unknown tokenizer {spec.get('name')!r}")
    if spec.get("clean_text"):
        return lambda text: basic_english(clean_text(text))
    return basic_english
