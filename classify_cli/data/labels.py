"""Labels as prepared data stores them, for either task: one class index per document (a 1-D
int64 array, ``single_label``), or which labels apply to each document (a 2-D uint8 0/1
array of documents x labels, ``multi_label``; a row may be all zeros). Whatever counts or
splits documents by label asks here, so neither task's layout is known anywhere else.
"""

from __future__ import annotations

import numpy as np

SINGLE_LABEL, MULTI_LABEL = "single_label", "multi_label"
TASK_NAMES = (SINGLE_LABEL, MULTI_LABEL)


def task_of_labels(labels: np.ndarray) -> str:
    return MULTI_LABEL if labels.ndim == 2 else SINGLE_LABEL


def label_counts(labels: np.ndarray, n_labels: int) -> np.ndarray:
    """How many documents carry each label."""
    if labels.ndim == 2:
        return labels.sum(axis=0, dtype=np.int64)
    return np.bincount(labels, minlength=n_labels)


def label_shares(labels: np.ndarray, n_labels: int) -> np.ndarray:
    """Each label's share of the label occurrences (sums to 1 where there are any)."""
    counts = label_counts(labels, n_labels).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def strata(labels: np.ndarray) -> np.ndarray:
    """One class per document to stratify on. Several labels: the document's rarest label (its
    own class where it has none), so a rare label's share is kept exactly in every part and a
    common one's nearly (it is spread at random among the others' strata)."""
    if labels.ndim == 1:
        return labels
    counts = labels.sum(axis=0, dtype=np.int64)
    rank = np.where(labels.astype(bool), counts[None, :], np.iinfo(np.int64).max)
    rarest = rank.argmin(axis=1)
    return np.where(labels.any(axis=1), rarest, labels.shape[1])


def multi_hot(counts: np.ndarray, flat: np.ndarray, n_labels: int) -> np.ndarray:
    """The 0/1 array of documents whose labels are ``flat``, ``counts[i]`` of them for document i
    (an index of -1 is a label to drop)."""
    out = np.zeros((len(counts), n_labels), dtype=np.uint8)
    docs = np.repeat(np.arange(len(counts)), counts)
    keep = flat >= 0
    out[docs[keep], flat[keep]] = 1
    return out


def per_label_docs(labels: np.ndarray, label: int) -> np.ndarray:
    """Whether each document carries ``label``."""
    return labels[:, label].astype(bool) if labels.ndim == 2 else labels == label
