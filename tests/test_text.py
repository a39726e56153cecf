import random
import re
from collections import Counter

import numpy as np
import pytest

from classify_cli.text.token_table import TokenTable
from classify_cli.text.tokens import (
    NGRAM_HASHES,
    STR_ONLY_WHITESPACE,
    UNK,
    Vocab,
    basic_english,
    basic_english_bytes,
    build_vocab,
    clean_text,
    encode_token,
    ngram_bucket,
    ngram_ids,
    ngram_orders,
    ngrams_iterator,
)

# torchtext 0.18's basic_english, verbatim: the reference our single-pass version must match
_PATTERNS = [r"\'", r"\"", r"\.", r"<br \/>", r",", r"\(", r"\)", r"\!", r"\?", r"\;", r"\:", r"\s+"]
_REPLACEMENTS = [" '  ", "", " . ", " ", " , ", " ( ", " ) ", " ! ", " ? ", " ", " ", " "]
_COMPILED = list(zip([re.compile(p) for p in _PATTERNS], _REPLACEMENTS, strict=True))


def torchtext_basic_english(line: str) -> list[str]:
    line = line.lower()
    for pattern, repl in _COMPILED:
        line = pattern.sub(repl, line)
    return line.split()


@pytest.mark.parametrize(
    "text",
    [
        "Wall St. Bears Claw Back Into the Black (Reuters)",
        "It's \"quoted\"; isn't it: yes! really? (maybe)",
        'line<br />break and <br "/> trick',
        "  tabs\tand\nnewlines\u00a0nbsp  ",
        "",
        "UPPER lower MiXeD 1,000.50",
    ],
)
def test_basic_english_matches_torchtext(text):
    assert basic_english(text) == torchtext_basic_english(text)


def test_basic_english_examples():
    assert basic_english("Hello, World! It's 5.") == ["hello", ",", "world", "!", "it", "'", "s", "5", "."]


def test_clean_text_repairs_ag_news_entities():
    assert (
        clean_text("Australia #39;s lead &lt;b&gt; #36;5 dwindling\\band") == "Australia 's lead <b> $5 dwindling band"
    )
    assert clean_text("plain text") == "plain text"


def test_vocab_order_specials_and_unknown_default():
    vocab = build_vocab([["b", "a", "c", "a"], ["b", "d"]])
    assert vocab.itos == [UNK, "a", "b", "c", "d"]  # by frequency, ties alphabetically
    assert vocab["a"] == 1
    assert vocab["never-seen"] == vocab.unk_index == 0
    assert vocab.lookup_indices(["c", "zzz"]) == [3, 0]


def test_vocab_min_freq_and_max_tokens():
    tokens = [["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"]]
    assert build_vocab(tokens, min_freq=2).itos == [UNK, "a", "b", "c"]
    assert build_vocab(tokens, max_tokens=3).itos == [UNK, "a", "b"]
    # as torchtext: a special the corpus holds takes one of the max_tokens places, then goes
    assert build_vocab([[UNK] * 9, *tokens], max_tokens=3).itos == [UNK, "a"]


def test_vocab_rejects_duplicates_and_missing_unk():
    with pytest.raises(ValueError):
        Vocab([UNK, "a", "a"])
    with pytest.raises(ValueError):
        Vocab(["a"])


def test_ngrams_iterator_order():
    assert list(ngrams_iterator(["a", "b", "c"], 2)) == ["a", "b", "c", "a b", "b c"]


def naive_doc_ngram_ids(doc, ngrams, vocab_size, buckets, kind="multiply-shift"):
    """The features of one document with plain loops and the hashes written out as arithmetic:
    the reference for the vectorized version and for ``ngram_bucket``."""
    feats = list(doc)
    if ngrams <= 1 or buckets <= 0:
        return feats
    for n in range(2, ngrams + 1):
        for i in range(len(doc) - n + 1):
            h = int(doc[i])
            for k in range(1, n):
                if kind == "prime-mod":
                    h = (h * 1_000_003 + int(doc[i + k])) % buckets
                else:
                    h = (h * 0x9E3779B97F4A7C15 + int(doc[i + k])) % 2**64
            if kind != "prime-mod":
                h = (h * 0xBF58476D1CE4E5B9 % 2**64) // 2**32 * buckets // 2**32
            feats.append(vocab_size + h)
    return feats


def _naive_ngram_ids(docs, ngrams, vocab_size, buckets, kind="multiply-shift"):
    return [naive_doc_ngram_ids(doc, ngrams, vocab_size, buckets, kind) for doc in docs]


@pytest.mark.parametrize("kind", NGRAM_HASHES)
@pytest.mark.parametrize("ngrams", [1, 2, 3])
def test_ngram_ids_match_a_plain_loop(ngrams, kind):
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 50, size=rng.integers(0, 7)).tolist() for _ in range(30)]
    docs.append([2**31 - 1, 2**31 - 2, 2**31 - 1])  # the largest ids: no overflow either way
    ids = np.array([t for d in docs for t in d], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])])
    feats, feat_offsets = ngram_ids(ids, offsets, ngrams, vocab_size=50, buckets=97, kind=kind)
    got = [list(feats[a:b]) for a, b in zip(feat_offsets[:-1], feat_offsets[1:], strict=True)]
    assert got == _naive_ngram_ids(docs, ngrams, 50, 97, kind)
    plain = [
        [*d, *(50 + ngram_bucket(d[i : i + n], 97, kind) for n in range(2, ngrams + 1) for i in range(len(d) - n + 1))]
        for d in docs
    ]
    assert got == plain  # predict's pure-Python path hashes alike


def test_an_unknown_ngram_hash_is_refused():
    with pytest.raises(ValueError, match="unknown n-gram hash"):
        ngram_bucket([1, 2], 97, "md5")
    with pytest.raises(ValueError, match="unknown n-gram hash"):
        ngram_ids(np.array([1, 2]), np.array([0, 2]), 2, vocab_size=5, buckets=97, kind="md5")


def test_ngram_hash_spreads_the_bigrams_of_frequent_words():
    # the bigrams of the 300 commonest words (ids 0-299) among 2M buckets: the old hash put
    # these 90,000 into a few thousand buckets (2 x 1000003 = 6 mod 2M); a good one nearly all apart
    a, b = np.divmod(np.arange(300 * 300, dtype=np.int64), 300)
    ids = np.stack([a, b], axis=1).reshape(-1)
    offsets = np.arange(0, len(ids) + 1, 2)
    for kind, least in (("multiply-shift", 88_000), ("prime-mod", 0)):
        feats, _ = ngram_ids(ids, offsets, 2, vocab_size=300, buckets=2_000_000, kind=kind)
        used = len(np.unique(feats[feats >= 300]))
        assert used >= least and (kind != "prime-mod" or used < 3_000), (kind, used)


def test_counter_is_not_mutated_beyond_specials():
    counter = Counter({"a": 2, UNK: 5})
    from classify_cli.text.tokens import vocab_from_counts

    assert vocab_from_counts(counter).itos == [UNK, "a"]


def test_str_only_whitespace_is_what_str_split_adds_to_bytes_split():
    # basic_english_bytes turns these into spaces so that bytes.split() splits like str.split()
    str_space = {chr(c) for c in range(0x110000) if chr(c).isspace()}
    bytes_space = {chr(b) for b in range(256) if bytes([b]).isspace()}
    assert set(STR_ONLY_WHITESPACE) == str_space - bytes_space
    text = "a<br\xa0/>b" + "".join(f"{c}x" for c in STR_ONLY_WHITESPACE)
    assert basic_english_bytes(text) == [encode_token(t) for t in basic_english(text)]
    assert basic_english_bytes(text)[:2] == [b"a<br", b"/>b"]  # "<br\xa0/>" is not "<br />"


@pytest.mark.parametrize("ngrams", [1, 2, 3])
def test_ngram_orders_are_ngram_ids_split_by_order(ngrams):
    docs = [[1, 2, 3, 4], [], [5], [6, 7], [8, 9, 1]]
    ids = np.array([t for d in docs for t in d], dtype=np.int64)
    offsets = np.cumsum([0] + [len(d) for d in docs])
    orders = ngram_orders(ids, offsets, ngrams, vocab_size=50, buckets=97)  # multiply-shift, the default
    assert len(orders) == ngrams
    for doc, expected in enumerate(_naive_ngram_ids(docs, ngrams, 50, 97)):
        got = [int(f) for feats, offs in orders for f in feats[offs[doc] : offs[doc + 1]]]
        assert got == expected


def test_token_table_on_a_large_vocabulary_matches_a_dict():
    rng = random.Random(0)
    alphabet = "abcdefghijé\x00"
    words = {"".join(rng.choices(alphabet, k=rng.randint(1, 24))).encode() for _ in range(60_000)}
    vocab = sorted(words)[:40_000]  # the rest stay unknown
    table = TokenTable.build(vocab, range(len(vocab)), default=-1)
    index = {t: i for i, t in enumerate(vocab)}
    data = b" ".join(sorted(words, key=hash)) + b"\n" + b"\t".join(vocab[::7])
    got = table.lookup(data)
    assert got.tolist() == [index.get(t, -1) for t in data.split()]
    assert (got >= 0).sum() > 40_000 and (got == -1).sum() > 10_000


def test_token_table_refuses_tokens_with_whitespace():
    with pytest.raises(ValueError):
        TokenTable.build([b"a b"], [0], default=0)
    with pytest.raises(ValueError):
        TokenTable.build([b""], [0], default=0)
