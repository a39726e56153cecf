"""Arbitrary bytes and arbitrary JSON into every reader: exit 0 or 2, never a crash, nothing half-written."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from classify_cli.cli import app

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SUFFIXES = [".csv", ".jsonl", ".json", ".txt", ".parquet"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["text", "label", "x"]), inner, max_size=3)
    ),
    max_leaves=12,
)


def _every_reader(run, path, drawn) -> None:
    """prepare, predict and evaluate on ``path``: exit 0, 1 or 2; a failed prepare writes nothing."""
    out = path.parent / "out"
    for args in (
        ["prepare", "--from", path, "--out", out],
        ["predict", "--model", run, "--file", path, "--format", "jsonl"],
        ["evaluate", "--model", run, "--data", path, "--format", "json"],
    ):
        result = CliRunner().invoke(app, [str(a) for a in args])
        assert result.exit_code in (0, 1, 2), (args[0], drawn, result.output)
        if args[0] == "prepare" and result.exit_code != 0:
            assert not out.exists()


@FUZZ
@given(data=st.binary(max_size=400), suffix=st.sampled_from(SUFFIXES))
def test_arbitrary_bytes(trained, tmp_path_factory, data, suffix):
    _, _, run = trained
    tmp = tmp_path_factory.mktemp("fuzz")
    path = tmp / f"train{suffix}"
    path.write_bytes(data)
    _every_reader(run, path, data)


@FUZZ
@given(rows=st.lists(json_values, max_size=6), as_array=st.booleans())
def test_arbitrary_json(trained, tmp_path_factory, rows, as_array):
    _, _, run = trained
    tmp = tmp_path_factory.mktemp("fuzzj")
    path = tmp / ("train.json" if as_array else "train.jsonl")
    path.write_text(json.dumps(rows) if as_array else "".join(json.dumps(r) + "\n" for r in rows))
    _every_reader(run, path, rows)
