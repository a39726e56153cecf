"""The Python API: classify_cli.load(run_dir).predict(texts), as predict --format json says it."""

import json
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import classify_cli


def test_predict_gives_the_records_of_the_command_line(invoke, trained):
    _, _, run = trained
    texts = ["goal coach season", "bank shares profit", "zzzz qqqq"]
    model = classify_cli.load(run)
    assert model.labels == json.loads((run / "model.json").read_text())["labels"]
    cli = json.loads(invoke("predict", "--model", run, "--format", "json", "-k", "2", *texts).stdout)
    assert model.predict(texts, k=2) == cli
    assert model.predict([]) == []
    with pytest.raises(TypeError, match="a list of texts"):
        model.predict("goal coach season")


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"min_confidence": float("nan")}, ValueError, "min_confidence must be between 0 and 1, not nan"),
        ({"min_confidence": -1}, ValueError, "min_confidence must be between 0 and 1, not -1"),
        ({"min_confidence": 2}, ValueError, "min_confidence must be between 0 and 1, not 2"),
        ({"min_confidence": "0.5"}, TypeError, "min_confidence must be a number, not str '0.5'"),
        ({"k": 0}, ValueError, "k must be at least 1, not 0"),
        ({"k": -3}, ValueError, "k must be at least 1, not -3"),
        ({"k": "2"}, TypeError, "k must be an integer, not str '2'"),
        ({"k": 2.0}, TypeError, "k must be an integer, not float 2.0"),
        ({"k": True}, TypeError, "k must be an integer, not bool True"),
    ],
)
def test_predict_refuses_bad_options_with_a_clear_message(trained, options, error, message):
    _, _, run = trained
    model = classify_cli.load(run)
    with pytest.raises(error) as raised:
        model.predict(["goal coach season"], **options)
    assert str(raised.value) == message


def test_predict_takes_numpy_numbers_and_k_past_the_labels(trained):
    import numpy as np

    _, _, run = trained
    model = classify_cli.load(run)
    expected = model.predict(["goal coach season"], k=4, min_confidence=0.5)
    assert model.predict(["goal coach season"], k=np.int64(9), min_confidence=np.float32(0.5)) == expected


def test_one_model_serves_many_threads(trained):
    _, _, run = trained
    model = classify_cli.load(run)
    batches = [[f"goal coach season {i}", f"bank shares {i}", "minister troops"] * 50 for i in range(16)]
    alone = [model.predict(batch, k=3) for batch in batches]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda batch: model.predict(batch, k=3), batches))
    assert together == alone


def test_loading_and_predicting_import_no_torch(trained):
    _, _, run = trained
    code = (
        "import sys, classify_cli\n"
        f"classify_cli.load({str(run)!r}).predict(['goal coach season'])\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_tampered_model_is_refused(trained, tmp_path):
    import shutil

    from classify_cli.util.errors import BundleError

    _, _, run = trained
    shutil.copytree(run, tmp_path / "run")
    weights = next((tmp_path / "run").glob("model-*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum"):
        classify_cli.load(tmp_path / "run")


def _readme_examples() -> list[str]:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("### From Python") : readme.index("### Pictures")]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_examples_run_as_written(trained, tmp_path):
    """Each Python block of the README's "From Python", as a script beside runs/ag_news."""
    _, _, run = trained
    shutil.copytree(run, tmp_path / "runs" / "ag_news")
    (tmp_path / "news").mkdir()
    texts = [["goal coach season", "bank shares profit"], ["minister troops border", "", "software chip"]]
    for i, part in enumerate(texts):
        (tmp_path / "news" / f"{i}.txt").write_text("\n".join(part) + "\n")
    api, engine = _readme_examples()
    for name, code in (("api.py", api), ("engine.py", engine)):
        if name == "engine.py":
            pytest.importorskip("dask.bag")
        (tmp_path / name).write_text(code)
        done = subprocess.run([sys.executable, name], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    labels = classify_cli.load(run).labels
    written = [line.split("\t") for f in sorted((tmp_path / "labels").iterdir()) for line in f.read_text().splitlines()]
    assert len(written) == sum(len(part) for part in texts)
    assert sorted(label for label, _ in written).count("None") == 1  # the empty line: no known token, no label
    assert all(label in [*labels, "None"] and 0 < float(p) <= 1 for label, p in written), written
