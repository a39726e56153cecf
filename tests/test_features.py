"""Feature weights from the train split: document frequencies per class and class focus."""

import numpy as np
import pytest

from classify_cli.features import class_document_frequency, class_focus


def test_class_document_frequency_counts_documents_not_occurrences():
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
