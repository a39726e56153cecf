"""Outputs: a command never destroys what it did not write, and a failure leaves nothing behind."""

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from classify_cli.data.prepared import load_prepared
from classify_cli.model.bundle import load_bundle
from classify_cli.util.lock import DirectoryLock

from .conftest import write_ag_dir


def snapshot(path: Path) -> dict[str, bytes | None]:
    """Every entry under ``path`` (or ``path`` itself, a file) with its bytes (None for a directory)."""
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else None for p in sorted(path.rglob("*"))}


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def assert_one_clean_error(result, code: int, message: str) -> None:
    assert result.exit_code == code, result.output
    assert len(error_lines(result)) == 1 and message in error_lines(result)[0], result.stderr
    assert "Traceback" not in result.output


def _user_dir(path: Path) -> Path:
    path.mkdir()
    (path / "thesis.tex").write_text("years of work\n")
    (path / "figures").mkdir()
    (path / "figures" / "plot.pdf").write_bytes(b"%PDF")
    return path


def _user_file(path: Path) -> Path:
    path.write_text("not a directory\n")
    return path


def _foreign_manifest(path: Path) -> Path:
    # a web app's manifest.json is not prepared data
    path.mkdir()
    (path / "manifest.json").write_text('{"name": "my app"}')
    (path / "index.html").write_text("<html></html>")
    return path


FOREIGN = [_user_dir, _user_file, _foreign_manifest]
FOREIGN_IDS = ["user-dir", "regular-file", "foreign-manifest"]


# --- 1. prepare / train / report never replace what they did not write -----------------------


@pytest.mark.parametrize("make", FOREIGN, ids=FOREIGN_IDS)
def test_prepare_refuses_an_output_it_did_not_write(invoke, tmp_path, tiny_config, make):
    corpus = write_ag_dir(tmp_path / "corpus")
    out = make(tmp_path / "out")
    before = snapshot(out)
    result = invoke("prepare", "--from", corpus, "--out", out, "--config", tiny_config)
    assert_one_clean_error(result, 2, str(out))
    assert "read train" not in result.stderr  # refused before reading the source
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), lambda p: None], ids=["empty-dir", "absent"])
def test_prepare_writes_into_an_empty_or_absent_output(invoke, tmp_path, tiny_config, make):
    corpus = write_ag_dir(tmp_path / "corpus")
    make(tmp_path / "out")
    assert invoke("prepare", "--from", corpus, "--out", tmp_path / "out", "--config", tiny_config).exit_code == 0
    load_prepared(tmp_path / "out")


@pytest.mark.parametrize("make", FOREIGN, ids=FOREIGN_IDS)
def test_train_refuses_a_run_dir_it_did_not_write(invoke, trained, tmp_path, make):
    _, data, _ = trained
    out = make(tmp_path / "out")
    before = snapshot(out)
    result = invoke("train", "--data", data, "--out", out, "--epochs", "1", "--device", "cpu")
    assert_one_clean_error(result, 2, str(out))
    assert "features:" not in result.stderr  # refused before any work
    assert snapshot(out) == before


def test_train_keeps_unrelated_files_in_its_run_dir(invoke, trained, tmp_path):
    _, data, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "notes.txt").write_text("lr sweep, attempt 3\n")
    result = invoke("train", "--data", data, "--out", copy, "--epochs", "1", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert (copy / "notes.txt").read_text() == "lr sweep, attempt 3\n"
    load_bundle(copy)


def test_report_refuses_an_output_that_is_a_file(invoke, trained, tmp_path):
    _, _, run = trained
    out = _user_file(tmp_path / "rep")
    result = invoke("report", run, "--out", out)
    assert_one_clean_error(result, 2, str(out))
    assert out.read_text() == "not a directory\n"


# --- 2. non-finite config numbers; a failed train leaves no new run directory ----------------


@pytest.mark.parametrize(
    "args",
    [
        ["--set", "train.lr=inf"],
        ["--set", "train.lr=nan"],
        ["--lr", "inf"],
        ["--set", "train.clip_norm=inf"],
        ["--set", "model.supervised_weight=inf"],
        ["--set", "model.ngram_weight=-nan"],
    ],
)
def test_non_finite_numbers_are_config_errors(invoke, trained, tmp_path, args):
    _, data, _ = trained
    result = invoke("train", "--data", data, "--out", tmp_path / "r", *args)
    assert_one_clean_error(result, 2, "finite")
    assert not (tmp_path / "r").exists()


def test_diverged_train_removes_the_run_dir_it_created(invoke, trained, tmp_path):
    _, data, _ = trained
    (tmp_path / "runs").mkdir()  # made by the user: stays, though empty again
    out = tmp_path / "runs" / "new" / "r"
    result = invoke("train", "--data", data, "--out", out, "--lr", "1e38", "--set", "train.clip_norm=1e38")
    assert_one_clean_error(result, 4, "lower train.lr")
    assert (tmp_path / "runs").is_dir() and not (tmp_path / "runs" / "new").exists()


def test_failed_train_leaves_an_existing_run_dir_as_it_was(invoke, trained, tmp_path):
    _, data, _ = trained
    (tmp_path / "r").mkdir()
    result = invoke("train", "--data", data, "--out", tmp_path / "r", "--lr", "1e38", "--set", "train.clip_norm=1e38")
    assert result.exit_code == 4, result.output
    assert (tmp_path / "r").is_dir()
    assert not (tmp_path / "r" / "model.json").exists() and not (tmp_path / "r" / "metrics.jsonl").exists()


# --- 3. report writes nothing on failure -----------------------------------------------------


def test_report_on_mismatched_data_writes_nothing(invoke, trained, tmp_path):
    pytest.importorskip("matplotlib")
    _, _, run = trained
    other = write_ag_dir(tmp_path / "other", n_train=30, seed=42)
    assert invoke("prepare", "--from", other, "--out", tmp_path / "d2").exit_code == 0
    result = invoke("report", run, "--data", tmp_path / "d2", "--out", tmp_path / "rep2")
    assert_one_clean_error(result, 2, "another vocabulary")
    assert not (tmp_path / "rep2").exists()


# --- 4. file modes follow the umask ------------------------------------------------------------


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_prepared_files_follow_the_umask(invoke, tmp_path, tiny_config, umask, mode):
    corpus = write_ag_dir(tmp_path / "corpus")
    previous = os.umask(umask)
    try:
        result = invoke("prepare", "--from", corpus, "--out", tmp_path / "data", "--config", tiny_config)
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "data").iterdir()}
    assert "train.safetensors" in modes
    assert modes == dict.fromkeys(modes, mode)


# --- 5. an unusable --out or a locked run dir is refused before any work -----------------------


def test_train_into_a_regular_file_is_refused_before_any_work(invoke, trained, tmp_path):
    _, data, _ = trained
    out = _user_file(tmp_path / "afile2")
    result = invoke("train", "--data", data, "--out", out, "--epochs", "1", "--device", "cpu")
    assert_one_clean_error(result, 2, "not a directory")
    assert "features:" not in result.stderr
    assert out.read_text() == "not a directory\n"


def test_locked_run_dir_is_refused_before_any_work(invoke, trained, tmp_path):
    _, data, _ = trained
    run = tmp_path / "run"
    with DirectoryLock(run, "train"):
        result = invoke("train", "--data", data, "--out", run, "--epochs", "1", "--device", "cpu")
    assert_one_clean_error(result, 3, "in use by another train")
    assert "features:" not in result.stderr


def test_report_writes_both_pictures(invoke, trained, tmp_path):
    pytest.importorskip("matplotlib")
    _, data, run = trained
    result = invoke("report", run, "--data", data, "--out", tmp_path / "rep")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == ["confusion.png", "curves.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in (tmp_path / "rep").iterdir())


# --- 6. what an adversarial review broke: data kept, outputs written through ----------------


def test_prepare_again_keeps_what_else_is_in_the_folder(invoke, tmp_path, tiny_config):
    corpus = write_ag_dir(tmp_path / "corpus")
    data = tmp_path / "dn"
    assert invoke("prepare", "--from", corpus, "--out", data, "--config", tiny_config).exit_code == 0
    (data / "run").mkdir()
    (data / "run" / "model.json").write_text("{}")
    (data / "NOTES.txt").write_text("mine\n")
    before = snapshot(data)
    result = invoke("prepare", "--from", corpus, "--out", data, "--config", tiny_config)
    assert_one_clean_error(result, 2, "NOTES.txt, run")
    assert "read train" not in result.stderr
    assert snapshot(data) == before


def test_prepare_again_replaces_its_own_output(invoke, tmp_path, tiny_config):
    corpus = write_ag_dir(tmp_path / "corpus")
    data = tmp_path / "dn"
    assert invoke("prepare", "--from", corpus, "--out", data, "--config", tiny_config).exit_code == 0
    result = invoke("prepare", "--from", corpus, "--out", data, "--config", tiny_config, "--set", "prepare.seed=5")
    assert result.exit_code == 0, result.output
    assert load_prepared(data).manifest["config"]["prepare"]["seed"] == 5


def test_a_failed_save_keeps_the_old_metrics(invoke, trained, tmp_path, monkeypatch):
    import errno

    import classify_cli.model.bundle

    _, data, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = snapshot(copy)

    def disk_full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(classify_cli.model.bundle, "atomic_write_with", disk_full)
    result = invoke("train", "--data", data, "--out", copy, "--epochs", "2", "--device", "cpu", "--seed", "7")
    assert_one_clean_error(result, 3, "No space left on device")
    assert snapshot(copy) == before  # model.json and metrics.jsonl: the old run's, together


def test_evaluate_output_writes_through_a_symlink(invoke, trained, tmp_path):
    _, data, run = trained
    (tmp_path / "reports").mkdir()
    link = tmp_path / "latest.json"
    link.symlink_to(tmp_path / "reports" / "today.json")  # dangling until written
    result = invoke("evaluate", "--model", run, "--data", data, "--format", "json", "--output", link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == str(tmp_path / "reports" / "today.json")
    assert json.loads((tmp_path / "reports" / "today.json").read_text())["n"] > 0


def test_evaluate_output_writes_into_a_fifo(invoke, trained, tmp_path):
    import threading

    _, data, run = trained
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = invoke("evaluate", "--model", run, "--data", data, "--format", "json", "--output", fifo)
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # still the FIFO, not a regular file
    assert json.loads(received[0])["n"] > 0


def test_report_keeps_a_picture_it_did_not_draw(invoke, trained, tmp_path):
    pytest.importorskip("matplotlib")
    _, data, run = trained
    out = tmp_path / "rep"
    out.mkdir()
    (out / "curves.png").write_bytes(b"\x89PNG my own figure")
    result = invoke("report", run, "--data", data, "--out", out)
    assert_one_clean_error(result, 2, "not drawn by classify report")
    assert (out / "curves.png").read_bytes() == b"\x89PNG my own figure"
    assert not (out / "confusion.png").exists()
    (out / "curves.png").unlink()
    for _ in range(2):  # its own pictures it replaces
        assert invoke("report", run, "--data", data, "--out", out).exit_code == 0
