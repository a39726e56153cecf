"""The training step's parts against torch's own: grouped backward, sparse clipping, SGD."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from classify_cli.model.feature_sets import FeatureSet
from classify_cli.model.task import TASKS
from classify_cli.train.loop import batches, train_step
from classify_cli.train.net import SGD, TextClassifier, clip_grad_norm


def _feature_set(seed: int, n_docs: int = 40, rows: int = 30) -> FeatureSet:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 12, size=n_docs)  # empty documents too
    feats = rng.integers(0, rows, size=lengths.sum()).astype(np.int32)  # many repeated rows
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    row_weight = rng.random(rows).astype(np.float32)  # norms of 1: each occurrence weighs its row's weight
    return FeatureSet(feats, offsets, np.ones(n_docs), rng.integers(0, 3, size=n_docs), row_weight)


def _model(rows: int = 30, seed: int = 0) -> TextClassifier:
    torch.manual_seed(seed)
    return TextClassifier(rows, 8, 3)


def _grads(model, batch, grouped: bool):
    model.zero_grad()
    logits = model(batch.feats, batch.offsets, batch.weights, batch.grouping if grouped else None)
    F.cross_entropy(logits, batch.labels).backward()
    model.flag_row_summed_gradient(batch.grouping if grouped else None)
    return model.embedding.weight.grad, model.fc.weight.grad.clone()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grouped_backward_is_embeddingbags_gradient_summed_by_row(seed):
    data = _feature_set(seed)
    model = _model()
    batch = next(batches(data, 16, torch.device("cpu"), for_training=True))
    grouped, fc_grouped = _grads(model, batch, grouped=True)
    plain, fc_plain = _grads(model, batch, grouped=False)
    assert grouped.is_sparse and grouped.is_coalesced()
    # one row per distinct feature of the batch, none repeated
    assert grouped._indices()[0].tolist() == sorted(set(batch.feats.tolist()))
    torch.testing.assert_close(grouped.to_dense(), plain.coalesce().to_dense())
    torch.testing.assert_close(fc_grouped, fc_plain)


def test_clip_grad_norm_matches_torch_on_dense_copies():
    data = _feature_set(3)
    model = _model()
    batch = next(batches(data, 16, torch.device("cpu"), for_training=True))
    _grads(model, batch, grouped=True)
    dense = [p.grad.to_dense() if p.grad.is_sparse else p.grad.clone() for p in model.parameters()]
    params = [torch.zeros_like(g, requires_grad=True) for g in dense]
    for p, g in zip(params, dense, strict=True):
        p.grad = g.clone()
    expected = torch.nn.utils.clip_grad_norm_(params, 0.01)
    total = clip_grad_norm(list(model.parameters()), 0.01)
    assert total == pytest.approx(float(expected), rel=1e-5)
    assert total > 0.01  # the test clips for real
    for p, expected_grad in zip(model.parameters(), params, strict=True):
        torch.testing.assert_close(p.grad.to_dense() if p.grad.is_sparse else p.grad, expected_grad.grad)
    assert model.embedding.weight.grad.is_coalesced()


def test_sgd_takes_the_same_steps_as_torch_sgd():
    data = _feature_set(4)
    ours, theirs = _model(), _model()
    theirs.load_state_dict(ours.state_dict())
    opt_ours = SGD(ours.parameters(), lr=0.7)
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.7)
    for batch in batches(data, 8, torch.device("cpu"), for_training=True):
        train_step(ours, batch, opt_ours, clip_norm=5.0, task=TASKS["single_label"])
        # torch's SGD on torch's own sparse gradient, coalesced as clipping requires
        opt_theirs.zero_grad()
        logits = theirs(batch.feats, batch.offsets, batch.weights)
        F.cross_entropy(logits, batch.labels).backward()
        clip_grad_norm(list(theirs.parameters()), 5.0)
        opt_theirs.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert not torch.equal(ours.fc.weight, _model().fc.weight)  # it did move
