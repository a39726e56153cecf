"""evaluate for cron (thresholds, reports, drift, headless) and predict for pipelines."""

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from classify_cli.model.bundle import load_bundle
from classify_cli.model.inference import Predictor

from .conftest import make_rows, write_header_csv


def test_output_file_holds_the_report(invoke, trained, tmp_path):
    _, data, run = trained
    out = tmp_path / "reports" / "today.json"
    result = invoke("evaluate", "--model", run, "--data", data, "--format", "json", "--output", out)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == json.loads(result.stdout)
    assert [p.name for p in out.parent.iterdir()] == ["today.json"]  # no temporary leftovers


@pytest.mark.parametrize(
    "args, code",
    [
        (["--fail-under", "accuracy=0.0"], 0),
        # the tiny model is sure of itself, but not entirely (mean confidence ≈ 0.985)
        (["--fail-under", "mean_confidence=1"], 1),
        (["--fail-under", "accuracy=0.0", "--fail-under", "mean_confidence=1.0"], 1),
        (["--fail-over", "loss=100"], 0),
        (["--fail-over", "loss=0"], 1),
        (["--fail-under", "loss=0.5"], 2),
        (["--fail-under", "accuracy=high"], 2),
        (["--fail-under", "accuracy"], 2),
        (["--fail-under", "accuracy=1.01"], 2),
    ],
)
def test_thresholds_set_the_exit_code(invoke, trained, args, code):
    _, data, run = trained
    result = invoke("evaluate", "--model", run, "--data", data, "--format", "json", *args)
    assert result.exit_code == code, result.output
    if code == 1:
        report = json.loads(result.stdout)  # the full report is still printed
        assert report["n"] == 60 and any(not c["passed"] for c in report["thresholds"])
        assert "FAILED:" in result.stderr
    if code == 2:
        assert result.stdout == ""
        assert any(m in result.stderr for m in ("expects METRIC=VALUE", "not a number", "out of range"))


def test_headless_under_a_bare_cron_environment(trained):
    _, data, run = trained
    classify = Path(sys.executable).with_name("classify")
    env = {"PATH": "/usr/bin:/bin"}
    for fmt in ("table", "json"):
        proc = subprocess.run(
            [str(classify), "evaluate", "--model", str(run), "--data", str(data), "--format", fmt],
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == 0, proc.stderr
        assert "\x1b[" not in proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["n"] == 60


def test_drift_warnings(invoke, trained, tmp_path):
    _, _, run = trained
    shifted = write_header_csv(tmp_path / "sports.csv", [r for r in make_rows(20, seed=9) if r[0] == "Sports"])
    result = invoke("evaluate", "--model", run, "--data", shifted, "--format", "json")
    assert result.exit_code == 0
    drift = json.loads(result.stdout)["drift"]
    assert drift["label_distribution"]["total_variation"] > 0.5
    assert any("label distribution" in w for w in drift["warnings"])
    assert "warning: drift: label distribution" in result.stderr

    rows = [(lab, text + " qwzx vbnm plok ytre") for lab, text in make_rows(5, seed=3)]
    result = invoke(
        "evaluate", "--model", run, "--data", write_header_csv(tmp_path / "oov.csv", rows), "--format", "json"
    )
    drift = json.loads(result.stdout)["drift"]
    assert drift["oov_rate"]["batch"] > drift["oov_rate"]["reference"] + 0.05
    assert any("out-of-vocabulary" in w for w in drift["warnings"])

    same = invoke("evaluate", "--model", run, "--format", "json")  # the model's own test split
    assert json.loads(same.stdout)["drift"]["warnings"] == []


def _lines(tmp_path: Path) -> Path:
    path = tmp_path / "in.txt"
    path.write_text("The striker scored in the league match\n\nQuarterly earnings beat the market\nzzz qqq\n")
    return path


def test_predict_file_formats(invoke, trained, tmp_path):
    _, _, run = trained
    path = _lines(tmp_path)
    out = invoke("predict", "--model", run, "--file", path, "--format", "jsonl")
    assert out.exit_code == 0, out.output
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["label"] for r in records] == ["Sports", None, "Business", None]
    assert records[1]["abstained"] == "no known tokens"

    as_json = json.loads(invoke("predict", "--model", run, "--file", path, "--format", "json").stdout)
    assert [r["label"] for r in as_json] == [r["label"] for r in records]

    table = list(
        csv.reader(io.StringIO(invoke("predict", "--model", run, "-f", path, "--format", "csv", "-k", "2").stdout))
    )
    assert table[0] == ["label", "probability", "label_2", "probability_2", "abstained", "text"]
    assert len(table) == 5 and [row[0] for row in table[1:]] == [r["top"][0]["label"] for r in records]
    assert [row[4] for row in table[1:]] == ["", "no known tokens", "", "no known tokens"]


def test_predict_reads_csv_jsonl_and_stdin(invoke, trained, tmp_path):
    _, _, run = trained
    rows = make_rows(3, seed=5)
    csv_path = write_header_csv(tmp_path / "batch.csv", rows)
    jsonl = tmp_path / "batch.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t}) + "\n" for _, t in rows))
    expected = [t for _, t in rows]
    for args, stdin in (
        (["--file", csv_path], None),
        (["--file", jsonl], None),
        (["--file", "-"], "".join(t + "\n" for t in expected)),
        (["--file", "-", "--input-format", "csv"], csv_path.read_text()),
    ):
        result = invoke("predict", "--model", run, "--format", "jsonl", *args, input=stdin)
        assert result.exit_code == 0, result.output
        assert [json.loads(x)["text"] for x in result.stdout.splitlines()] == expected


@pytest.mark.parametrize("args", [["-"], []], ids=["dash", "no-text"])
def test_predict_reads_a_piped_stdin_like_file_dash(invoke, trained, args):
    _, _, run = trained
    texts = ["goal coach season", "", "shares profit market"]
    stdin = "".join(t + "\n" for t in texts)
    result = invoke("predict", "--model", run, "--format", "jsonl", *args, input=stdin)
    assert result.exit_code == 0, result.output
    same = invoke("predict", "--model", run, "--format", "jsonl", "--file", "-", input=stdin)
    assert result.stdout == same.stdout and [json.loads(x)["text"] for x in result.stdout.splitlines()] == texts


def test_predict_with_no_text_on_a_terminal_stdin_is_refused(trained):
    import pty

    _, _, run = trained
    master, slave = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "classify_cli", "predict", "--model", str(run)],
            stdin=slave,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        os.close(slave)
        os.close(master)
    assert done.returncode == 2 and done.stderr == "error: give either TEXT arguments or --file PATH (- for stdin)\n"


def test_predict_streams_large_files(invoke, trained, tmp_path):
    _, _, run = trained
    path = tmp_path / "big.txt"
    texts = [t for _, t in make_rows(2600, seed=1)]  # 10,400 lines: several batches
    path.write_text("\n".join(texts) + "\n")
    result = invoke("predict", "--model", run, "--file", path, "--format", "csv")
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == len(texts) + 1


def test_min_confidence_abstains(invoke, trained):
    _, _, run = trained
    text = "Quarterly earnings beat the market"
    sure = json.loads(invoke("predict", "--model", run, "--format", "json", text).stdout)
    unsure = json.loads(invoke("predict", "--model", run, "--format", "json", "--min-confidence", "1.0", text).stdout)
    assert sure["label"] == "Business" and unsure["label"] is None
    assert unsure["abstained"].startswith("confidence below")
    assert invoke("predict", "--model", run, "--min-confidence", "2", text).exit_code == 2


def test_explain_contributions_are_exact(invoke, trained):
    _, _, run = trained
    text = "bank shares"  # two tokens and one bigram: every feature is listed
    out = json.loads(invoke("predict", "--model", run, "--format", "json", "--explain", text).stdout)
    features = {e["feature"]: e["contribution"] for e in out["explain"]}
    assert set(features) == {"bank", "shares", "bank shares"}
    predictor = Predictor(load_bundle(run))
    logits = predictor.logits([text])[0]
    label = predictor.labels.index(out["label"])
    assert np.isclose(sum(features.values()) + predictor.head.bias[label], logits[label], atol=1e-4)


def test_help_and_predict_stay_light():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from classify_cli.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0\n"
        "print(sorted(m for m in ('torch', 'numpy', 'datasets', 'pandas') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_report_writes_pngs(invoke, trained, tmp_path):
    pytest.importorskip("matplotlib")
    _, _, run = trained
    result = invoke("report", run, "--out", tmp_path / "pics")
    assert result.exit_code == 0, result.output
    for name in ("curves.png", "confusion.png"):
        assert (tmp_path / "pics" / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_report_without_matplotlib(invoke, trained, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    _, _, run = trained
    result = invoke("report", run, "--out", tmp_path / "pics")
    assert result.exit_code == 3
    assert "matplotlib is not installed" in result.stderr
    assert not (tmp_path / "pics").exists()


def test_tensorboard_scalars(invoke, trained, tmp_path):
    pytest.importorskip("tensorboard")
    _, data, _ = trained
    logs = tmp_path / "tb"
    result = invoke("train", "--data", data, "--out", tmp_path / "run", "--epochs", "2", "--tensorboard", logs)
    assert result.exit_code == 0, result.output
    events = list(logs.glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logs))
    acc.Reload()
    assert [e.step for e in acc.Scalars("accuracy/validation")] == [1, 2]


def test_artifacts_follow_the_umask(trained):
    _, data, run = trained
    mask = os.umask(0)
    os.umask(mask)
    for path in [data / "manifest.json", run / "model.json"]:
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.fixture
def daily_reports(invoke, trained, tmp_path):
    """Three days of `evaluate --output` from cron, run for real on different data; the second
    day's mean confidence missed its --fail-under. Returns the reports' directory and the file names
    in the order of the days (not of their names)."""
    corpus, data, run = trained
    reports = tmp_path / "reports"
    days = [  # (file, data, extra options, day of the month)
        ("c.json", data, [], 3),
        ("a.json", corpus / "train.csv", ["--fail-under", "mean_confidence=1.0"], 4),
        ("b.json", corpus / "test.csv", ["--fail-under", "accuracy=0.1"], 5),
    ]
    for name, source, extra, day in days:
        result = invoke("evaluate", "--model", run, "--data", source, "--output", reports / name, *extra)
        assert result.exit_code == (1 if "mean_confidence=1.0" in extra else 0), result.output
        report = json.loads((reports / name).read_text())
        assert abs(datetime.fromisoformat(report["evaluated_at"]) - datetime.now(UTC)) < timedelta(minutes=5)
        # cron runs them a day apart: move each report's time to its day
        report["evaluated_at"] = f"2026-12-{day:02d}T06:00:00+00:00"
        (reports / name).write_text(json.dumps(report))
    assert [c["passed"] for c in json.loads((reports / "a.json").read_text())["thresholds"]] == [False]
    return reports, ["c.json", "a.json", "b.json"]


def _table_rows(page: str) -> list[str]:
    return [row for row in page.split("<tr")[2:]]  # after the header row


def test_report_history_draws_each_metric_and_marks_the_failed_day(invoke, daily_reports):
    pytest.importorskip("matplotlib")
    from classify_cli.serve.report import HISTORY_METRICS, is_our_picture

    reports, order = daily_reports
    result = invoke("report", "--history", reports)
    assert result.exit_code == 0, result.output
    written = [Path(line) for line in result.stdout.splitlines()]
    assert [p.name for p in written] == [*(f"history-{m}.png" for m in HISTORY_METRICS), "history.html"]
    assert all(p.parent == reports.absolute() for p in written)  # default --out: beside the reports
    assert all(is_our_picture(p) for p in written[:-1])
    page = (reports / "history.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(HISTORY_METRICS)  # self-contained
    rows = _table_rows(page)
    assert [next(name for name in order if f"<td>{name}</td>" in row) for row in rows] == order  # by time
    assert ["failed" in row.split(">")[0] for row in rows] == [False, True, False]
    assert "FAILED: mean_confidence" in rows[1] and "2026-12-04T06:00:00+00:00" in rows[1]
    assert "passed: accuracy" in rows[2]
    again = invoke("report", "--history", str(reports / "*.json"), "--out", reports)  # a glob; its own files replaced
    assert again.exit_code == 0, again.output


def test_report_history_falls_back_to_file_times_and_skips_what_is_no_report(invoke, daily_reports, tmp_path):
    pytest.importorskip("matplotlib")
    reports, order = daily_reports
    old = json.loads((reports / "b.json").read_text())
    del old["evaluated_at"]  # written before evaluate recorded the time: its file's time counts
    (reports / "b.json").write_text(json.dumps(old))
    os.utime(reports / "b.json", (0, datetime(2026, 12, 1, tzinfo=UTC).timestamp()))
    (reports / "notes.json").write_text('{"todo": "check the model"}')
    result = invoke("report", "--history", reports, "--out", tmp_path / "site")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"warning: skipped {reports / 'notes.json'}: not a classify evaluate report"]
    rows = _table_rows((tmp_path / "site" / "history.html").read_text())
    assert [next(n for n in order if f"<td>{n}</td>" in row) for row in rows] == ["b.json", "c.json", "a.json"]


@pytest.mark.parametrize(
    "files, pattern, message",
    [
        ({}, "{dir}", "no files matched"),
        ({}, "{dir}/*.json", "no files matched"),
        ({"x.json": "[1, 2]", "y.json": "{not json"}, "{dir}", "none of the 2 files is a classify evaluate report"),
    ],
    ids=["empty directory", "empty glob", "no report"],
)
def test_report_history_without_reports_is_refused(invoke, tmp_path, files, pattern, message):
    pytest.importorskip("matplotlib")
    from .test_output_safety import assert_one_clean_error

    (tmp_path / "r").mkdir()
    for name, text in files.items():
        (tmp_path / "r" / name).write_text(text)
    result = invoke("report", "--history", pattern.format(dir=tmp_path / "r"), "--out", tmp_path / "out")
    assert_one_clean_error(result, 2, message)
    assert not (tmp_path / "out").exists()


def test_report_history_keeps_a_page_it_did_not_write(invoke, daily_reports, trained):
    pytest.importorskip("matplotlib")
    from .test_output_safety import assert_one_clean_error

    reports, _ = daily_reports
    (reports / "history.html").write_text("<html>my own dashboard</html>")
    assert_one_clean_error(invoke("report", "--history", reports), 2, "not written by classify report")
    assert (reports / "history.html").read_text() == "<html>my own dashboard</html>"
    assert not list(reports.glob("*.png"))
    assert_one_clean_error(invoke("report", trained[2], "--history", reports), 2, "leave out RUN_DIR")
