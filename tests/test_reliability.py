"""Nothing lost, nothing executed, every bad input answered (and nothing half-written)."""

import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from classify_cli.data.prepared import load_prepared
from classify_cli.model.bundle import load_bundle
from classify_cli.util.config import load_config
from classify_cli.util.errors import BundleError
from classify_cli.util.lock import DirectoryLock

from .conftest import assert_same_model, edit_json, make_rows, training_under_way, write_ag_dir, write_header_csv

PYTHON = [sys.executable, "-m", "classify_cli"]


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def weights_path(run: Path) -> Path:
    return run / json.loads((run / "model.json").read_text())["weights"]["file"]


@pytest.fixture
def run_copy(trained, tmp_path):
    import shutil

    _, data, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return data, copy


# --- 1. no pickle; tampered, truncated or foreign files are refused ------------------------


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {Path.cwd() / 'PWNED'}",))


def _rehash(run: Path) -> None:
    data = weights_path(run).read_bytes()
    header = data[: 8 + int.from_bytes(data[:8], "little")] if len(data) >= 8 else data
    digests = {"sha256": hashlib.sha256(data).hexdigest(), "header_sha256": hashlib.sha256(header).hexdigest()}
    edit_json(run / "model.json", lambda meta: meta["weights"].update(bytes=len(data), **digests))


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda run: weights_path(run).write_bytes(weights_path(run).read_bytes()[:-100]), "checksum mismatch"),
        (lambda run: weights_path(run).write_bytes(b"\0" + weights_path(run).read_bytes()[1:]), "checksum mismatch"),
        (lambda run: (run / "model.json").write_text((run / "model.json").read_text()[:200]), "not valid JSON"),
        (lambda run: (run / "model.json").write_text('{"hello": 1}'), "not a classify model file"),
        (
            lambda run: (weights_path(run).write_bytes(pickle.dumps(_Exploit())), _rehash(run)),
            "not a valid safetensors",
        ),
        (lambda run: weights_path(run).unlink(), "missing"),
    ],
    ids=["truncated-weights", "flipped-byte", "truncated-json", "foreign-json", "pickle-payload", "missing-weights"],
)
def test_tampered_bundles_are_refused(invoke, run_copy, tamper, message):
    _, run = run_copy
    tamper(run)
    for args in (["predict", "--model", run, "some text"], ["evaluate", "--model", run, "--format", "json"]):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert message in result.stderr and "Traceback" not in result.output
        assert result.stderr.count("\n") == 1
    assert not Path("PWNED").exists()


def _poke(tensor: str, value: float):
    """Set every element of a tensor of the weights to ``value``, checksums recomputed."""

    def change(run: Path) -> None:
        from classify_cli.util import safetensors

        raw = bytearray(weights_path(run).read_bytes())
        safetensors.arrays(raw, weights_path(run))[tensor][...] = value  # a view of raw: writable
        weights_path(run).write_bytes(bytes(raw))
        _rehash(run)

    return change


@pytest.mark.parametrize(
    "tamper",
    [_poke("scores", np.nan), _poke("bias", np.inf), _poke("norm_terms", -1.0)],
    ids=["nan", "inf", "negative"],
)
@pytest.mark.parametrize(
    "args",
    [
        ["predict", "--format", "json", "goal coach season"],
        ["predict", "--format", "jsonl", "--file", "{texts}"],
        ["evaluate", "--format", "json"],
        ["compress", "--out", "{out}"],
    ],
    ids=["predict-text", "predict-file", "evaluate", "compress"],
)
def test_non_finite_weights_are_refused(invoke, run_copy, tmp_path, tamper, args):
    """Checksums recomputed after the edit: every load check passed, predict printed
    ``"probability": NaN`` (not JSON) and compress exited 70."""
    _, run = run_copy
    tamper(run)
    texts = tmp_path / "texts.txt"
    texts.write_text("goal coach season\nshares profit market\n")
    values = {"{texts}": str(texts), "{out}": str(tmp_path / "small")}
    result = invoke(*args[:1], "--model", run, *[values.get(a, a) for a in args[1:]])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "NaN or infinite" in result.stderr, result.stderr
    assert "NaN" not in result.stdout and "Infinity" not in result.stdout
    assert not (tmp_path / "small").exists()


@pytest.mark.parametrize(
    "read_whole, expected",
    [(None, "Sports"), (0, "error: the weights file was truncated while in use")],
    ids=["read-into-memory", "mapped"],
)
def test_weights_truncated_after_load_never_kill_the_process(run_copy, read_whole, expected):
    """A mapped weights file cut short under a running command killed it with SIGBUS: a model
    of up to bundle.READ_WHOLE bytes is now read into memory (labeling goes on), a larger one
    is checked between batches (one clear error)."""
    _, run = run_copy
    script = (
        "import os, sys\n"
        "from classify_cli.model import bundle\n"
        "from classify_cli.util.errors import BundleError\n"
        "from classify_cli.model.inference import Predictor\n"
        + (f"bundle.READ_WHOLE = {read_whole}\n" if read_whole is not None else "")
        + f"predictor = Predictor(bundle.load_bundle({str(run)!r}))\n"
        f"os.truncate({str(weights_path(run))!r}, 0)\n"
        "try:\n"
        "    print(predictor.labels[predictor.score(['goal coach season']).logits.argmax()])\n"
        "except BundleError as exc:\n"
        "    print('error: ' + str(exc).split(': ', 1)[1])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, (result.returncode, result.stderr)
    assert result.stdout.startswith(expected), result.stdout


def test_weights_with_wrong_shapes_are_refused(run_copy):
    from safetensors.numpy import save

    _, run = run_copy
    weights_path(run).write_bytes(save({"scores": np.zeros((3, 3), np.float32)}))
    _rehash(run)
    with pytest.raises(BundleError, match="tensor scores"):
        load_bundle(run)


def test_tampered_prepared_data_is_refused(invoke, trained, tmp_path):
    import shutil

    _, data, _ = trained
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    raw = bytearray((copy / "train.safetensors").read_bytes())
    raw[-1] ^= 1
    (copy / "train.safetensors").write_bytes(bytes(raw))
    result = invoke("train", "--data", copy, "--out", tmp_path / "run", "--epochs", "1")
    assert result.exit_code == 2 and "checksum" in result.stderr
    assert not (tmp_path / "run").exists()


def test_no_pickle_in_any_artifact(trained):
    _, data, run = trained
    for path in [*data.iterdir(), *run.iterdir()]:
        if path.is_file():
            assert not path.read_bytes().startswith(b"\x80"), path  # pickle protocol 2+ header


# --- 2. atomic artifacts under SIGKILL ------------------------------------------------------


def _big_corpus(path: Path, n_per_class: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    write_header_csv(path / "train.csv", make_rows(n_per_class, seed=1))
    return path


def test_sigkill_never_leaves_loadable_garbage(tmp_path):
    corpus = _big_corpus(tmp_path / "corpus", 3000)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[model]\nembed_dim = 8\nbuckets = 1000\n[train]\nepochs = 3\nbatch_size = 8\ndevice = "cpu"\n')
    out, run = tmp_path / "data", tmp_path / "run"
    assert (
        subprocess.run(
            [*PYTHON, "prepare", "--from", corpus, "--out", out, "--config", cfg], capture_output=True
        ).returncode
        == 0
    )
    assert (
        subprocess.run(
            [*PYTHON, "train", "--data", out, "--out", run, "--config", cfg, "--epochs", "1"], capture_output=True
        ).returncode
        == 0
    )
    good_model = (run / "model.json").read_bytes()
    good_data = (out / "manifest.json").read_bytes()
    for delay in (0.2, 0.8, 1.5, 2.5, 4.0):
        for args in (
            ["prepare", "--from", corpus, "--out", out, "--config", cfg],
            ["train", "--data", out, "--out", run, "--config", cfg, "--seed", "5"],
        ):
            proc = subprocess.Popen([*PYTHON, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            load_prepared(out)  # old or new, always whole
            bundle = load_bundle(run)  # the good model survives, or a complete new one replaced it
            assert bundle.meta["train"]["seed"] in (0, 5)
            if (run / "model.json").read_bytes() != good_model:
                assert bundle.meta["train"]["seed"] == 5
    assert good_data  # the manifest was readable throughout


# --- 3. interrupt and resume ------------------------------------------------------------------


@pytest.fixture
def resumable(tmp_path):
    corpus = _big_corpus(tmp_path / "corpus", 400)
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text('[model]\nembed_dim = 8\nbuckets = 1000\n[train]\nepochs = 3\nbatch_size = 8\ndevice = "cpu"\n')
    data = tmp_path / "data"
    assert (
        subprocess.run(
            [*PYTHON, "prepare", "--from", corpus, "--out", data, "--config", cfg_path], capture_output=True
        ).returncode
        == 0
    )
    return data, load_config(cfg_path), cfg_path


@pytest.mark.parametrize("stop_after", [1, 170, 300, 451])
def test_resumed_run_equals_uninterrupted_run(resumable, tmp_path, stop_after):
    from classify_cli.train.run import train
    from classify_cli.util.errors import Interrupted

    data, cfg, _ = resumable
    train(data, tmp_path / "full", cfg, log=lambda m: None)
    calls = iter(range(10**6))
    with pytest.raises(Interrupted, match="--resume"):
        train(data, tmp_path / "cut", cfg, log=lambda m: None, should_stop=lambda: next(calls) >= stop_after)
    assert not (tmp_path / "cut" / "model.json").exists()
    assert (tmp_path / "cut" / "checkpoint" / "state.json").exists()
    train(None, tmp_path / "cut", None, resume=True, log=lambda m: None)
    assert not (tmp_path / "cut" / "checkpoint").exists()
    assert_same_model(tmp_path / "full", tmp_path / "cut")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_checkpoint_and_resume_finishes(resumable, tmp_path, sig):
    data, cfg, cfg_path = resumable
    from classify_cli.train.run import train

    train(data, tmp_path / "full", cfg, log=lambda m: None)
    run = tmp_path / "run"
    proc = training_under_way([*PYTHON, "train", "--data", data, "--out", run, "--config", cfg_path])
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("training finished before the signal arrived")
    assert proc.returncode == 130
    assert f"classify train --resume {run}" in stderr and "Traceback" not in stderr
    assert not (run / "model.json").exists()
    resumed = subprocess.run([*PYTHON, "train", "--resume", run], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_model(tmp_path / "full", run)


def test_resume_without_checkpoint(invoke, tmp_path):
    result = invoke("train", "--resume", tmp_path / "nothing")
    assert result.exit_code == 2 and "no checkpoint" in result.stderr


def test_resume_with_more_epochs_equals_a_longer_run(resumable, tmp_path, invoke):
    """Interrupted in a 2-epoch run, resumed with --epochs 4: the same model as 4 epochs straight."""
    import dataclasses

    from classify_cli.train.run import train
    from classify_cli.util.errors import Interrupted

    data, cfg, _ = resumable
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=2, patience=0))
    longer = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=4))
    train(data, tmp_path / "full", longer, log=lambda m: None)
    calls = iter(range(10**6))
    with pytest.raises(Interrupted):
        train(data, tmp_path / "cut", cfg, log=lambda m: None, should_stop=lambda: next(calls) >= 170)
    too_short = invoke("train", "--resume", tmp_path / "cut", "--epochs", "0")
    assert too_short.exit_code == 2 and "--epochs 0: the run is already in epoch" in too_short.stderr
    others = invoke("train", "--resume", tmp_path / "cut", "--epochs", "4", "--seed", "3")
    assert others.exit_code == 2 and "--epochs N alone may change" in others.stderr
    result = invoke("train", "--resume", tmp_path / "cut", "--epochs", "4")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["epochs"] == 4
    assert_same_model(tmp_path / "full", tmp_path / "cut")
    finished = invoke("train", "--resume", tmp_path / "cut", "--epochs", "6")
    assert finished.exit_code == 2 and "finished training" in finished.stderr and "--epochs N" in finished.stderr


# --- 4. divergence ------------------------------------------------------------------------------


def test_divergence_stops_and_keeps_the_good_model(invoke, run_copy):
    data, run = run_copy
    before = (run / "model.json").read_bytes()
    result = invoke("train", "--data", data, "--out", run, "--lr", "1e38", "--set", "train.clip_norm=1e38")
    assert result.exit_code == 4, result.output
    assert "lower train.lr" in result.stderr and "Traceback" not in result.output
    assert (run / "model.json").read_bytes() == before
    load_bundle(run)


# --- 5. bad inputs: message, exit code, nothing written ---------------------------------------


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


BAD_SOURCES = [
    ("missing", lambda d: d / "nope.csv", 2, "no such file"),
    ("empty", lambda d: _write(d / "e.csv", b""), 2, "empty file"),
    (
        "misnamed-columns",
        lambda d: _write(d / "c.csv", b"body,topic\nhello,World\n"),
        2,
        "missing columns ['label', 'text']",
    ),
    ("jsonl-missing-field", lambda d: _write(d / "c.jsonl", b'{"text": "hi"}\n'), 2, "missing field(s) ['label']"),
    ("not-utf8", lambda d: _write(d / "c.csv", b"text,label\n\xff\xfe caf\xe9,World\n"), 2, "not valid UTF-8"),
    ("whitespace-only", lambda d: _write(d / "c.csv", b"text,label\n   ,World\n\t,Sports\n"), 2, "no usable rows"),
    (
        "single-class",
        lambda d: write_header_csv(d / "c.csv", [("World", f"text {i}") for i in range(20)]),
        2,
        "only one class",
    ),
    ("empty-label", lambda d: _write(d / "c.csv", b"text,label\nhello,\n"), 2, "empty label"),
    ("bad-suffix", lambda d: _write(d / "c.txt", b"hello"), 2, "unsupported file type"),
]


@pytest.mark.parametrize("name, make, code, message", BAD_SOURCES, ids=[b[0] for b in BAD_SOURCES])
def test_bad_sources(invoke, tmp_path, name, make, code, message):
    source = make(tmp_path)
    out = tmp_path / "out"
    result = invoke("prepare", "--from", source, "--out", out)
    assert result.exit_code == code, result.output
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert [line for line in lines if line.startswith("error:")] == [lines[-1]]
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_evaluation_labels_all_unknown(invoke, trained, tmp_path):
    _, _, run = trained
    path = write_header_csv(tmp_path / "b.csv", [("Weather", "rain"), ("Cooking", "bread")])
    result = invoke("evaluate", "--model", run, "--data", path)
    assert result.exit_code == 2 and "none of the labels" in result.stderr


def test_bundle_and_prepared_data_mismatch(invoke, trained, tmp_path):
    _, _, run = trained
    other = write_ag_dir(tmp_path / "other", n_train=30, seed=42)
    assert invoke("prepare", "--from", other, "--out", tmp_path / "d2").exit_code == 0
    result = invoke("evaluate", "--model", run, "--data", tmp_path / "d2")
    assert result.exit_code == 2 and "another vocabulary" in result.stderr


def _read_only_target(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        return ro / "out"
    if os.access("/sys", os.W_OK) and Path("/sys/.probe").exists():
        pytest.skip("no read-only location available")
    return Path("/sys/classify-test-out")  # sysfs refuses new entries, even for root


def test_read_only_output(invoke, trained, tmp_path):
    corpus, data, _ = trained
    target = _read_only_target(tmp_path)
    result = invoke("prepare", "--from", corpus, "--out", target)
    assert result.exit_code == 3, result.output
    assert "cannot write" in result.stderr and "Traceback" not in result.output
    result = invoke("train", "--data", data, "--out", target, "--epochs", "1")
    assert result.exit_code == 3 and "cannot write" in result.stderr


# --- 7. concurrency -------------------------------------------------------------------------------


def test_second_train_into_a_locked_run_dir_is_refused(invoke, trained, tmp_path):
    _, data, _ = trained
    run = tmp_path / "run"
    with DirectoryLock(run, "train"):
        result = invoke("train", "--data", data, "--out", run, "--epochs", "1")
    assert result.exit_code == 3
    assert "in use by another train" in result.stderr
    assert not (run / "model.json").exists()


def test_concurrent_evaluate_and_predict_on_one_bundle(trained):
    _, data, run = trained
    procs = [
        subprocess.Popen(
            [*PYTHON, "evaluate", "--model", run, "--data", data, "--format", "json"], stdout=subprocess.PIPE
        )
        for _ in range(3)
    ] + [
        subprocess.Popen(
            [*PYTHON, "predict", "--model", run, "--format", "json", "bank shares"], stdout=subprocess.PIPE
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    # the same report but for when each was made (to the second: runs may straddle one)
    reports = [{k: v for k, v in json.loads(out).items() if k != "evaluated_at"} for out in outs[:3]]
    assert reports[0] == reports[1] == reports[2] and len(set(outs[3:])) == 1


def test_a_modified_table_is_refused_where_the_whole_file_is_read(invoke, run_copy, tmp_path):
    """predict TEXT checks the file's size and header; evaluate and predict --file its checksum."""
    _, run = run_copy
    data = bytearray(weights_path(run).read_bytes())
    data[-3] ^= 0xFF  # inside the tensors, past the header
    weights_path(run).write_bytes(bytes(data))
    texts = tmp_path / "texts.txt"
    texts.write_text("goal coach season\n")
    for args in (["evaluate", "--model", run, "--format", "json"], ["predict", "--model", run, "--file", texts]):
        result = invoke(*args)
        assert result.exit_code == 2 and "checksum mismatch" in result.stderr, result.output


def test_sigterm_ends_predict_as_ctrl_c_does(trained):
    _, _, run = trained
    proc = subprocess.Popen(
        [*PYTHON, "predict", "--model", run, "--file", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdin.write("goal coach season\n")
    proc.stdin.flush()  # predict now waits for more of stdin
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted" and "Traceback" not in stderr


def test_pool_workers_end_quietly_on_a_long_file(trained, tmp_path):
    """The pool stops its workers with SIGTERM; the command's own handler must not reach them."""
    _, _, run = trained
    texts = tmp_path / "many.txt"
    texts.write_text("goal coach season\n" * 10_000)  # three batches: forked workers
    result = subprocess.run(
        [*PYTHON, "predict", "--model", run, "--file", texts, "--format", "csv"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 10_001 and "Traceback" not in result.stderr, result.stderr[:500]


def _weights_name(run: Path) -> str:
    return weights_path(run).name


@pytest.mark.parametrize("kind", ["fifo", "directory"])
@pytest.mark.parametrize(
    "side, name",
    [
        ("run", lambda run: "model.json"),
        ("run", _weights_name),
        ("data", lambda data: "manifest.json"),
        ("data", lambda data: "vocab.json"),
        ("data", lambda data: "test.safetensors"),
    ],
    ids=["model.json", "weights", "manifest", "vocab", "split"],
)
def test_a_fifo_or_directory_in_place_of_a_file_is_refused(run_copy, tmp_path, kind, side, name):
    """Opened, a FIFO would block the command for ever, and a directory gave exit 70."""
    import shutil

    data, run = run_copy
    data = Path(shutil.copytree(data, tmp_path / "data"))
    target = (run if side == "run" else data) / name(run if side == "run" else data)
    target.unlink()
    os.mkfifo(target) if kind == "fifo" else target.mkdir()
    result = subprocess.run(
        [*PYTHON, "evaluate", "--model", run, "--data", data, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    what = "a FIFO" if kind == "fifo" else "a directory"
    assert result.stderr == f"error: {target} is {what}, not a regular file\n"
    assert result.stdout == ""


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _busy(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "R"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers through /proc")
def test_a_worker_killed_mid_batch_ends_predict_with_one_error(trained, tmp_path):
    """The OOM killer's SIGKILL to a worker at work: one error line and exit 3 within seconds
    (multiprocessing.Pool waited forever for the batch the worker held)."""
    _, _, run = trained
    texts = tmp_path / "long.txt"
    line = ("goal coach season " * 55_000).strip()
    texts.write_text((line + "\n") * 48)  # 12 batches, each a second or so of --explain
    proc = subprocess.Popen(
        [*PYTHON, "predict", "--model", run, "--file", texts, "--format", "jsonl", "--explain"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        victim = None
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            busy = [pid for pid in _children(proc.pid) if _busy(pid)]
            time.sleep(0.05)
            victim = next((pid for pid in busy if _busy(pid)), None)  # at work twice in a row: it holds a batch
        assert victim is not None, "no worker was seen at work"
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert time.monotonic() - killed < 15
    assert proc.returncode == 3, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("error: a worker process died"), stderr


def _set(*path_and_value):
    *path, key, value = path_and_value

    def change(document):
        for name in path:
            document = document[name]
        document[key] = value

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (_set("weights", "file", ""), "(weights.file: malformed"),
        (_set("weights", "file", "../model.json"), "(weights.file: malformed"),
        (_set("data", "elsewhere"), "(data: expected an object"),
        (_set("head", "buckets", 10), "(head.kept_buckets disagrees"),
        (_set("features", "weighting", "evil"), "(features.weighting: expected one of mean, tfidf, tfidf-l2"),
        (_set("labels", "ABCD"), "(labels: expected a list"),
        (_set("labels", ["a", "a", "b", "c"]), "(labels: duplicate entries"),
        (_set("tokenizer", "name", "evil"), "(tokenizer.name: expected one of basic_english"),
        (_set("head", "unk_index", 10**9), "(head.unk_index disagrees"),
        (_set("train", "seed", -5), "(train: train.seed must be between 0"),
        (_set("head", "extra", 1), "(head.extra: unknown key"),
        (_set("best", "val_accuracy", 2), "(best.val_accuracy: expected a number in [0.0, 1.0]"),
    ],
    ids=[
        "empty-file-name",
        "path-in-file-name",
        "data-not-a-dict",
        "buckets-shrunk",
        "weighting-unknown",
        "labels-a-string",
        "labels-duplicate",
        "tokenizer-unknown",
        "unk-out-of-range",
        "negative-seed",
        "unknown-key",
        "accuracy-above-one",
    ],
)
def test_tampered_model_json_is_refused(invoke, run_copy, change, message):
    """Edited by hand and its checksum recomputed: the schema still refuses it, whole."""
    _, run = run_copy
    edit_json(run / "model.json", change)
    for args in (["evaluate", "--model", run, "--format", "json"], ["predict", "--model", run, "a text"]):
        result = invoke(*args)
        assert result.exit_code == 2 and message in result.stderr, result.output
        assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "value, message",
    [(0.5, "checksum mismatch: the file was edited or is corrupt"), (float("nan"), "expected a number in [0.0, 1.0]")],
)
def test_edited_model_json_fails_its_checksum(invoke, run_copy, value, message):
    _, run = run_copy
    edit_json(run / "model.json", _set("reference", "mean_confidence", value), reseal=False)
    result = invoke("predict", "--model", run, "a text")
    assert result.exit_code == 2 and message in result.stderr, result.output


@pytest.mark.parametrize(
    "change, reseal, message",
    [
        (_set("vocab_size", 10), False, "checksum mismatch"),
        (_set("splits", "train", "rows", "many"), True, "(splits.train.rows: expected an integer"),
        (_set("files", "extra.bin", "0" * 64), True, "(files.extra.bin: unknown key"),
        (_set("config", "prepare", "min_freq", 0), True, "(config.prepare: prepare.min_freq must be at least 1"),
        (_set("labels", ["x", "y"]), True, "per_class disagree with labels"),
    ],
    ids=["edited", "rows-not-a-number", "unknown-file", "bad-config", "labels-renamed"],
)
def test_tampered_manifest_is_refused(invoke, trained, tmp_path, change, reseal, message):
    import shutil

    _, data, _ = trained
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    edit_json(copy / "manifest.json", change, reseal=reseal)
    result = invoke("train", "--data", copy, "--out", tmp_path / "run", "--epochs", "1")
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert result.stderr.count("\n") == 1 and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t["ids"].__setitem__(0, 10**6),  # past the vocabulary
        lambda t: t["labels"].__setitem__(0, 7),  # past the labels
        lambda t: t["offsets"].__setitem__(1, 10**6),  # past the ids
    ],
    ids=["id", "label", "offset"],
)
def test_prepared_arrays_out_of_range_are_refused(invoke, trained, tmp_path, change):
    """The split file rewritten and the manifest resealed to match: the arrays are still checked."""
    import shutil

    from safetensors.numpy import load_file, save_file

    _, data, _ = trained
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    tensors = {k: v.copy() for k, v in load_file(copy / "train.safetensors").items()}
    change(tensors)
    save_file(tensors, copy / "train.safetensors")
    digest = hashlib.sha256((copy / "train.safetensors").read_bytes()).hexdigest()
    edit_json(copy / "manifest.json", lambda m: m["files"].update({"train.safetensors": digest}))
    result = invoke("train", "--data", copy, "--out", tmp_path / "run", "--epochs", "1")
    assert result.exit_code == 2 and "arrays disagree with the manifest" in result.stderr, result.output


def test_a_loss_that_explodes_is_divergence_too(invoke, trained, tmp_path):
    """Finite but absurd (lr 1e9 reached a validation loss of 2.4e15): exit 4, nothing saved."""
    _, data, _ = trained
    result = invoke("train", "--data", data, "--out", tmp_path / "run", "--lr", "1e9", "--set", "train.clip_norm=1e9")
    assert result.exit_code == 4, result.output
    assert "over 10x the" in result.stderr and "lower train.lr" in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.pop("config"), "(config: missing)"),
        (lambda s: s["progress"].update(epoch="two"), "(progress.epoch: expected an integer"),
        (lambda s: s["config"]["train"].update(lr=-1), "(config: train.lr must be > 0)"),
        # written before n-grams were hashed by multiply-shift: its rows are other buckets
        (lambda s: s.update(version=2), "(another version wrote it); train again without --resume"),
    ],
    ids=["no-config", "epoch-not-a-number", "bad-config", "older-version"],
)
def test_a_tampered_checkpoint_is_refused(invoke, trained, tmp_path, change, message):
    from classify_cli.train.run import train
    from classify_cli.util.errors import Interrupted

    _, data, _ = trained
    cfg = load_config(None, {("train", "device"): "cpu", ("model", "buckets"): 5000, ("train", "batch_size"): 8})
    steps = iter(range(10**6))
    with pytest.raises(Interrupted):
        train(data, tmp_path / "run", cfg, log=lambda m: None, should_stop=lambda: next(steps) >= 2)
    state = tmp_path / "run" / "checkpoint" / "state.json"
    document = json.loads(state.read_text())
    change(document)
    state.write_text(json.dumps(document))
    result = invoke("train", "--resume", tmp_path / "run")
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert result.stderr.count("\n") == 1
