"""Text pipeline: the torchtext ``basic_english`` tokenizer, a Vocab and hashed n-grams.

torchtext stopped at 0.18 and cannot load beside current torch, so its semantics are
reproduced here: the same tokenizer rules, the same vocabulary order (specials first,
then by frequency, ties broken alphabetically), ``<unk>`` as the default index,
``min_freq`` and ``max_tokens``. Nothing here imports torch.
"""

from __future__ import annotations

import functools
import html
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from ..util.schema import Bool, Obj, Str

if TYPE_CHECKING:  # numpy where ids are counted or hashed: the tokenizer alone (`predict TEXT`) needs none
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


# The same tokenizer over UTF-8 bytes, for scoring many texts at once: bytes.replace and
# bytes.split run two to three times faster than their str versions on long strings. The
# replacements are ASCII, which UTF-8 never uses inside a multi-byte character, so they act
# alike. str.split() also splits on the characters below; bytes.split() does not, so they
# become spaces after the replacements (before, "<br\xa0/>" would turn into "<br />").
_BYTES_REPLACEMENTS = tuple((old.encode(), new.encode()) for old, new in _BASIC_ENGLISH_REPLACEMENTS)
STR_ONLY_WHITESPACE = (
    "\x1c\x1d\x1e\x1f\x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
)
_ASCII_STR_ONLY_WHITESPACE = tuple(c.encode() for c in STR_ONLY_WHITESPACE if c.isascii())
_STR_ONLY_WHITESPACE_UTF8 = re.compile(b"|".join(re.escape(c.encode()) for c in STR_ONLY_WHITESPACE))


def encode_token(token: str) -> bytes:
    return token.encode("utf-8", "surrogatepass")


def basic_english_utf8(text: str) -> bytes:
    """``text`` lower-cased and spaced out as ``basic_english`` does, UTF-8 encoded: its
    ``split()`` gives ``basic_english``'s tokens, encoded (see ``encode_token``)."""
    data = encode_token(text.lower())
    for old, new in _BYTES_REPLACEMENTS:
        if old in data:
            data = data.replace(old, new)
    if not data.isascii():
        data = _STR_ONLY_WHITESPACE_UTF8.sub(b" ", data)
    elif any(c in data for c in _ASCII_STR_ONLY_WHITESPACE):
        for c in _ASCII_STR_ONLY_WHITESPACE:
            data = data.replace(c, b" ")
    return data


def basic_english_bytes(text: str) -> list[bytes]:
    """``basic_english(text)`` with each token UTF-8 encoded, faster."""
    return basic_english_utf8(text).split()


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
        if len(set(self.itos)) != len(self.itos):
            raise ValueError("vocabulary holds duplicate tokens")
        if unk not in self.itos:
            raise ValueError(f"vocabulary lacks the default token {unk!r}")
        self.unk_index = self.itos.index(unk)

    @classmethod
    def of_distinct(cls, itos: list[str], unk: str = UNK) -> Vocab:
        """A vocabulary of tokens known to be distinct, without the set that checks it (which
        costs more than the list for a large one)."""
        vocab = cls.__new__(cls)
        vocab.itos, vocab.unk_index = itos, itos.index(unk)
        return vocab

    @functools.cached_property
    def stoi(self) -> TokenIndex:
        # built on first use: training needs only the list, and a dict of a large vocabulary costs
        return TokenIndex({token: i for i, token in enumerate(self.itos)}, self.unk_index)

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
    ordered = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    if max_tokens is not None:
        # torchtext's order: cut, then drop specials, so a special the corpus also holds
        # (PTB-style text has "<unk>") uses one of the max_tokens places
        ordered = ordered[: max_tokens - len(specials)]
    return Vocab([*specials, *(tok for tok, freq in ordered if freq >= min_freq and tok not in specials)])


def vocab_from_id_counts(
    tokens: Sequence[str],
    counts: np.ndarray,
    *,
    min_freq: int = 1,
    max_tokens: int | None = None,
    specials: Sequence[str] = (UNK,),
) -> tuple[Vocab, np.ndarray]:
    """``vocab_from_counts`` for ``counts[i]`` occurrences of ``tokens[i]``, and the int32 map
    from each ``tokens`` index to its vocabulary index (``<unk>``'s where it has none).

    The same vocabulary, without a dict or a tuple per token: for a corpus's provisional ids.
    """
    import numpy as np

    if min_freq < 1:
        raise ValueError("min_freq must be at least 1")
    if max_tokens is not None and max_tokens <= len(specials):
        raise ValueError("max_tokens must exceed the number of special tokens")
    words = np.empty(len(tokens), dtype=object)  # the strings themselves: no Python int per token
    words[:] = tokens
    present = np.flatnonzero(counts)
    order = present[np.argsort(words[present], kind="stable")]  # ties: by token
    order = order[np.argsort(-counts[order], kind="stable")]  # by count, descending
    if max_tokens is not None:
        order = order[: max_tokens - len(specials)]
    order = order[counts[order] >= min_freq]
    at = {tok: np.flatnonzero(words == tok) for tok in specials}  # a special the corpus holds
    order = order[~np.isin(order, np.concatenate([np.zeros(0, np.int64), *at.values()]))]
    vocab = Vocab.of_distinct([*specials, *words[order].tolist()])
    del words
    remap = np.full(max(len(tokens), 1), vocab.unk_index, dtype=np.int32)
    for k, tok in enumerate(specials):  # a special the corpus holds maps to its own place
        remap[at[tok]] = k
    remap[order] = np.arange(len(specials), len(specials) + len(order), dtype=np.int32)
    return vocab, remap


def ngrams_iterator(tokens: Sequence[str], ngrams: int) -> Iterable[str]:
    """Yield the tokens, then every n-gram up to ``ngrams`` joined by spaces (torchtext order)."""
    yield from tokens
    for n in range(2, ngrams + 1):
        for i in range(len(tokens) - n + 1):
            yield " ".join(tokens[i : i + n])


# Hashed n-grams: n-grams are never stored in the vocabulary. Each n-gram of token ids is
# hashed into one of `buckets` rows placed after the vocabulary rows of the embedding table
# (fastText's trick), so the model size does not grow with the corpus.
#
# "multiply-shift": the ids folded into 64 bits (h·K1 + id, mod 2⁶⁴), multiplied by K2, and the
# product's top 32 bits scaled to [0, buckets). "prime-mod", of models that record no hash:
# (h·1000003 + id) mod buckets, which sends the bigrams of frequent words (small ids) to a few
# thousand buckets, as 2·1000003 ≡ 6 (mod 2,000,000): docs/benchmarks.md measures both.
NGRAM_HASHES = ("multiply-shift", "prime-mod")
LEGACY_NGRAM_HASH = "prime-mod"  # what a model without a recorded hash used
HASH_PRIME = 1_000_003
_K1, _K2, _MASK = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, (1 << 64) - 1


def _check_hash(kind: str) -> None:
    if kind not in NGRAM_HASHES:
        raise ValueError(f"unknown n-gram hash {kind!r} (known: {', '.join(NGRAM_HASHES)})")


def ngram_bucket(gram: Sequence[int], buckets: int, kind: str) -> int:
    """The bucket of one n-gram of token ids, in plain Python (``ngram_orders`` hashes arrays alike)."""
    h = gram[0]
    if kind == "prime-mod":
        for i in gram[1:]:
            h = (h * HASH_PRIME + i) % buckets
        return h
    _check_hash(kind)
    for i in gram[1:]:
        h = (h * _K1 + i) & _MASK
    return ((((h * _K2) & _MASK) >> 32) * buckets) >> 32


def _hashed(ids: np.ndarray, n: int, total: int, buckets: int, kind: str) -> np.ndarray:
    """The bucket of the n-gram starting at each of ``ids[:total]`` (int64)."""
    import numpy as np

    if kind == "prime-mod":
        h = ids[:total].copy()
        for k in range(1, n):
            h = (h * np.int64(HASH_PRIME) + ids[k : k + total]) % buckets
        return h
    _check_hash(kind)
    u = ids.view(np.uint64)  # ids are non-negative; uint64 arithmetic wraps mod 2⁶⁴
    h = u[:total].copy()
    for k in range(1, n):
        h *= np.uint64(_K1)
        h += u[k : k + total]
    h *= np.uint64(_K2)
    h >>= np.uint64(32)
    h *= np.uint64(buckets)  # below 2⁶⁴: buckets < 2³²
    h >>= np.uint64(32)
    return h.view(np.int64)


def ngram_orders(
    ids: np.ndarray, offsets: np.ndarray, ngrams: int, vocab_size: int, buckets: int, kind: str = NGRAM_HASHES[0]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each document's features, one ragged array per n-gram order.

    ``ids`` holds every document's token ids end to end and ``offsets`` (length n_docs + 1)
    where each starts. Item 0 is the tokens themselves; item n-1 holds, per document and in
    order of position, the bucket ids (``vocab_size`` + its ``kind`` of hash) of its n-grams.
    Vectorized: an n-gram starts at every position but the last n-1 of its document.
    """
    import numpy as np

    ids = np.asarray(ids, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    orders = [(ids, offsets)]
    if ngrams <= 1 or buckets <= 0:
        return orders
    lengths = np.diff(offsets)
    ends = offsets[1:]
    begins = np.ones(len(ids), dtype=bool)  # position i begins an n-gram of its document
    for n in range(2, ngrams + 1):
        begins[ends[lengths >= n - 1] - (n - 1)] = False
        total = max(len(ids) - (n - 1), 0)
        h = _hashed(ids, n, total, buckets, kind)
        counts = np.maximum(lengths - (n - 1), 0)
        n_offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(counts, out=n_offsets[1:])
        orders.append((vocab_size + h[begins[:total]], n_offsets))
    return orders


def ngram_ids(
    ids: np.ndarray, offsets: np.ndarray, ngrams: int, vocab_size: int, buckets: int, kind: str = NGRAM_HASHES[0]
) -> tuple[np.ndarray, np.ndarray]:
    """Add hashed n-gram features to flat token ids (see ``ngram_orders``).

    Returns the same layout with each document's tokens followed by its bigram buckets,
    then trigrams, ...: the ragged arrays of ``ngram_orders`` concatenated per document.
    """
    import numpy as np

    orders = ngram_orders(ids, offsets, ngrams, vocab_size, buckets, kind)
    if len(orders) == 1:
        return orders[0]
    new_offsets = np.sum([o for _, o in orders], axis=0)
    out = np.empty(new_offsets[-1], dtype=np.int64)
    before = new_offsets[:-1].copy()  # where each document's next order starts in the output
    for feats, n_offsets in orders:
        counts = np.diff(n_offsets)
        # element j of order n, in document d, goes to before[d] + (j - n_offsets[d])
        out[np.arange(len(feats)) + np.repeat(before - n_offsets[:-1], counts)] = feats
        before += counts
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


TOKENIZERS = ("basic_english",)  # the names a tokenizer spec may give
TOKENIZER = Obj({"name": Str(TOKENIZERS), "clean_text": Bool()})  # the spec, as JSON files record it


def make_tokenizer(spec: dict) -> Callable[[str], list[str]]:
    """The tokenizer a prepared corpus or model bundle records in its ``tokenizer`` spec."""
    _check_spec(spec)
    if spec.get("clean_text"):
        return lambda text: basic_english(clean_text(text))
    return basic_english


def make_normalizer(spec: dict) -> Callable[[str], bytes]:
    """The same, as UTF-8 bytes whose ``split()`` gives the tokens (see ``basic_english_utf8``)."""
    _check_spec(spec)
    if spec.get("clean_text"):
        return lambda text: basic_english_utf8(clean_text(text))
    return basic_english_utf8


def _check_spec(spec: dict) -> None:
    if spec.get("name") not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {spec.get('name')!r}")
