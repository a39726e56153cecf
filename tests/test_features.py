"""Feature weights from the train split: document frequencies per class and class focus."""

import numpy as np
import pytest

from classify_cli.data.prepared import Split
from classify_cli.model.feature_sets import fit_features
from classify_cli.model.features import class_document_frequency, class_focus
from classify_cli.util.config import ModelConfig


@pytest.mark.parametrize("one_pass", [True, False])
def test_class_document_frequency_counts_documents_not_occurrences(monkeypatch, one_pass):
    import classify_cli.model.features as features

    monkeypatch.setattr(features, "ONE_PASS_CLASSES", 8 if one_pass else 0)  # one bincount, or one per class
    docs = [[1, 1, 2], [2, 3], [], [1, 3, 3]]
    labels = np.array([0, 1, 1, 0])
    rows = np.array([r for d in docs for r in d])
    offsets = np.cumsum([0] + [len(d) for d in docs])
    got = class_document_frequency(rows, offsets, labels, num_rows=5, num_classes=2)
    expected = np.zeros((5, 2), dtype=np.int64)
    for doc, label in zip(docs, labels, strict=True):
        for r in set(doc):
            expected[r, label] += 1
    assert got.tolist() == expected.tolist()


def test_class_focus_rewards_features_of_one_class():
    prior = np.array([0.25, 0.25, 0.25, 0.25])
    class_df = np.array(
        [
            [40, 0, 0, 0],  # only in class 0, often
            [1, 0, 0, 0],  # only in class 0, once: the pseudo-document tempers it
            [10, 10, 10, 10],  # spread like the classes
            [0, 0, 0, 0],  # never seen: the prior
            [20, 20, 0, 0],  # two classes
        ]
    )
    focus = class_focus(class_df, prior, strength=4.0)
    assert focus[0] > focus[4] > focus[2] and focus[0] > focus[1] > focus[2]
    assert focus[2] == pytest.approx(1.0, abs=0.01) and focus[3] == pytest.approx(1.0)
    assert np.all((focus >= 1.0) & (focus <= 5.0))
    assert class_focus(class_df, prior, strength=0.0).tolist() == [1.0] * 5
    assert class_focus(class_df[:, :1], prior[:1], strength=4.0).tolist() == [1.0] * 5  # one class: no signal


def test_ngram_weight_scales_ngram_rows_only():
    docs = [[0, 1, 2], [1, 2, 3, 1], [3, 4], [0, 4, 4, 2]]
    split = Split(
        np.array([t for d in docs for t in d]), np.cumsum([0] + [len(d) for d in docs]), np.array([0, 1, 1, 0])
    )
    full, full_set = fit_features(split, 5, ModelConfig(buckets=97, ngram_weight=1.0), num_classes=2)
    half, half_set = fit_features(split, 5, ModelConfig(buckets=97, ngram_weight=0.5), num_classes=2)
    assert full.row_map.num_rows == half.row_map.num_rows > 5 + 1  # words, seen bigrams, the unseen row
    np.testing.assert_allclose(half.idf[:5], full.idf[:5])
    np.testing.assert_allclose(half.idf[5:], 0.5 * full.idf[5:], rtol=1e-6)
    assert half.unseen_idf() == pytest.approx(0.5 * full.unseen_idf())
    # the bag weights follow: within a document, an n-gram now weighs half as much against a word
    rows, offsets = full_set.all_rows()
    is_ngram = rows >= 5
    ratio = half_set.all_weights() / full_set.all_weights()
    for d in range(len(docs)):
        lo, hi = offsets[d], offsets[d + 1]
        words, ngrams = ratio[lo:hi][~is_ngram[lo:hi]], ratio[lo:hi][is_ngram[lo:hi]]
        np.testing.assert_allclose(ngrams, 0.5 * words[0], rtol=1e-5)
        np.testing.assert_allclose(words, words[0], rtol=1e-5)


@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("stored", [True, False])
def test_a_batch_of_documents_has_the_rows_the_whole_split_has(monkeypatch, stored, dense):
    """A batch's rows, kept from fitting or made from its token ids (in any order, any subset),
    are the rows of the whole split featurized at once, chunk boundaries and all."""
    import classify_cli.model.feature_sets as feature_sets
    import classify_cli.model.features as features

    monkeypatch.setattr(feature_sets, "CHUNK_DOCS", 3)  # fitting passes over several chunks
    monkeypatch.setattr(feature_sets, "STORED_FEATURES", feature_sets.STORED_FEATURES if stored else 0)
    monkeypatch.setattr(
        features, "DENSE_FROM", 0 if dense else features.DENSE_FROM
    )  # feature -> row table, or searches
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 20, rng.integers(0, 7)).tolist() for _ in range(25)]
    split = Split(
        np.array([t for d in docs for t in d], dtype=np.int32),
        np.cumsum([0] + [len(d) for d in docs]),
        rng.integers(0, 3, len(docs)),
    )
    fitted, train_set = fit_features(split, 20, ModelConfig(buckets=31), num_classes=3)
    assert (train_set.row_map is None) == stored == fitted.stores
    rows, offsets = fitted.row_map.rows(split.ids, split.offsets)
    for chosen in (rng.permutation(len(docs)), rng.permutation(len(docs))[:7], np.array([4, 4, 0])):
        got, got_offsets = train_set.gather(chosen)
        expected = [rows[offsets[d] : offsets[d + 1]].tolist() for d in chosen]
        assert [got[got_offsets[i] : got_offsets[i + 1]].tolist() for i in range(len(chosen))] == expected
        assert got.dtype == np.int32
    # each document's norm from the rows of its own chunk, as the whole split gives it
    whole = features.doc_norms(offsets, fitted.idf[rows], features.norm_of(fitted.spec.weighting))
    np.testing.assert_allclose(train_set.norms, whole)


@pytest.mark.parametrize("kept_words", [None, np.array([0, 3, 4, 9])])
def test_the_feature_to_row_table_is_the_searches(kept_words):
    """Large lookups go through one feature -> row array; it gives the rows binary searches
    give: words (all, or a compressed model's kept ones, the rest on the unseen row), seen
    buckets in order, unseen ones on the shared zero row."""
    from classify_cli.model.features import FeatureSpec, RowMap

    spec = FeatureSpec(vocab_size=10, ngrams=2, buckets=20, weighting="tfidf-l2")
    feats = np.arange(spec.num_features)
    searched = RowMap(spec, np.array([1, 5, 6, 19]), kept_words).to_rows(feats)  # few: searches
    dense = RowMap(spec, np.array([1, 5, 6, 19]), kept_words)
    assert dense._dense()[feats].tolist() == searched.tolist()
    assert dense.to_rows(feats).tolist() == searched.tolist()  # the table, once built, serves any lookup
    n_words = 10 if kept_words is None else 4
    assert searched[10 + np.array([1, 5, 6, 19])].tolist() == list(range(n_words, n_words + 4))
    assert set(searched[10 + np.array([0, 2, 18])].tolist()) == {n_words + 4}  # unseen buckets: the zero row
