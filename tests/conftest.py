"""Fixtures that build tiny corpora in tmp_path and run the real commands on them."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from classify_cli.cli import app

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

TOPICS = {
    "World": "minister election embassy parliament troops treaty president capital border refugees",
    "Sports": "match goal coach season league striker tournament playoff champion stadium",
    "Business": "shares profit market investors quarterly earnings merger stock bank revenue",
    "Sci/Tech": "software chip internet researchers space computer browser satellite network virus",
}
FILLER = "the a of in on to and for with after new says report today".split()


def make_rows(n_per_class: int, seed: int = 0) -> list[tuple[str, str]]:
    """(label, text) rows whose topic words are learnable in one or two epochs."""
    rng = random.Random(seed)
    rows = []
    for label, words in TOPICS.items():
        vocab = words.split()
        for _ in range(n_per_class):
            text = " ".join(
                rng.choice(vocab) if rng.random() < 0.5 else rng.choice(FILLER) for _ in range(rng.randint(6, 14))
            )
            rows.append((label, text.capitalize() + "."))
    rng.shuffle(rows)
    return rows


def write_ag_dir(path: Path, n_train: int = 40, n_test: int = 10, seed: int = 0) -> Path:
    """A directory in the original AG News layout: train.csv, test.csv, classes.txt."""
    path.mkdir(parents=True, exist_ok=True)
    names = list(TOPICS)
    (path / "classes.txt").write_text("\n".join(names) + "\n")
    for split, n, s in (("train", n_train, seed), ("test", n_test, seed + 100)):
        with open(path / f"{split}.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, quoting=csv.QUOTE_ALL)
            for label, text in make_rows(n, s):
                title, _, desc = text.partition(" ")
                writer.writerow([names.index(label) + 1, title, desc])
    return path


def write_header_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for label, text in rows:
            writer.writerow([text, label])
    return path


def modules_imported_by(args: list, watched: tuple[str, ...]) -> list[str]:
    """Which of ``watched`` a fresh interpreter has imported after running ``classify *args``."""
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from classify_cli.cli import app\n"
        f"r = CliRunner().invoke(app, {[str(a) for a in args]!r})\n"
        "assert r.exit_code == 0, r.output\n"
        f"print(json.dumps(sorted(m for m in {watched!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def edit_json(path: Path, change, *, reseal: bool = True) -> None:
    """Change a model.json or manifest.json in place, as a hand edit would; ``reseal`` then
    recomputes its checksum, as someone who meant it would, so the checks behind it are reached."""
    from classify_cli.util.schema import sealed

    document = json.loads(Path(path).read_text())
    change(document)
    Path(path).write_text(json.dumps(sealed(document) if reseal else document))


def write_jsonl(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for lab, t in rows), encoding="utf-8")
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def invoke(runner):
    """Run `classify ARGS...` in-process; returns the Result (stdout and stderr apart)."""

    def _invoke(*args: str, input: str | None = None):
        return runner.invoke(app, [str(a) for a in args], input=input)

    return _invoke


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    # never touch the real Hugging Face cache or a real config in the working directory
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def tiny_config(tmp_path) -> Path:
    """A small, fast config: few epochs, small tables."""
    path = tmp_path / "tiny.toml"
    path.write_text(
        "[prepare]\nvalidation_fraction = 0.2\n\n"
        "[model]\nembed_dim = 16\nbuckets = 5000\n\n"
        '[train]\nepochs = 3\nlr = 2.0\nbatch_size = 16\ndevice = "cpu"\n'
    )
    return path


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Tiny AG-layout corpus, prepared and trained once for the session: (corpus, data, run)."""
    base = tmp_path_factory.mktemp("trained")
    corpus = write_ag_dir(base / "corpus", n_train=60, n_test=15)
    config = base / "tiny.toml"
    config.write_text(
        "[prepare]\nvalidation_fraction = 0.2\n\n[model]\nembed_dim = 16\nbuckets = 5000\n\n"
        '[train]\nepochs = 4\nlr = 2.0\nbatch_size = 16\ndevice = "cpu"\n'
    )
    runner = CliRunner()
    data, run = base / "data", base / "run"
    result = runner.invoke(app, ["prepare", "--from", str(corpus), "--out", str(data), "--config", str(config)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(run), "--config", str(config)])
    assert result.exit_code == 0, result.output
    return corpus, data, run


def _history(run: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def assert_same_model(a: Path, b: Path) -> None:
    """Two runs gave the same model, bit for bit, by the same epochs."""
    from classify_cli.model.bundle import load_bundle

    ta, tb = load_bundle(a).tensors, load_bundle(b).tensors
    assert ta.keys() == tb.keys()
    for key in ta:
        assert np.array_equal(ta[key], tb[key]), key
    assert _history(a) == _history(b)


def training_under_way(argv: list) -> subprocess.Popen:
    """``argv`` (a training command) started, once its first epoch line is on stderr."""
    proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if line.startswith("epoch"):
            break
    return proc
