import pytest

from classify_cli.train.loop import resolve_batch
from classify_cli.util.config import WEIGHTINGS, load_config, parse_override
from classify_cli.util.errors import ConfigError


def test_defaults_load_without_a_file():
    cfg = load_config(None)
    assert cfg.train.epochs >= 1 and cfg.model.ngrams >= 1


def test_shipped_config_is_valid():
    from pathlib import Path

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "agnews.toml")
    assert cfg.model.weighting in ("auto", *WEIGHTINGS)


@pytest.mark.parametrize(
    "toml, message",
    [
        ("[train]\nlearning_rate = 0.1\n", "unknown key train.learning_rate"),
        ("[trian]\nlr = 0.1\n", "unknown section [trian]"),
        ('[train]\nlr = "fast"\n', "train.lr: expected float"),
        ("[train]\nepochs = 2.5\n", "train.epochs: expected int"),
        ("[train]\nepochs = true\n", "train.epochs: expected int"),
        ("[train]\nlr = 0\n", "train.lr must be > 0"),
        ("[train]\nlr = -1.0\n", "train.lr must be > 0"),
        ("[train]\nepochs = 0\n", "train.epochs must be at least 1"),
        ("[prepare]\nvalidation_fraction = 1.5\n", "prepare.validation_fraction must be in (0, 1)"),
        ("[prepare]\nvalidation_fraction = 0\n", "prepare.validation_fraction must be in (0, 1)"),
        ('[prepare]\ntext_fields = "text"\n', "prepare.text_fields: expected a list"),
        ('[model]\nweighting = "bm25"\n', "model.weighting must be"),
        ('[train]\ndevice = "tpu"\n', "train.device must be one of"),
        ('[train]\nbatch_size = "big"\n', 'train.batch_size must be at least 1, or "auto"'),
        ("[train]\nbatch_size = 0\n", 'train.batch_size must be at least 1, or "auto"'),
        ("this is = not toml [", "not valid TOML"),
    ],
)
def test_bad_configs_name_the_key(tmp_path, toml, message):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(
        ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")
    ):
        load_config(path)


def test_int_is_accepted_for_float_and_overrides_apply(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[train]\nlr = 3\n")
    cfg = load_config(path, {("train", "epochs"): 2})
    assert cfg.train.lr == 3.0 and isinstance(cfg.train.lr, float)
    assert cfg.train.epochs == 2


@pytest.mark.parametrize(
    "text, expected",
    [
        ("train.lr=0.5", ("train", "lr", 0.5)),
        ("model.weighting=mean", ("model", "weighting", "mean")),
        ('prepare.text_fields=["title", "description"]', ("prepare", "text_fields", ["title", "description"])),
    ],
)
def test_parse_override(text, expected):
    assert parse_override(text) == expected


def test_parse_override_rejects_garbage():
    with pytest.raises(ConfigError):
        parse_override("lr0.5")


def test_shipped_config_matches_builtin_defaults():
    """Running outside the checkout (no configs/ in reach) must train the same model."""
    from pathlib import Path

    assert load_config(Path(__file__).resolve().parents[1] / "configs" / "agnews.toml") == load_config(None)


@pytest.mark.parametrize(
    "n_docs, batch, lr",
    [
        (1_000, 64, 2.0),
        (15_999, 64, 2.0),
        (16_000, 128, 4.0),
        (50_000, 256, 8.0),
        (92_416, 512, 8.0),
        (1_000_000, 512, 8.0),
    ],
)
def test_auto_batch_grows_with_the_corpus_and_scales_lr(n_docs, batch, lr):
    cfg = load_config(None).train
    assert cfg.batch_size == "auto"
    resolved = resolve_batch(cfg, n_docs)
    assert (resolved.batch_size, resolved.lr) == (batch, lr)
    assert resolved.epochs == cfg.epochs and cfg.batch_size == "auto"  # the rest untouched, a copy


def test_a_number_for_batch_size_keeps_lr_as_given():
    cfg = load_config(None, {("train", "batch_size"): 32, ("train", "lr"): 0.5}).train
    assert resolve_batch(cfg, 1_000_000) == cfg
    assert (
        load_config(None, {("train", "batch_size"): parse_override("train.batch_size=auto")[2]}).train.batch_size
        == "auto"
    )
