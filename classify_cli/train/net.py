"""The classifier: a bag of embeddings and one linear layer.

    logits = W · (sum_i w_i · E[f_i]) + b

``nn.EmbeddingBag`` gathers and sums the embedding rows ``E[f_i]`` of a document's features
with weights ``w_i`` (``mean``: 1/length each; ``tfidf``: IDF weights adding up to 1;
``tfidf-l2``: IDF weights whose squares add up to 1, see ``features.py``); ``nn.Linear`` maps
that vector to one logit per class. softmax(logits) are the class probabilities and
cross-entropy against the true class is the loss (``F.cross_entropy`` does both at once).
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..model.features import RowMap
from ..model.head import TRAINING
from ..util.errors import BundleError, InputError


class Grouping(NamedTuple):
    """A batch's feature occurrences grouped by table row, worked out before the step.

    ``rows`` are the distinct rows the batch uses (sorted); the occurrences of ``rows[j]``
    are ``starts[j]`` to ``starts[j + 1]`` of ``bags`` (the document of each occurrence) and
    ``weights`` (its weight). The gradient of the sum is then one row per distinct feature,
    already summed: what ``coalesce()`` computes by sorting every occurrence at every step.
    """

    rows: torch.Tensor
    starts: torch.Tensor
    bags: torch.Tensor
    weights: torch.Tensor


class _GroupedBagSum(torch.autograd.Function):
    """``embedding_bag(mode="sum")`` whose backward gives the sparse gradient row-summed.

    Row j of the gradient is sum_i w_i · g[bag_i] over the occurrences i of feature
    ``rows[j]``: itself a weighted bag sum, of the output gradient's rows, which
    ``embedding_bag`` computes at once for every distinct feature.
    """

    @staticmethod
    def forward(ctx, weight, feats, offsets, per_sample_weights, grouping: Grouping):
        ctx.grouping = grouping
        ctx.table_shape = weight.shape
        # detached: torch's forward-only kernel, without the bookkeeping its own backward needs
        return F.embedding_bag(feats, weight.detach(), offsets, mode="sum", per_sample_weights=per_sample_weights)

    @staticmethod
    def backward(ctx, grad_output):
        g: Grouping = ctx.grouping
        values = F.embedding_bag(g.bags, grad_output, g.starts, mode="sum", per_sample_weights=g.weights)
        grad = torch.sparse_coo_tensor(
            g.rows.unsqueeze(0), values, ctx.table_shape, is_coalesced=True, check_invariants=False
        )
        return grad, None, None, None, None


class TextClassifier(nn.Module):
    def __init__(self, num_features: int, embed_dim: int, num_classes: int, *, sparse: bool = True):
        super().__init__()
        # sparse=True: each step touches only the rows of the batch's features, instead of
        # materializing a dense gradient for every row of a table of millions
        self.embedding = nn.EmbeddingBag(num_features, embed_dim, mode="sum", sparse=sparse)
        self.fc = nn.Linear(embed_dim, num_classes)

    def init_weights(self, vocab_size: int, generator: torch.Generator, log_prior: torch.Tensor) -> None:
        # word rows small and random (as in the PyTorch tutorial, scaled to the dimension);
        # n-gram rows start at zero, and the shared row of unseen buckets stays zero
        bound = 1.0 / self.embedding.embedding_dim
        with torch.no_grad():
            self.embedding.weight.zero_()
            self.embedding.weight[:vocab_size].uniform_(-bound, bound, generator=generator)
            self.fc.weight.uniform_(-0.5, 0.5, generator=generator)
            # the bias is the log class prior of the train split, and is not trained: at the
            # step sizes the embeddings need, a trained bias swung between classes and stalled
            # the first epochs, and collapsed training on small corpora (measured: 0.52 test
            # accuracy on 1,000 AG News documents, against 0.80 with the bias fixed)
            self.fc.bias.copy_(log_prior)
        self.fc.bias.requires_grad_(False)

    def start_from_vectors(self, rows: np.ndarray, known: np.ndarray, extra: np.ndarray, scale: float) -> None:
        """The first columns of word rows start from pretrained vectors (times ``scale``): the
        vocabulary's words that have one (``known``), then the words after the vocabulary
        (``extra``). The learned columns after them start at zero: the model starts as the
        vectors' and learns there what they do not know (on tweets, which account writes how)."""
        with torch.no_grad():
            weight = self.embedding.weight
            dim = rows.shape[1]
            weight[:, dim:] = 0
            ids = torch.from_numpy(np.flatnonzero(known))
            weight[ids, :dim] = torch.from_numpy(rows[known]).mul_(scale)
            weight[len(known) : len(known) + len(extra), :dim] = torch.from_numpy(extra).mul(scale)

    def forward(
        self, feats: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor, grouping: Grouping | None = None
    ) -> torch.Tensor:
        """Logits. With a ``grouping`` (training), the embedding's gradient comes out row-summed."""
        if grouping is None or not self.embedding.sparse:
            return self.fc(self.embedding(feats, offsets, per_sample_weights=weights))
        return self.fc(_GroupedBagSum.apply(self.embedding.weight, feats, offsets, weights, grouping))

    def flag_row_summed_gradient(self, grouping: Grouping | None) -> None:
        """After a backward pass with ``grouping``: the embedding's gradient has one row per
        feature, but autograd's accumulation into ``.grad`` drops the flag that says so, and
        ``coalesce()`` would sort it all again."""
        grad = self.embedding.weight.grad
        if grouping is not None and grad is not None and grad.is_sparse:
            grad._coalesced_(True)


def clip_grad_norm(parameters: list[nn.Parameter], max_norm: float) -> float:
    """``clip_grad_norm_`` that also handles sparse gradients (torch's does not).

    Scales every gradient by ``max_norm / norm`` when that is below 1; returns the norm.
    """
    grads = []
    for p in parameters:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()  # duplicate rows must be summed before taking the norm
            grads.append(p.grad._values())  # scaled in place: a sparse mul_ would un-coalesce
        else:
            grads.append(p.grad)
    if not grads:
        return 0.0
    total = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for g in grads:
            g.mul_(scale)
    return total


def _compiles_nothing(*methods) -> None:
    """torch wraps these ``Optimizer`` methods so that ``torch.compile`` leaves them alone, and
    the wrapper imports ``torch._dynamo`` at its first call: a second of every training run's
    start-up (a third of an AG-size run). Nothing here is compiled, so each is marked as
    wrapped already (the mark torch caches), and the methods run as written."""
    for method in methods:
        fn = getattr(method, "__wrapped__", None)
        if fn is not None and getattr(fn, "__dynamo_disable", None) is None:
            setattr(fn, "__dynamo_disable", fn)


Optimizer = torch.optim.Optimizer
_compiles_nothing(Optimizer.add_param_group, Optimizer.zero_grad, Optimizer.state_dict, Optimizer.load_state_dict)


class SGD(torch.optim.Optimizer):
    """Plain SGD, θ ← θ − η∇L, as ``torch.optim.SGD`` without momentum computes it.

    A sparse gradient (one row per distinct feature, coalesced) updates only its rows, by
    gathering them, subtracting and writing them back: on CPU three times faster than the
    sparse add ``torch.optim.SGD`` does, and the step was the costliest part of training.
    """

    def __init__(self, params, lr: float):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ARG002 (the Optimizer interface)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    grad = p.grad.coalesce()
                    rows = grad._indices()[0]
                    p.index_put_((rows,), p.index_select(0, rows).sub_(grad._values(), alpha=group["lr"]))
                else:
                    p.sub_(p.grad, alpha=group["lr"])


def export_tensors(model: TextClassifier, row_map: RowMap) -> dict[str, np.ndarray]:
    """The weights a bundle keeps: word rows, the n-gram rows seen in training, the layer."""
    weight = model.embedding.weight.detach().cpu()
    vocab = row_map.spec.vocab_size
    parts = (weight[:vocab], weight[vocab : row_map.unseen_row], model.fc.weight.detach(), model.fc.bias.detach())
    return dict(zip(TRAINING, (p.cpu().numpy().copy() for p in parts), strict=True)) | {
        "ngram_buckets": row_map.seen_buckets.copy()
    }


def import_tensors(model: TextClassifier, tensors: dict[str, np.ndarray], row_map: RowMap) -> None:
    """Load exported weights back (the unseen-bucket row stays zero)."""
    vocab = row_map.spec.vocab_size
    stored, built = tuple(tensors["word_embedding"].shape), (vocab, model.embedding.embedding_dim)
    if stored != built:  # e.g. a vectors run checkpointed before the learned columns came
        raise BundleError(
            f"the checkpoint's word table is {stored[0]:,} x {stored[1]}, but this version of classify builds "
            f"{built[0]:,} x {built[1]} from its config: it cannot resume; train the run again"
        )
    with torch.no_grad():
        weight = model.embedding.weight
        weight.zero_()
        weight[:vocab].copy_(torch.from_numpy(tensors["word_embedding"]))
        weight[vocab : row_map.unseen_row].copy_(torch.from_numpy(tensors["ngram_embedding"]))
        model.fc.weight.copy_(torch.from_numpy(tensors["fc_weight"]))
        model.fc.bias.copy_(torch.from_numpy(tensors["fc_bias"]))


@torch.no_grad()
def class_table(model: TextClassifier, row_map: RowMap) -> dict[str, np.ndarray]:
    """The model's scoring form before IDF: ``E Wᵀ`` (one row of class scores per feature with
    a row of its own) and the bias: all the best epoch needs to keep, a few columns a row
    instead of the embedding's many."""
    table = model.embedding.weight[: row_map.unseen_row] @ model.fc.weight.T
    return {"table": table.cpu().numpy().copy(), "bias": model.fc.bias.detach().cpu().numpy().copy()}


def all_finite(tensors: dict[str, np.ndarray]) -> bool:
    return all(np.isfinite(t).all() for t in tensors.values() if t.dtype.kind == "f")


def check_memory(num_rows: int, embed_dim: int, classes: int, val_docs: int, copies: int = 1) -> None:
    """Refuse, before allocating them, tables that would not fit in 80% of this machine's memory:
    per rank (``copies`` share the machine), the embedding table and a rows x classes table (the
    class counts of tfidf's weighting, then the class scores); on the rank that saves, two more
    class-score tables (the best epoch's and the bundle's) and each validation document's logits
    and probabilities (float32 and twice float64 per class)."""
    table = (num_rows + 1) * classes * 4
    need = copies * (num_rows * embed_dim * 4 + table) + 2 * table + val_docs * classes * 20
    have = machine_memory()
    if have is not None and need > 0.8 * have:
        raise InputError(
            f"an embedding table of {num_rows:,} rows x {embed_dim} (model.embed_dim) and class-score tables "
            f"of {num_rows:,} rows x {classes:,} classes"
            + (f", one per rank on this machine ({copies})," if copies > 1 else "")
            + f" need {need / 2**30:.1f} GiB; this machine has {have / 2**30:.1f} GiB: "
            "lower model.embed_dim or model.buckets, or use fewer classes"
        )


def machine_memory() -> int | None:
    """This machine's memory in bytes, where the system says."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None
