"""Writers of an output (prepare, train, tune, compress): one lock for a command's whole life,
swaps that a kill cannot leave half-done, leftovers cleaned, symlinks kept; and evaluate
--output through symlinks."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from classify_cli.data.prepared import load_prepared
from classify_cli.model.bundle import load_bundle
from classify_cli.util import swap
from classify_cli.util.lock import DirectoryLock

from .conftest import make_rows, write_header_csv
from .test_output_safety import assert_one_clean_error, snapshot

WRITERS = ["prepare", "train", "tune", "compress"]
SWAPPERS = ["prepare", "tune", "compress"]  # those that build the output aside and swap it in


def writer_args(writer: str, trained, out: Path) -> list:
    """``classify`` arguments for ``writer`` writing ``out`` from the session's tiny corpus."""
    corpus, data, run = trained
    config = corpus.parent / "tiny.toml"
    return {
        "prepare": ["prepare", "--from", corpus, "--out", out, "--config", config],
        "train": ["train", "--data", data, "--out", out, "--config", config, "--epochs", "1"],
        "tune": ["tune", "--data", data, "--out", out, "--config", config, "--trials", "1", "--budget", "60"]
        + ["--folds", "1"],
        "compress": ["compress", "--model", run, "--out", out, "--max-features", "60"],
    }[writer]


def check_output(writer: str, out: Path) -> None:
    """``out`` holds a whole output of ``writer``."""
    if writer == "prepare":
        load_prepared(out)
    else:
        load_bundle(out)


def leftovers(*folders: Path) -> list[str]:
    """classify's temporaries and lock files in ``folders``."""
    return sorted(p.name for f in folders if f.is_dir() for p in f.iterdir() if p.name.startswith("."))


@pytest.fixture
def needs_optuna(request):
    if "tune" in request.node.name:
        pytest.importorskip("optuna")


# --- one lock per output, for the whole command ------------------------------------------------


@pytest.mark.parametrize("writer", WRITERS)
def test_a_locked_output_is_refused_before_any_work(invoke, trained, tmp_path, writer, needs_optuna):
    out = tmp_path / "out"
    with DirectoryLock(out, "train") as lock:
        result = invoke(*writer_args(writer, trained, out))
        assert lock.path.parent == tmp_path  # beside the output: swapping it in cannot move the lock
    assert_one_clean_error(result, 3, "in use by another train")
    assert "features:" not in result.stderr and "read train" not in result.stderr
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("writer", SWAPPERS)
def test_a_writer_holds_the_lock_until_its_output_is_in_place(
    invoke, trained, tmp_path, monkeypatch, writer, needs_optuna
):
    """Another writer is refused even just after the swap (the lock did not move with it)."""
    out = tmp_path / "out"
    refused = []
    real_swap = swap._swap

    def swap_then_try_another(new, target):
        where = real_swap(new, target)
        refused.append(invoke(*writer_args("train", trained, out)))  # a train into what was just swapped in
        return where

    monkeypatch.setattr(swap, "_swap", swap_then_try_another)
    for _ in range(2):  # the second run swaps its output in over the first's
        result = invoke(*writer_args(writer, trained, out))
        assert result.exit_code == 0, result.output
    assert len(refused) == 1
    assert_one_clean_error(refused[0], 3, f"in use by another {writer}")
    check_output(writer, out)
    assert leftovers(tmp_path) == []


# --- a swap is one step, or recovered by the next lock --------------------------------------------


def test_exchange_swaps_two_directories_in_one_step(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "new").write_text("new")
    (b / "old").write_text("old")
    if not swap.exchange(a, b):
        pytest.skip("this system or file system cannot exchange two entries")
    assert [p.name for p in a.iterdir()] == ["old"] and [p.name for p in b.iterdir()] == ["new"]


# a writer run in a fresh interpreter, killed by SIGKILL right after one step of its swap
KILLED_SWAP = """
import os, signal, sys
import classify_cli.util.swap as swap
mode = sys.argv[1]
real_exchange, real_replace = swap.exchange, os.replace

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def exchange(a, b):
    if mode == "two-renames":
        return False
    done = real_exchange(a, b)
    if done:
        die()
    return done

def replace(src, dst):
    real_replace(src, dst)
    if os.path.basename(dst).startswith(".tmp-old-"):  # the old one moved aside, the new not yet in
        die()

swap.exchange, os.replace = exchange, replace
from classify_cli.cli import main
sys.argv = ["classify", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize("mode", ["two-renames", "exchange"])
@pytest.mark.parametrize("writer", SWAPPERS)
def test_a_swap_killed_at_any_step_leaves_the_old_or_the_new(invoke, trained, tmp_path, writer, mode, needs_optuna):
    out = tmp_path / "out"
    assert invoke(*writer_args(writer, trained, out)).exit_code == 0
    before = snapshot(out)
    args = [str(a) for a in writer_args(writer, trained, out)]
    if writer == "compress":
        args += ["--dtype", "float16"]  # a different output, to tell the new from the old
    elif writer == "prepare":
        args += ["--set", "prepare.seed=7"]
    else:
        args += ["--seed", "7"]
    killed = subprocess.run([sys.executable, "-c", KILLED_SWAP, mode, *args], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if mode == "two-renames":
        assert not out.exists()  # killed between the renames: the old one only as .tmp-old-*
        assert any(name.startswith(".tmp-old-") for name in leftovers(tmp_path))
    with DirectoryLock(out, writer):  # what the next command that takes the lock does first
        pass
    check_output(writer, out)
    if mode == "two-renames":
        assert snapshot(out) == before  # put back
    else:
        assert snapshot(out) != before  # the new one, whole
    assert leftovers(tmp_path) == []


# --- leftovers of killed commands ---------------------------------------------------------------------


@pytest.mark.parametrize("writer", WRITERS)
def test_leftovers_are_removed_by_the_next_writer_and_count_as_empty(invoke, trained, tmp_path, writer, needs_optuna):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").touch()  # an earlier version's lock
    (out / ".tmp-new-abcd1234-checkpoint").mkdir()  # a checkpoint killed as it was written
    (out / ".tmp-new-abcd1234-checkpoint" / "state.json").write_text("{")
    for name in (".tmp-work-abcd1234-out", ".tmp-new-efgh5678-out", ".tmp-old-ijkl9012-out"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "train.ids").write_bytes(b"\0" * 1000)
    other = tmp_path / ".tmp-work-abcd1234-out-2"  # another output's ("out-2"): not this writer's
    other.mkdir()
    result = invoke(*writer_args(writer, trained, out))
    assert result.exit_code == 0, result.output
    check_output(writer, out)
    assert leftovers(tmp_path) == [other.name]
    assert [n for n in leftovers(out) if n.startswith(".tmp-")] == []


def test_a_users_own_dot_tmp_file_is_not_a_leftover(invoke, trained, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".tmp-notes").write_text("mine\n")
    result = invoke(*writer_args("prepare", trained, out))
    assert_one_clean_error(result, 2, "holds files that are not")
    assert (out / ".tmp-notes").read_text() == "mine\n"


def test_a_train_killed_in_its_first_checkpoint_leaves_a_run_directory_train_takes(invoke, trained, tmp_path):
    _, data, _ = trained
    run = tmp_path / "run"
    code = (
        "import os, signal\n"
        "from pathlib import Path\n"
        "import classify_cli.train.checkpoint as checkpoint\n"
        "from classify_cli.util.config import load_config\n"
        "from classify_cli.train.run import train\n"
        "checkpoint.atomic_write_json = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"  # tensors written
        f"train(Path({str(data)!r}), Path({str(run)!r}), load_config({str(data.parent / 'tiny.toml')!r}), "
        "log=lambda m: None, should_stop=lambda: True)\n"
    )
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [p.name[:9] for p in run.iterdir()] == [".tmp-new-"]  # the checkpoint, half-written
    result = invoke("train", "--data", data, "--out", run, "--config", data.parent / "tiny.toml", "--epochs", "1")
    assert result.exit_code == 0, result.output
    load_bundle(run)
    assert leftovers(run) == [] and leftovers(tmp_path) == []


def test_a_prepare_killed_at_work_leaves_nothing_after_the_next(invoke, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_header_csv(corpus / "train.csv", make_rows(2000, seed=3))
    out = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "classify_cli", "prepare", "--from", corpus, "--out", out],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".tmp-work-") for p in tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert any(name.startswith(".tmp-work-") for name in leftovers(tmp_path))
    assert invoke("prepare", "--from", corpus, "--out", out).exit_code == 0
    load_prepared(out)
    assert leftovers(tmp_path) == []


# --- --out through a symlink ----------------------------------------------------------------------------


@pytest.mark.parametrize("writer", WRITERS)
def test_out_through_a_symlink_writes_its_target_and_keeps_the_link(invoke, trained, tmp_path, writer, needs_optuna):
    target = tmp_path / "real" / "out"
    target.mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(target)
    for _ in range(2):  # into the empty target, then over its own output
        result = invoke(*writer_args(writer, trained, link))
        assert result.exit_code == 0, result.output
        assert link.is_symlink() and os.readlink(link) == str(target)
        check_output(writer, target)
        assert leftovers(tmp_path) == [] and leftovers(tmp_path / "real") == []
    with DirectoryLock(target, "train"):  # one lock, whichever path names the directory
        assert_one_clean_error(invoke(*writer_args(writer, trained, link)), 3, "in use by another train")


# --- evaluate --output through symlinks ---------------------------------------------------------------

root_only = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
OTHER_UID = 12345


@pytest.fixture
def shared(tmp_path) -> Path:
    """A sticky world-writable directory, as /tmp, and a file elsewhere owned by another user."""
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o1777)
    victim = tmp_path / "victim.conf"
    victim.write_text("secret\n")
    os.chown(victim, 4242, 4242)
    victim.chmod(0o640)
    return folder


def _plant(link: Path, target: Path, uid: int | None) -> Path:
    link.symlink_to(target)
    if uid is not None:
        os.lchown(link, uid, uid)
    return link


@root_only
@pytest.mark.parametrize(
    "how",
    ["another-users-link", "through-my-link-to-theirs"],
)
def test_evaluate_output_refuses_a_symlink_another_user_planted(invoke, trained, tmp_path, shared, how):
    _, data, run = trained
    victim = tmp_path / "victim.conf"
    before = (victim.read_bytes(), victim.stat())
    output = _plant(shared / "report.json", victim, OTHER_UID)
    if how == "through-my-link-to-theirs":
        output = _plant(tmp_path / "mine.json", output, None)
    result = invoke("evaluate", "--model", run, "--data", data, "--format", "json", "--output", output)
    assert_one_clean_error(result, 2, "refusing to follow it")
    after = (victim.read_bytes(), victim.stat())
    assert after[0] == before[0] and (after[1].st_uid, after[1].st_mode) == (before[1].st_uid, before[1].st_mode)


@root_only
@pytest.mark.parametrize("link_owner", ["me", "the-directory-owner", "anyone-outside-a-shared-directory"])
def test_evaluate_output_through_a_trusted_symlink_keeps_the_files_owner_and_mode(
    invoke, trained, tmp_path, shared, link_owner
):
    _, data, run = trained
    victim = tmp_path / "victim.conf"
    if link_owner == "me":
        link = _plant(shared / "report.json", victim, None)
    elif link_owner == "the-directory-owner":
        os.chown(shared, OTHER_UID, OTHER_UID)
        link = _plant(shared / "report.json", victim, OTHER_UID)
    else:
        (tmp_path / "private").mkdir()
        link = _plant(tmp_path / "private" / "report.json", victim, OTHER_UID)
    result = invoke("evaluate", "--model", run, "--data", data, "--format", "json", "--output", link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and json.loads(victim.read_text())["n"] > 0
    st = victim.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4242, 4242, 0o640)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []
