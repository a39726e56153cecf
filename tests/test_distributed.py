"""Training with several ranks: torchrun with gloo on this machine's CPU, for real.

Runs under ``torchrun --standalone`` or, where a test needs to reach one rank (a different
config, a kill), as two ``classify train`` processes given the environment torchrun gives.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from classify_cli.data.prepared import load_prepared
from classify_cli.model.feature_sets import fit_features
from classify_cli.model.task import TASKS
from classify_cli.train.distributed import World
from classify_cli.train.loop import batches, train_step
from classify_cli.train.net import TextClassifier
from classify_cli.util.config import load_config

from .conftest import SHARED_DATA, assert_same_model, make_rows, training_under_way, write_header_csv

CLASSIFY = [sys.executable, "-m", "classify_cli"]
TORCHRUN = [
    sys.executable,
    "-m",
    "torch.distributed.run",
    "--standalone",
    "--nproc-per-node",
    "2",
    "-m",
    "classify_cli",
]
CONFIG = (
    '[model]\nembed_dim = 8\nbuckets = 1000\n[train]\nepochs = {epochs}\nbatch_size = 8\npatience = 0\ndevice = "cpu"\n'
)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    corpus = root / "corpus"
    corpus.mkdir()
    write_header_csv(corpus / "train.csv", make_rows(100, seed=1))
    config = root / "c.toml"
    config.write_text(CONFIG.format(epochs=3))
    subprocess.run([*CLASSIFY, "prepare", "--from", corpus, "--out", root / "data"], check=True, capture_output=True)
    return root / "data", config


def torchrun(*args, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*TORCHRUN, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def our_lines(stderr: str) -> list[str]:
    """Lines classify wrote (torchrun adds its own warnings and reports)."""
    return [line for line in stderr.splitlines() if line.startswith(("error:", "warning:", "features:", "epoch"))]


def launch_ranks(*per_rank: list, env: dict | None = None, command: list | None = None) -> list[subprocess.Popen]:
    """``classify train`` (or ``command``) once per rank, joined as torchrun would join them
    (one node, a free port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = os.environ | {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(len(per_rank))}
    return [
        subprocess.Popen(
            [*(command or [*CLASSIFY, "train"]), *map(str, args)],
            env=common | {"RANK": str(r), "LOCAL_RANK": str(r)} | (env or {}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r, args in enumerate(per_rank)
    ]


def finish(procs: list[subprocess.Popen], timeout: float = 120) -> list[tuple[int, str]]:
    errors = [p.communicate(timeout=timeout)[1] for p in procs]
    return [(p.returncode, e) for p, e in zip(procs, errors, strict=True)]


# --- the arithmetic: ranks' shares add up to the one-process gradient -------------------------


@pytest.mark.parametrize("ranks", [2, 3])
def test_shares_of_a_batch_add_up_to_its_gradient(prepared, ranks):
    """Each rank's gradient of its share of the batch mean, summed over the ranks, is the whole
    batch's gradient, over the same rows; including a last batch with fewer documents than ranks."""
    data = load_prepared(prepared[0], ("train",))
    cfg = load_config(prepared[1])
    features, train_set = fit_features(data.splits["train"], len(data.vocab), cfg.model, len(data.labels))
    order = np.random.default_rng(0).permutation(len(train_set))[: 2 * 8 + 1]  # the last batch: 1 document

    def gradients(model, batch, n):
        model.zero_grad()
        logits = model(batch.feats, batch.offsets, batch.weights, batch.grouping)
        (torch.nn.functional.cross_entropy(logits, batch.labels, reduction="sum") / n).backward()
        model.flag_row_summed_gradient(batch.grouping)
        return model.embedding.weight.grad, model.fc.weight.grad.clone()

    model = TextClassifier(features.row_map.num_rows, 8, len(data.labels))
    model.init_weights(features.spec.vocab_size, torch.Generator().manual_seed(0), torch.zeros(len(data.labels)))
    cpu = torch.device("cpu")
    whole = list(batches(train_set, 8, cpu, order, for_training=True))
    shares = [list(batches(train_set, 8, cpu, order, for_training=True, world=World(r, ranks))) for r in range(ranks)]
    for i, batch in enumerate(whole):
        n = len(batch.labels)
        table, fc = gradients(model, batch, n)
        summed_fc = torch.zeros_like(fc)
        summed_rows = torch.zeros_like(table._values())
        for rank in range(ranks):
            share = shares[rank][i]
            assert torch.equal(share.grouping.rows, batch.grouping.rows)  # every rank: the batch's rows
            if len(share.labels):
                t, f = gradients(model, share, n)
                summed_rows += t._values()
                summed_fc += f
        assert sum(len(s[i].labels) for s in shares) == n
        assert torch.allclose(summed_rows, table._values(), atol=1e-6)
        assert torch.allclose(summed_fc, fc, atol=1e-6)


def test_one_rank_world_trains_as_before(prepared):
    """train_step with the one-rank world is plain training: the batch's mean loss, no communication."""
    data = load_prepared(prepared[0], ("train",))
    cfg = load_config(prepared[1])
    features, train_set = fit_features(data.splits["train"], len(data.vocab), cfg.model, len(data.labels))
    model = TextClassifier(features.row_map.num_rows, 8, len(data.labels))
    model.init_weights(features.spec.vocab_size, torch.Generator().manual_seed(0), torch.zeros(len(data.labels)))
    batch = next(batches(train_set, 8, torch.device("cpu"), for_training=True))
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model(batch.feats, batch.offsets, batch.weights), batch.labels)
    loss, stop = train_step(
        model, batch, torch.optim.SGD(model.parameters(), lr=0.1), 1.0, stop=True, task=TASKS["single_label"]
    )
    assert stop and loss == pytest.approx(expected.item(), rel=1e-6)


# --- torchrun, end to end ---------------------------------------------------------------------


def test_two_ranks_train_one_model_evaluate_and_repeat_exactly(prepared, tmp_path, invoke):
    data, config = prepared
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        done = torchrun("train", "--data", data, "--out", run, "--config", config)
        assert done.returncode == 0, done.stderr
        summary = [json.loads(line) for line in done.stdout.splitlines()]
        assert len(summary) == 1 and summary[0]["out"] == str(run)  # rank 0 reports, once
        assert sum(line.startswith("epoch") for line in our_lines(done.stderr)) == 3
    assert json.loads((runs[0] / "model.json").read_text())["world_size"] == 2
    assert_same_model(*runs)  # same seed, same world size: the same run
    single = tmp_path / "single"
    assert invoke("train", "--data", data, "--out", single, "--config", config).exit_code == 0
    assert json.loads((single / "model.json").read_text())["world_size"] == 1
    reports = [json.loads(invoke("evaluate", "--model", r, "--format", "json").stdout) for r in (runs[0], single)]
    assert abs(reports[0]["accuracy"] - reports[1]["accuracy"]) <= 0.02
    info = json.loads(invoke("info", runs[0], "--format", "json").stdout)
    assert info["train"]["ranks"] == 2


def test_interrupted_two_rank_run_resumes_exactly(prepared, tmp_path):
    data, _ = prepared
    config = tmp_path / "long.toml"
    config.write_text(CONFIG.format(epochs=12))
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert torchrun("train", "--data", data, "--out", full, "--config", config).returncode == 0
    proc = training_under_way([*TORCHRUN, "train", "--data", data, "--out", cut, "--config", config])
    workers = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    os.kill(workers[-1], signal.SIGTERM)  # one rank asked to stop: every rank stops at the same step
    _, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("training finished before the signal arrived")
    errors = [line for line in our_lines(stderr) if line.startswith("error:")]
    assert len(errors) == 2 and all("checkpoint saved" in e and "--nproc-per-node 2" in e for e in errors), stderr
    assert "exitcode  : 130" in stderr  # torchrun's report of each rank's exit status
    assert not (cut / "model.json").exists() and (cut / "checkpoint" / "state.json").is_file()

    alone = subprocess.run([*CLASSIFY, "train", "--resume", cut], capture_output=True, text=True)
    assert alone.returncode == 2 and "trained by 2 rank(s), not 1" in alone.stderr
    assert (cut / "checkpoint" / "state.json").is_file()

    resumed = torchrun("train", "--resume", cut)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_model(full, cut)


# --- bad input: one error line per rank, nothing touched, no hang ------------------------------


def test_ranks_that_disagree_refuse_to_train(prepared, tmp_path):
    data, config = prepared
    out = tmp_path / "run"
    procs = launch_ranks(
        ["--data", data, "--out", out, "--config", config],
        ["--data", data, "--out", out, "--config", config, "--seed", "7"],
    )
    for code, stderr in finish(procs):
        assert code == 2
        assert our_lines(stderr) == [stderr.strip()] and "the config on rank 1 differs from rank 0's" in stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "bad, message",
    [(["--data", "nowhere"], "no prepared data"), (["--set", "train.lr=-1"], "train.lr")],
    ids=["no-data", "bad-config"],
)
def test_a_rank_that_cannot_start_stops_every_rank(prepared, tmp_path, bad, message):
    data, config = prepared
    args = ["--data", data, "--out", tmp_path / "run", "--config", config]
    procs = launch_ranks(args, [*args, *[tmp_path / b if b == "nowhere" else b for b in bad]])
    (code0, err0), (code1, err1) = finish(procs)
    assert code1 == 2 and message in err1 and err1.startswith("error: rank 1/2: ")
    assert code0 == 2 and "rank 1 failed" in err0
    assert not (tmp_path / "run").exists()


def test_world_size_without_a_rank_is_a_usage_error(prepared, tmp_path):
    data, config = prepared
    env = os.environ | {"WORLD_SIZE": "2"}
    env.pop("RANK", None)
    done = subprocess.run(
        [*CLASSIFY, "train", "--data", data, "--out", tmp_path / "run", "--config", config],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "RANK" in done.stderr


def test_a_signal_before_the_first_step_stops_at_once_and_after_it_at_a_step():
    from classify_cli.cli._signals import stop_on_signals

    with stop_on_signals(quiet=True) as (should_stop, signals):
        with pytest.raises(KeyboardInterrupt):  # features being built: nothing to save
            os.kill(os.getpid(), signal.SIGTERM)
        signals.started()
        os.kill(os.getpid(), signal.SIGTERM)
        assert should_stop()


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "silent"])
def test_a_rank_that_dies_or_hangs_ends_the_run_and_keeps_the_model(prepared, tmp_path, how):
    data, _ = prepared
    config = tmp_path / "long.toml"
    config.write_text(CONFIG.format(epochs=400))
    out = tmp_path / "run"
    subprocess.run([*CLASSIFY, "train", "--data", data, "--out", out, "--epochs", "1"], check=True, capture_output=True)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    args = ["--data", data, "--out", out, "--config", config]
    procs = launch_ranks(args, args, env={"CLASSIFY_DIST_TIMEOUT": "5"})
    for line in procs[0].stderr:
        if line.startswith("epoch"):
            break
    procs[1].send_signal(how)
    started = time.monotonic()
    stderr = procs[0].communicate(timeout=60)[1]
    waited = time.monotonic() - started
    procs[1].kill()
    procs[1].communicate()
    code = procs[0].returncode
    assert code == 3, stderr
    lines = [line for line in stderr.splitlines() if not line.startswith("epoch")]
    assert len(lines) == 1 and lines[0].startswith(
        "error: rank 0/2: lost contact with the other ranks: rank 1 stopped or died"
    ), stderr
    assert waited < 30  # a killed rank is noticed at once, a silent one after the 5 s timeout
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


# each rank, for 3 timeouts: rank 0 working alone (saving), then rank 1 late to a meeting (features)
SOLO_WORK = """
import sys, time
from classify_cli.train.distributed import joined
with joined() as world:
    world.from_main(lambda: time.sleep(float(sys.argv[1])))
    world.together(lambda: time.sleep(float(sys.argv[1]) if world.rank == 1 else 0))
    print(world.sum_values([1.0])[0])
"""


def test_long_solo_work_waits_on_heartbeats_not_the_timeout():
    procs = launch_ranks([6], [6], env={"CLASSIFY_DIST_TIMEOUT": "2"}, command=[sys.executable, "-c", SOLO_WORK])
    started = time.monotonic()
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [(p.returncode, out) for p, (out, _) in zip(procs, outputs, strict=True)] == [(0, "2.0\n")] * 2, outputs
    assert time.monotonic() - started >= 12  # both waits were waited out, not skipped


def test_nccl_on_cpu_is_refused(prepared, tmp_path, invoke):
    data, config = prepared
    result = invoke("train", "--data", data, "--out", tmp_path / "one", "--backend", "nccl")
    assert result.exit_code == 2 and "torchrun" in result.stderr
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: NCCL is allowed")
    args = ["--data", data, "--out", tmp_path / "run", "--config", config, "--backend", "nccl"]
    for code, stderr in finish(launch_ranks(args, args)):
        assert code == 2 and our_lines(stderr) == [stderr.strip()] and "--backend nccl" in stderr
    assert not (tmp_path / "run").exists()


# --- the GPU (skipped where there is none) ------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_run_matches_the_cpu_run(prepared, tmp_path, invoke):
    """float32 sums in another order: the same epochs, metrics within 1e-3."""
    data, config = prepared
    for device in ("cpu", "cuda"):
        result = invoke("train", "--data", data, "--out", tmp_path / device, "--config", config, "--device", device)
        assert result.exit_code == 0, result.output
    rows = [[json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()] for d in ("cpu", "cuda")]
    for cpu, cuda in zip(*rows, strict=True):
        assert cuda["val_loss"] == pytest.approx(cpu["val_loss"], abs=1e-3)
        assert cuda["val_accuracy"] == pytest.approx(cpu["val_accuracy"], abs=1e-3)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="fewer than two CUDA devices")
def test_two_nccl_ranks_match_the_cpu_ranks(prepared, tmp_path):
    data, config = prepared
    for device in ("cpu", "cuda"):
        done = torchrun("train", "--data", data, "--out", tmp_path / device, "--config", config, "--device", device)
        assert done.returncode == 0, done.stderr
    best = [json.loads((tmp_path / d / "model.json").read_text())["best"] for d in ("cpu", "cuda")]
    assert best[1]["val_loss"] == pytest.approx(best[0]["val_loss"], abs=1e-3)


# --- the real benchmark split (skipped without ../shared) ---------------------------------------

AGNEWS7K = SHARED_DATA / "agnews7k"


@pytest.mark.skipif(not (AGNEWS7K / "train.csv").is_file(), reason="../shared/data/agnews7k not present")
def test_two_ranks_reach_the_single_process_accuracy_on_agnews7k(tmp_path, invoke):
    data = tmp_path / "data"
    assert invoke("prepare", "--from", AGNEWS7K, "--out", data).exit_code == 0
    assert invoke("train", "--data", data, "--out", tmp_path / "one", "--device", "cpu").exit_code == 0
    done = torchrun("train", "--data", data, "--out", tmp_path / "two", "--device", "cpu", timeout=600)
    assert done.returncode == 0, done.stderr
    one, two = (
        json.loads(invoke("evaluate", "--model", tmp_path / r, "--format", "json").stdout) for r in ("one", "two")
    )
    assert abs(two["accuracy"] - one["accuracy"]) <= 0.01, (one["accuracy"], two["accuracy"])
