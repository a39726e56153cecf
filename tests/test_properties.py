"""Property-based tests (hypothesis): tokenizer, vocabulary, hashed n-grams, file loaders, predict.

Arbitrary Unicode (control characters included), empty and very long inputs: nothing crashes,
the same input always gives the same output, and each piece matches a plain reference.
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classify_cli.inputs.sources import read_file
from classify_cli.model.bundle import load_bundle
from classify_cli.model.inference import Predictor
from classify_cli.model.task import TASKS
from classify_cli.serve.prediction import Labeled, Options, csv_field, json_rows, records_of, write_labels
from classify_cli.text.token_table import TokenTable
from classify_cli.text.tokens import (
    NGRAM_HASHES,
    UNK,
    Vocab,
    basic_english,
    basic_english_bytes,
    build_vocab,
    clean_text,
    encode_token,
    ngram_ids,
    vocab_from_id_counts,
)
from classify_cli.util.config import MAX_BUCKETS, PrepareConfig
from classify_cli.util.display import NUMBER_WIDTH, FixedTable, shown

from .conftest import FILLER, TOPICS
from .test_text import naive_doc_ngram_ids, torchtext_basic_english

# conftest's autouse `_isolated` fixture is function-scoped; it only sets env vars and chdirs,
# so sharing it across the examples of one test is harmless.
PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FEW = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# --- strategies --------------------------------------------------------------------------

# everything basic_english treats specially, plus whitespace of several kinds and a few letters
SPECIAL = "'\".,()!?;:<br /> \t\n\r\x0b\x0c\x1c\x1f\x85\u00a0\u1680\u2000\u200a\u2028\u202f\u3000aBİKé"
special_text = st.one_of(
    st.text(alphabet=SPECIAL, max_size=60),
    st.lists(st.sampled_from(["<br />", "<br", "/>", '"', "'", "<BR />", '<br "/>', "br", " ", "x"]), max_size=20).map(
        "".join
    ),
)
any_text = st.one_of(st.text(), st.text(max_size=500), special_text)

WORDS = sorted({w for words in TOPICS.values() for w in words.split()} | set(FILLER))
vocab_text = st.lists(
    st.one_of(st.sampled_from(WORDS), st.sampled_from(list(".,!?;:'\"() \n\t")), st.text(max_size=5)),
    max_size=60,
).map(" ".join)
predict_text = st.one_of(st.text(max_size=20000), vocab_text, special_text, st.just(""))

token = st.one_of(st.sampled_from(["a", "b", "c", "d", "e", UNK, ""]), st.text(max_size=4))
token_lists = st.lists(st.lists(token, max_size=12), max_size=12)

label = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=8)
row_text = st.one_of(st.text(), special_text, st.text(alphabet="a,\"\r\n '", max_size=30))


# --- tokenizer ---------------------------------------------------------------------------


@PROPS
@given(any_text)
def test_basic_english_matches_torchtext_reference(text):
    tokens = basic_english(text)
    assert tokens == torchtext_basic_english(text)
    assert basic_english(text) == tokens  # deterministic
    for tok in tokens:
        assert tok
        assert not any(ch.isspace() for ch in tok)
        assert tok == tok.strip()


@PROPS
@given(st.one_of(any_text, st.text(alphabet=SPECIAL + "\ud800\udfff", max_size=60)))  # lone surrogates too
def test_bytes_tokenizer_gives_the_same_tokens_encoded(text):
    assert basic_english_bytes(text) == [encode_token(tok) for tok in basic_english(text)]


@PROPS
@given(any_text)
def test_basic_english_tokens_are_fixed_points(text):
    # re-tokenizing the tokens gives them back: no token holds anything the tokenizer would
    # split further, and lower-casing is already applied. Joined by "\n", not " ": tokens
    # "<br" and "/>" joined by a space would form a "<br />" that (as in torchtext) vanishes.
    tokens = basic_english(text)
    assert basic_english("\n".join(tokens)) == tokens
    assert torchtext_basic_english(" ".join(["<br", "/>"])) == []


@PROPS
@given(st.one_of(any_text, st.text(alphabet="#&;\\0123456789abclgtmpqu", max_size=40)))
def test_clean_text_never_crashes(text):
    once = clean_text(text)
    assert isinstance(once, str)
    assert clean_text(text) == once  # deterministic
    twice = clean_text(once)  # applying it twice must not crash either (it is not idempotent)
    assert isinstance(twice, str)
    assert "\\" not in once
    assert basic_english(once) == torchtext_basic_english(once)


def test_clean_text_is_not_idempotent():
    # documented so nobody relies on it: a doubly escaped entity unescapes one level per call
    assert clean_text("&amp;lt;") == "&lt;"
    assert clean_text(clean_text("&amp;lt;")) == "<"


# --- vocabulary --------------------------------------------------------------------------


def _expected_itos(docs, min_freq, max_tokens):
    """torchtext 0.18's build_vocab_from_iterator(specials=[UNK]), transcribed."""
    counts = Counter(t for doc in docs for t in doc)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if max_tokens is not None:
        ordered = ordered[: max_tokens - 1]
    kept = dict(ordered)
    kept.pop(UNK, None)
    counts.pop(UNK, None)
    return [UNK] + [t for t, c in kept.items() if c >= min_freq], counts


@PROPS
@given(
    token_lists,
    st.integers(1, 4),
    st.one_of(st.none(), st.integers(2, 10)),
    st.text(min_size=1, max_size=6),
)
def test_build_vocab_properties(docs, min_freq, max_tokens, probe):
    vocab = build_vocab(docs, min_freq=min_freq, max_tokens=max_tokens)
    expected, counts = _expected_itos(docs, min_freq, max_tokens)
    assert vocab.itos == expected
    assert vocab.itos[0] == UNK and vocab.unk_index == 0 and vocab[UNK] == 0
    assert len(set(vocab.itos)) == len(vocab.itos)
    if max_tokens is not None:
        assert len(vocab) <= max_tokens
    for i, tok in enumerate(vocab.itos):
        assert vocab[tok] == i
        assert tok in vocab
        if i:
            assert counts[tok] >= min_freq
    assert vocab.lookup_tokens(vocab.lookup_indices(vocab.itos)) == vocab.itos
    # frequency order: counts never increase along the vocabulary, ties alphabetical
    kept = [(counts[t], t) for t in vocab.itos[1:]]
    assert kept == sorted(kept, key=lambda ct: (-ct[0], ct[1]))
    if probe not in vocab.stoi:
        assert vocab[probe] == vocab.unk_index
        assert vocab.lookup_indices([probe]) == [0]
    # building twice gives the same vocabulary
    assert build_vocab(docs, min_freq=min_freq, max_tokens=max_tokens).itos == vocab.itos


@PROPS
@given(token_lists, st.data())
def test_build_vocab_ignores_document_and_token_order(docs, data):
    shuffled = data.draw(st.permutations(docs))
    shuffled = [list(reversed(doc)) for doc in shuffled]
    max_tokens = data.draw(st.one_of(st.none(), st.integers(2, 6)))
    assert build_vocab(shuffled, max_tokens=max_tokens).itos == build_vocab(docs, max_tokens=max_tokens).itos
    # a generator is consumed exactly like a list
    assert build_vocab(iter(docs), max_tokens=max_tokens).itos == build_vocab(docs, max_tokens=max_tokens).itos


@PROPS
@given(st.lists(st.text(max_size=5), unique=True, max_size=30), st.data())
def test_vocab_from_itos_round_trips(tokens, data):
    itos = [t for t in tokens if t != UNK]
    itos.insert(data.draw(st.integers(0, len(itos))), UNK)
    vocab = Vocab(itos)
    assert vocab.itos == itos
    assert vocab.itos[vocab.unk_index] == UNK
    assert [vocab[t] for t in itos] == list(range(len(itos)))
    probe = data.draw(st.text(max_size=6))
    assert vocab[probe] == (itos.index(probe) if probe in itos else vocab.unk_index)


# --- hashed n-grams ----------------------------------------------------------------------


@PROPS
@given(
    st.integers(1, 1_000_000),
    st.integers(1, 5),
    st.integers(1, MAX_BUCKETS),
    st.sampled_from(NGRAM_HASHES),
    st.data(),
)
def test_ngram_ids_layout_and_range(vocab_size, ngrams, buckets, kind, data):
    docs = data.draw(st.lists(st.lists(st.integers(0, vocab_size - 1), max_size=9), max_size=8))
    ids = np.array([t for d in docs for t in d], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs], dtype=np.int64)]).astype(np.int64)
    feats, feat_offsets = ngram_ids(ids, offsets, ngrams, vocab_size, buckets, kind)

    assert len(feat_offsets) == len(docs) + 1
    assert feat_offsets[0] == 0
    assert np.all(np.diff(feat_offsets) >= 0)
    assert feat_offsets[-1] == len(feats)
    for i, doc in enumerate(docs):
        got = [int(x) for x in feats[feat_offsets[i] : feat_offsets[i + 1]]]
        assert got[: len(doc)] == doc  # the document's own tokens first, in order
        grams = got[len(doc) :]
        assert len(grams) == sum(max(0, len(doc) - n + 1) for n in range(2, ngrams + 1))
        assert all(vocab_size <= g < vocab_size + buckets for g in grams)
        assert got == naive_doc_ngram_ids(doc, ngrams, vocab_size, buckets, kind)
    # deterministic, and the inputs are left alone
    again, again_offsets = ngram_ids(ids.copy(), offsets.copy(), ngrams, vocab_size, buckets, kind)
    assert np.array_equal(again, feats) and np.array_equal(again_offsets, feat_offsets)


# --- loaders -----------------------------------------------------------------------------


def _read(path: Path) -> list[tuple[str, str]]:
    return list(read_file(path, PrepareConfig()))


@PROPS
@given(st.lists(st.tuples(row_text, label), max_size=8))
def test_csv_with_header_round_trips(rows):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
        assert _read(path) == rows
        assert _read(path) == rows  # reading again gives the same rows


@PROPS
@given(
    st.lists(st.tuples(row_text, st.one_of(label, st.integers(-(10**12), 10**12))), min_size=1, max_size=8),
    st.booleans(),
)
def test_jsonl_round_trips(rows, ensure_ascii):
    expected = [(text, str(lab)) for text, lab in rows]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.jsonl"
        path.write_text(
            "".join(json.dumps({"text": t, "label": lab}, ensure_ascii=ensure_ascii) + "\n" for t, lab in rows),
            encoding="utf-8",
        )
        assert _read(path) == expected
        array = Path(tmp) / "data.json"
        array.write_text(
            json.dumps([{"label": lab, "text": t} for t, lab in rows], ensure_ascii=ensure_ascii), encoding="utf-8"
        )
        assert _read(array) == expected


# --- predict -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def predictor(trained):
    _, _, run = trained
    return Predictor(load_bundle(run))


def _check_probabilities(probs: np.ndarray, n: int, n_labels: int) -> None:
    assert probs.shape == (n, n_labels)
    assert np.all(np.isfinite(probs))
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@FEW
@given(predict_text)
def test_probabilities_finite_normalized_deterministic(predictor, text):
    probs = predictor.probabilities([text])
    _check_probabilities(probs, 1, len(predictor.labels))
    np.testing.assert_array_equal(predictor.probabilities([text]), probs)


@FEW
@given(predict_text, predict_text)
def test_probabilities_do_not_depend_on_the_batch(predictor, first, second):
    together = predictor.probabilities([first, second])
    _check_probabilities(together, 2, len(predictor.labels))
    alone = np.concatenate([predictor.probabilities([first]), predictor.probabilities([second])])
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-6)
    swapped = predictor.probabilities([second, first])
    np.testing.assert_allclose(swapped[::-1], together, rtol=0, atol=1e-6)


@FEW
@given(predict_text)
def test_explain_never_crashes(predictor, text):
    top = predictor.explain(text)
    assert top == predictor.explain(text)
    assert len(top) <= 5
    tokens = set(basic_english(clean_text(text)))
    for name, value in top:
        assert isinstance(name, str) and math.isfinite(value)
        assert set(name.split(" ")) <= tokens  # features are the text's own tokens and n-grams
    assert [v for _, v in top] == sorted((v for _, v in top), reverse=True)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " " * 50_000,
        "a " * 100_000,
        "stock " * 100_000,
        "x" * 1_000_000,
        "\x00\x01\x1f\x7f" * 10_000,
        "<br />" * 20_000,
        "".join(chr(c) for c in range(0x20, 0xD800)),
        " ".join(WORDS) * 2_000,
    ],
    ids=["empty", "spaces", "a-100k", "stock-100k", "x-1M", "controls", "br", "bmp", "vocab"],
)
def test_giant_and_degenerate_texts(predictor, text):
    probs = predictor.probabilities([text])
    _check_probabilities(probs, 1, len(predictor.labels))
    np.testing.assert_array_equal(predictor.probabilities([text]), probs)
    batch = predictor.probabilities([text, "stock market profit", text])
    np.testing.assert_allclose(batch[[0, 2]], np.vstack([probs, probs]), rtol=0, atol=1e-6)
    predictor.explain(text)


def test_featureless_text_predicts_the_bias(predictor):
    # a text without a single token has no features: its logits are exactly the bias
    logits = predictor.logits(["", ' \t\n"";:<br />'])
    np.testing.assert_array_equal(logits, np.vstack([predictor.head.bias, predictor.head.bias]))


@PROPS
@given(st.lists(st.one_of(any_text, st.text(alphabet='a,"\r\n x', max_size=20)), min_size=2, max_size=5))
def test_csv_fields_read_back_and_match_the_csv_module(fields):
    line = ",".join(csv_field(f) for f in fields) + "\n"
    assert next(csv.reader(io.StringIO(line, newline=""))) == fields
    if not any("\r" in f for f in fields):  # csv.writer leaves "\r" unquoted with a "\n" terminator
        expected = io.StringIO()
        csv.writer(expected, lineterminator="\n").writerow(fields)
        assert line == expected.getvalue()


# tokens around the key-size boundaries (8 and 15 bytes), with NUL bytes and non-ASCII text
edge_token = st.one_of(
    st.text(alphabet="ab\x00é", min_size=1, max_size=20),
    st.sampled_from(["a" * n for n in (1, 7, 8, 9, 14, 15, 16, 17, 40)] + ["a\x00", "\x00", "<unk>"]),
)


@PROPS
@given(st.lists(edge_token, max_size=30, unique=True), st.lists(edge_token, max_size=60), st.data())
def test_token_table_finds_exactly_what_a_dict_finds(vocab, words, data):
    vocab_bytes = [encode_token(t) for t in vocab]
    table = TokenTable.build(vocab_bytes, range(len(vocab_bytes)), default=-7)
    index = {t: i for i, t in enumerate(vocab_bytes)}
    spaces = data.draw(st.lists(st.sampled_from([" ", "\t", "\n", "\r", "\x0b", "\x0c", "  "]), min_size=len(words)))
    text = "".join(w + s for w, s in zip(words, spaces, strict=False))
    encoded = encode_token(text)
    assert table.lookup(encoded).tolist() == [index.get(t, -7) for t in encoded.split()]
    # a model file stores the table's arrays: read back, it is the same table
    again = TokenTable.from_arrays(table.arrays(), default=-7)
    assert again.lookup(encoded).tolist() == table.lookup(encoded).tolist()
    tokens, ids = again.items()
    assert dict(zip(tokens, ids.tolist(), strict=True)) == index


@PROPS
@given(
    st.lists(any_text, min_size=1, max_size=8),
    st.lists(st.text(min_size=1, max_size=6), min_size=2, max_size=4, unique=True),
    st.data(),
)
def test_json_rows_are_the_records_dumped(texts, labels, data):
    k = data.draw(st.integers(1, len(labels)))
    tops = np.array([data.draw(st.permutations(range(len(labels))))[:k] for _ in texts])
    probs = np.round(
        np.array([sorted(data.draw(st.lists(st.floats(0, 1), min_size=k, max_size=k)))[::-1] for _ in texts]), 6
    )
    why = [data.draw(st.sampled_from([None, "no known tokens", "confidence below 0.5"])) for _ in texts]
    batch = Labeled(texts, tops, probs, why)
    records = records_of(batch, SimpleNamespace(labels=labels, task=TASKS["single_label"]), Options(k=k))
    assert json_rows(batch, labels) == [json.dumps(r, ensure_ascii=False) for r in records]
    assert [json.loads(row) for row in json_rows(batch, labels)] == records


def _predicted(predictor, texts: list[str], opts: Options, fmt: str) -> str:
    out = io.StringIO()
    write_labels(predictor, texts, opts, fmt, out)
    return out.getvalue()


def _csv_records(out: str) -> list[dict]:
    """predict's CSV read back into JSON records."""
    records = []
    for row in csv.DictReader(io.StringIO(out, newline="")):
        ranks = ["", *(f"_{i}" for i in range(2, (len(row) - 1) // 2 + 1))]
        top = [{"label": row[f"label{r}"], "probability": float(row[f"probability{r}"])} for r in ranks]
        record = {"text": row["text"], "label": None if row["abstained"] else row["label"]}
        record |= {"probability": top[0]["probability"], "top": top}
        records.append(record | ({"abstained": row["abstained"]} if row["abstained"] else {}))
    return records


def _check_table(out: str, records: list[dict], table: FixedTable, k: int) -> None:
    """predict's table against the records: k lines a text, its label (or "(label: abstained)")
    and probability to 4 places, the text (escaped, cut to its column with "...")."""
    lines = out.split("\n")[:-1]
    assert lines[:2] == table.header().splitlines()
    rows = lines[2:]
    assert len(rows) == k * len(records)
    for i, line in enumerate(rows):
        record, rank = records[i // k], i % k
        # from the right: probability, then the (ASCII) label column; the text column is what is left
        rest, number = line[:-NUMBER_WIDTH].removesuffix("   "), line[-NUMBER_WIDTH:].strip()
        text_cell, label_cell = rest[: -table.label_width].removesuffix("   "), rest[-table.label_width :].strip()
        expected = record["top"][rank]
        label = expected["label"] if rank or record["label"] is not None else f"({expected['label']}: abstained)"
        # the table rounds to 4 places and the JSON to 6: 0.05324951 reads 0.0532 and 0.05325
        assert label_cell == label and abs(float(number) - expected["probability"]) <= 5e-5 + 5e-7 + 1e-12
        text = shown(record["text"]) if rank == 0 else ""
        if text_cell.endswith("...") and text_cell.rstrip() != text.rstrip():
            assert text.startswith(text_cell[:-3].rstrip())
        else:
            assert text_cell.rstrip() == text.rstrip()


blankish = st.sampled_from(["", " ", "\t", "  \u3000 "])


@FEW
@given(st.lists(st.one_of(blankish, vocab_text, any_text), min_size=1, max_size=6), st.data())
def test_every_output_format_reads_back_as_the_json_records(predictor, texts, data):
    k = data.draw(st.integers(1, len(predictor.labels)))
    opts = Options(k=k, min_confidence=data.draw(st.sampled_from([0.0, 0.3, 0.6, 1.0])))
    records = json.loads(_predicted(predictor, texts, opts, "json"))
    assert [r["text"] for r in records] == texts and all(len(r["top"]) == k for r in records)
    jsonl = _predicted(predictor, texts, opts, "jsonl")  # "\n" ends a line; U+2028 may stand in a text
    assert [json.loads(line) for line in jsonl.split("\n")[:-1]] == records
    assert _csv_records(_predicted(predictor, texts, opts, "csv")) == records
    _check_table(_predicted(predictor, texts, opts, "table"), records, FixedTable(predictor.labels, False), k)


@FEW
@given(st.lists(st.one_of(vocab_text, any_text), min_size=1, max_size=40))
def test_many_texts_encode_as_each_one_alone(predictor, texts):
    # texts go through one joined byte string, or one by one when a text holds the separator
    together = predictor.encode(texts)
    alone = predictor._encode_each(texts)
    np.testing.assert_array_equal(together.offsets, alone.offsets)
    np.testing.assert_array_equal(together.ids, alone.ids)


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 5), max_size=40),
    data=st.data(),
    block=st.integers(1, 7),
    block_values=st.integers(1, 12),
    in_place=st.booleans(),
)
def test_select_rows_picks_the_rows_in_order(lengths, data, block, block_values, in_place):
    """Rows of a ragged array, in blocks of any size, copied or moved to the front in place."""
    import classify_cli.util.ragged as ragged

    rows = (
        sorted(data.draw(st.sets(st.integers(0, max(len(lengths) - 1, 0)), max_size=len(lengths)))) if lengths else []
    )
    offsets = ragged.offsets_from_lengths(np.array(lengths, dtype=np.int64))
    values = np.arange(offsets[-1], dtype=np.int32) * 7
    expected = [values[offsets[r] : offsets[r + 1]].tolist() for r in rows]
    original, saved = values.copy(), (ragged._BLOCK_ROWS, ragged._BLOCK_VALUES)
    whole = ragged.fingerprints(values, offsets)
    ragged._BLOCK_ROWS, ragged._BLOCK_VALUES = block, block_values
    try:
        out, new_offsets = ragged.select_rows(values, offsets, np.array(rows, dtype=np.int64), in_place=in_place)
        blocked = ragged.fingerprints(original, offsets)
    finally:
        ragged._BLOCK_ROWS, ragged._BLOCK_VALUES = saved
    np.testing.assert_array_equal(blocked, whole)  # a row's fingerprint does not depend on its block
    assert [out[new_offsets[i] : new_offsets[i + 1]].tolist() for i in range(len(rows))] == expected
    assert len(new_offsets) == len(rows) + 1 and new_offsets[-1] == len(out)
    if not in_place:
        assert (values == original).all()  # the input is left as it was


@PROPS
@given(
    st.lists(st.lists(st.text(max_size=3) | st.sampled_from(["\ud800", "é", "<unk>"]), max_size=8), max_size=10),
    st.data(),
)
def test_provisional_ids_are_a_dict_of_first_occurrences(docs, data):
    """prepare's compact token ids, merged after any documents: the ids a growing dict gives
    (each new token the next id), and the tokens back in id order, lone surrogates and all;
    with Python's str hash or the digest that stands in where it is narrower than 64 bits."""
    import classify_cli.data.token_ids as token_ids

    saved = token_ids._hash
    token_ids._hash = data.draw(st.sampled_from([hash, token_ids._digest]))
    try:
        _check_provisional_ids(token_ids.ProvisionalIds(), docs, data)
    finally:
        token_ids._hash = saved


def _check_provisional_ids(index, docs, data) -> None:
    reference, got, pending = {}, [], []
    for doc in docs:
        pending.extend(index.block_ids(doc))
        if data.draw(st.booleans()):  # a block ends here
            got.extend(index.merge(np.array(pending, dtype=np.int32)).tolist())
            pending = []
    got.extend(index.merge(np.array(pending, dtype=np.int32)).tolist())
    assert got == [reference.setdefault(t, len(reference)) for doc in docs for t in doc]
    assert index.tokens() == list(reference) and len(index) == len(reference)


@PROPS
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]))), st.integers(1, 4))
def test_a_json_list_written_in_slices_is_json_text(items, every):
    from classify_cli.util.fs import atomic_write_json_list, json_text

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "list.json"
        atomic_write_json_list(path, items, every)
        assert path.read_bytes() == json_text(items).encode("utf-8")


@PROPS
@given(
    token_lists,
    st.lists(st.text(min_size=1, max_size=4), max_size=5),
    st.integers(1, 4),
    st.one_of(st.none(), st.integers(2, 10)),
)
def test_vocab_from_id_counts_is_build_vocab(docs, unseen, min_freq, max_tokens):
    """prepare's vocabulary from provisional ids and counts: torchtext's, and every id mapped
    to its token's index (tokens only other splits hold, and <unk> itself, to <unk>'s)."""
    tokens = list(dict.fromkeys([t for doc in docs for t in doc] + unseen + [UNK]))
    counts = Counter(t for doc in docs for t in doc)
    vocab, remap = vocab_from_id_counts(
        tokens, np.array([counts[t] for t in tokens], dtype=np.int64), min_freq=min_freq, max_tokens=max_tokens
    )
    expected = build_vocab(docs, min_freq=min_freq, max_tokens=max_tokens)
    assert vocab.itos == expected.itos
    assert remap.tolist() == [expected[t] for t in tokens]
