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
# lower-casing, then splits on whitespace. All are literal strings, so str.replace does the
# same work several times faster than re.sub (or str.translate with multi-character
# targets). '"' goes first because torchtext removes it before it looks for "<br />".
_BASIC_ENGLISH_REPLACEMENTS = (
    ('"', ""),
    ("<br />", " "),
    ("'", " '  "),
    (".", " . "),
    (",", " , "),
    ("(", " ( "),
    (")", " ) "),
    ("!", " ! "),
    ("?", " ? "),
    (";", " "),
    (":", " "),
)


def basic_english(text: str) -> list[str]:
    """Tokenize like torchtext's ``get_tokenizer("basic_english")``."""
    text = text.lower()
    for old, new in _BASIC_ENGLISH_REPLACEMENTS:
        if old in text:
            text = text.replace(old, new)
    return text.split()


class TokenIndex(dict):
    """token -> index; a missing token gives the default index (no Python call per known token)."""

    def __init__(self, mapping: dict[str, int], default: int):
        super().__init__(mapping)
        self.default = default

    def __missing__(self, token: str) -> int:
        return self.default


class Vocab:
    """Token <-> index mapping whose unknown tokens map to the ``<unk>`` index."""

    def __init__(self, itos: Sequence[str], unk: str = UNK):
        self.itos = list(itos)
        index = {token: i for i, token in enumerate(self.itos)}
        if len(index) != len(self.itos):
            raise ValueError("vocabulary holds duplicate tokens")
        if unk not in index:
            raise ValueError(f"vocabulary lacks the default token {unk!r}")
        self.unk_index = index[unk]
        self.stoi = TokenIndex(index, self.unk_index)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        return self.stoi[token]

    def lookup_indices(self, tokens: Iterable[str]) -> list[int]:
        return list(map(self.stoi.__getitem__, tokens))

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
    bucket ids (``vocab_size + hash % buckets``) of its bigrams, then trigrams, ... in order
    of position. Vectorized: every output position is computed, nothing is sorted.
    """
    ids = np.asarray(ids, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    if ngrams <= 1 or buckets <= 0:
        return ids, offsets
    lengths = np.diff(offsets)
    doc_of = np.repeat(np.arange(len(lengths)), lengths)
    pos_in_doc = np.arange(len(ids)) - offsets[doc_of]
    # a document of L tokens gets L + (L-1) + ... + (L-ngrams+1) features (none negative)
    per_n = [np.maximum(lengths - (n - 1), 0) for n in range(1, ngrams + 1)]
    new_lengths = np.sum(per_n, axis=0)
    new_offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(new_lengths, out=new_offsets[1:])
    out = np.empty(new_offsets[-1], dtype=np.int64)
    out[new_offsets[doc_of] + pos_in_doc] = ids
    before = per_n[0].copy()  # features of lower orders that precede order n in each document
    for n in range(2, ngrams + 1):
        starts = np.flatnonzero(pos_in_doc <= lengths[doc_of] - n)  # positions that begin an n-gram
        h = ids[starts].copy()
        for k in range(1, n):
            h = (h * _HASH_PRIME + ids[starts + k]) % buckets
        d = doc_of[starts]
        out[new_offsets[d] + before[d] + pos_in_doc[starts]] = vocab_size + h
        before += per_n[n - 1]
    return out, new_offsets


# AG News lost the "&" of its numeric HTML entities ("#39;" for an apostrophe) and kept
# bare backslashes where the source had line breaks; repairing both gives cleaner tokens.
_BROKEN_ENTITY = re.compile(r"#(\d{1,5});")
_COMMON_ENTITIES = (("#39;", "'"), ("#36;", "$"))


def clean_text(text: str) -> str:
    if "#" in text:
        # the commonest entities directly (as html.unescape would decode them), then the rest:
        # restore the "&" (and undo the doubling where it was still there); a plain pattern
        # scans several times faster than one with a look-behind for "&"
        for entity, char in _COMMON_ENTITIES:
            if entity in text:
                text = text.replace("&" + entity, char).replace(entity, char)
        text = _BROKEN_ENTITY.sub(r"&#\1;", text).replace("&&#", "&#")
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
