"""The corpora the defaults are checked on: folds that partition, long documents of one class."""

import random
import re

from .corpora import k_folds, long_documents, samples


def _rows(n: int) -> list[list[str]]:
    return [[str(1 + i % 4), f"title {i}", f"text {i}"] for i in range(n)]


def test_k_folds_partition_the_rows():
    rows = _rows(23)
    folds = k_folds(rows, 4, seed=0)
    held = [r[1] for _, test in folds for r in test]
    assert sorted(held) == sorted(r[1] for r in rows)  # every row held out exactly once
    for train, test in folds:
        assert len(train) + len(test) == len(rows)
        assert not {r[1] for r in train} & {r[1] for r in test}


def test_samples_test_on_the_rest():
    rows = _rows(50)
    for train, test in samples(rows, 10, seed=1):
        assert len(train) == 10 and len(test) == 40
        assert not {r[1] for r in train} & {r[1] for r in test}


def test_long_documents_join_k_articles_of_one_class():
    rows = _rows(41)
    docs = long_documents(rows, 3, random.Random(0))
    assert len(docs) == sum(sum(1 for r in rows if r[0] == c) // 3 for c in "1234")
    by_title = {r[1]: r for r in rows}
    for label, title, text in docs:
        titles = re.findall(r"title \d+", text)
        assert len(titles) == 3 and title == titles[0]
        assert all(by_title[t][0] == label and f"{t}. {by_title[t][2]}" in text for t in titles)
    assert [r[1] for r in rows] == [f"title {i}" for i in range(41)]  # the input is left as it was
