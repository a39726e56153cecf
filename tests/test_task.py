"""The task seam: what "one label per text" means is asked of ``model/task.py``, so the trainer,
predict and evaluate follow a model's task, and another task is one class and one entry."""

import json
import math

import numpy as np
import pytest
import torch

from classify_cli.model import task as task_module
from classify_cli.model.task import TASKS, SingleLabel

from .conftest import edit_json

SINGLE = TASKS["single_label"]


def test_single_label_decides_the_top_k_and_abstains_by_its_rule():
    probs = np.array([[0.1, 0.7, 0.2], [0.4, 0.35, 0.25], [0.2, 0.5, 0.3]])
    decision = SINGLE.decide(probs, known=np.array([3, 2, 0]), k=2, min_confidence=0.5)
    assert decision.tops.tolist() == [[1, 2], [0, 1], [1, 2]]
    assert decision.top_probs.tolist() == [[0.7, 0.2], [0.4, 0.35], [0.5, 0.3]]
    assert decision.abstained == [None, "confidence below 0.5", "no known tokens"]
    assert SINGLE.decide(probs, np.ones(3), k=9, min_confidence=0).tops.shape == (3, 3)  # k at most the classes


def test_its_loss_is_the_mean_cross_entropy_and_a_guess_costs_ln_c():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    targets = torch.tensor([0, 1])
    by_hand = -(torch.log_softmax(logits, 1)[torch.arange(2), targets]).mean()
    assert torch.allclose(SINGLE.loss(logits, targets), by_hand)
    assert torch.allclose(SINGLE.loss(logits, targets, reduction="sum"), 2 * by_hand)
    assert SINGLE.loss(torch.zeros(4, 5), torch.tensor([0, 1, 2, 3])).item() == pytest.approx(SINGLE.guess_loss(5))
    assert SINGLE.guess_loss(4) == math.log(4)
    assert SINGLE.tally(logits, targets).tolist() == [1] and SINGLE.score([1], 2) == 0.5
    probs = SINGLE.probabilities(logits.numpy())
    assert np.allclose(probs.sum(axis=1), 1) and probs.dtype == np.float64


def test_a_model_records_its_task_and_an_older_model_answers_one_label(invoke, trained, tmp_path):
    import shutil

    _, _, run = trained
    assert json.loads((run / "model.json").read_text())["task"] == "single_label"
    before = invoke("predict", "--model", run, "--format", "json", "shares profit market")
    older = tmp_path / "older"
    shutil.copytree(run, older)
    edit_json(older / "model.json", lambda meta: meta.pop("task"))  # as models made before the task was kept
    after = invoke("predict", "--model", older, "--format", "json", "shares profit market")
    assert before.exit_code == after.exit_code == 0
    assert before.stdout == after.stdout


def test_a_model_of_an_unknown_task_is_refused(invoke, trained, tmp_path):
    import shutil

    _, _, run = trained
    shutil.copytree(run, tmp_path / "odd")
    edit_json(tmp_path / "odd" / "model.json", lambda meta: meta.update(task="many_labels"))
    result = invoke("predict", "--model", tmp_path / "odd", "shares profit market")
    assert result.exit_code == 2
    assert "unknown task 'many_labels'" in result.stderr


class Shouting(SingleLabel):
    """A second task for the test: one label per text, written in capitals."""

    name = "shouting"

    def record(self, labels, top, probs, why, chosen=None):
        return {**super().record(labels, top, probs, why), "label": labels[top[0]].upper()}


def test_a_new_task_is_one_class_and_one_table_entry(invoke, trained, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setitem(task_module.TASKS, "shouting", Shouting())
    _, _, run = trained
    shutil.copytree(run, tmp_path / "loud")
    edit_json(tmp_path / "loud" / "model.json", lambda meta: meta.update(task="shouting"))
    plain = json.loads(invoke("predict", "--model", run, "--format", "json", "shares profit market").stdout)
    result = invoke("predict", "--model", tmp_path / "loud", "--format", "json", "shares profit market")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["label"] == plain["label"].upper()
