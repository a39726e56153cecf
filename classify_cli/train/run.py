"""A training run: data in, model bundle out, with locking, checkpoints and resume.

The math lives in ``loop.py``; this module wires it to files: it takes the run directory
(``claim.py``), loads prepared data (and pretrained vectors, when given),
builds the model, runs ``train_while_improving``, keeps the best epoch's weights, saves a
checkpoint when asked to stop, and commits the bundle only when training completes, so a
failed or killed run never replaces a good model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.prepared import VOCAB, load_prepared, read_manifest
from ..model.bundle import Bundle, save_bundle
from ..model.feature_sets import fit_features
from ..model.features import TFIDF, norm_of
from ..model.head import describe, scoring_tensors
from ..model.rundir import METRICS_LOG, TRIALS, TUNED
from ..model.task import task_of, training_task
from ..serve.evaluation import validation_fields
from ..text.token_table import TokenTable
from ..text.tokens import encode_token
from ..text.vectors import Vectors, read_vectors
from ..util.config import Config, config_from_dict
from ..util.errors import BundleError, DivergedError, InputError, Interrupted
from ..util.fs import release_freed_memory, sha256_file, staged_file, through_link
from ..util.version import __version__
from .checkpoint import remove_checkpoint, save_checkpoint
from .claim import claim
from .distributed import SINGLE, World, train_command
from .loop import (
    EpochResult,
    RunState,
    StopRequested,
    resolve_batch,
    resolve_device,
    resolve_embed_dim,
    train_while_improving,
)
from .net import SGD, TextClassifier, all_finite, check_memory, class_table, export_tensors, import_tensors


def train(
    data_dir: Path | None,
    out_dir: Path,
    cfg: Config | None,
    *,
    resume: bool = False,
    log: Callable[[str], None] = print,
    on_epoch: Callable[[EpochResult], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_step: Callable[[int, int, int], None] = lambda epoch, step, steps: None,
    epochs: int | None = None,
    world: World = SINGLE,
    on_read: Callable[[int, int], None] = lambda done, total: None,
) -> dict[str, Any]:
    """Train on prepared data (or continue the checkpoint in ``out_dir`` when ``resume``).

    Saves the best epoch's bundle and ``metrics.jsonl`` in ``out_dir``; returns a summary.
    The run directory is checked and locked before any work; one this call created is
    removed again if training fails (not when interrupted: it then holds the checkpoint).
    With several ranks (``world``), rank 0 does all of that and the others write nothing there.
    """
    out_dir = through_link(Path(out_dir))  # a symlink stays: the run goes into the directory it names
    started = time.perf_counter()
    if not world.is_main:  # one voice: rank 0 logs and reports (on_step also says training began)
        log, on_epoch = (lambda message: None), None
    with contextlib.ExitStack() as held:
        checkpoint: dict[str, np.ndarray] = {}
        plan = world.from_main(lambda: claim(out_dir, data_dir, cfg, resume, epochs, world, held, checkpoint))
        if resume or cfg is None:
            cfg = config_from_dict(plan["config"])
        data_dir = Path(plan["data"]) if resume or data_dir is None else data_dir
        return _train_locked(
            data_dir,
            out_dir,
            cfg,
            plan["state"],
            checkpoint,
            started,
            log,
            on_epoch,
            should_stop,
            on_step,
            world,
            on_read if world.is_main else (lambda done, total: None),
        )


def _train_locked(
    data_dir: Path,
    out_dir: Path,
    cfg: Config,
    state: dict[str, Any] | None,
    checkpoint: dict[str, np.ndarray],
    started: float,
    log: Callable[[str], None],
    on_epoch: Callable[[EpochResult], None] | None,
    should_stop: Callable[[], bool],
    on_step: Callable[[int, int, int], None],
    world: World,
    on_read: Callable[[int, int], None],
) -> dict[str, Any]:
    """The run itself, with ``out_dir`` locked (by rank 0)."""
    # what every rank must agree on, checked before the work of building features
    files = world.together(lambda: read_manifest(Path(data_dir))["files"])
    device = world.together(lambda: _device(cfg.train.device, world))
    world.check_same(
        config=json.dumps(cfg.to_dict(), sort_keys=True),
        data=json.dumps(files, sort_keys=True),
        software=f"classify {__version__}, torch {torch.__version__}",
        device=device.type,
    )
    data, vocab, unk_index, vocab_sha, vectors, features, train_set, val_set = world.together(
        # ranks that share a node each hold a table
        lambda: _load(data_dir, cfg, state, world.per_node, on_read, log)
    )
    seed = cfg.train.seed
    torch.manual_seed(seed)
    spec, row_map = features.spec, features.row_map
    seen = row_map.seen_buckets
    task = training_task(data.manifest, cfg.train.pos_weight)
    train_cfg = resolve_batch(cfg.train, len(train_set))
    train_cfg = dataclasses.replace(train_cfg, lr=train_cfg.lr * task.step_scale)
    embed_dim = _embed_dim(cfg, vectors, row_map.num_rows)
    log(
        f"features: {len(train_set):,} train / {len(val_set):,} validation docs, vocabulary {spec.vocab_size:,}, "
        f"{len(seen):,} n-gram buckets seen, {time.perf_counter() - started:.1f}s; device {device}"
        + (f" x {world.size} ranks" if world.size > 1 else "")
        + f"; embedding {row_map.num_rows:,} x {embed_dim}, batch {train_cfg.batch_size}, lr {train_cfg.lr:g}"
    )

    model = TextClassifier(row_map.num_rows, embed_dim, len(data.labels), sparse=device.type != "mps")
    prior = torch.from_numpy(task.initial_bias(train_set.labels, len(data.labels))).float()
    model.init_weights(spec.vocab_size, torch.Generator().manual_seed(seed), prior)
    if vectors is not None:
        model.start_from_vectors(vectors.rows, vectors.matched, vectors.extra_rows, vectors.scale)
    model.to(device)
    optimizer = SGD(model.parameters(), lr=train_cfg.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=train_cfg.step_size, gamma=train_cfg.gamma)
    progress = RunState(epoch_rng=np.random.default_rng(seed).bit_generator.state)
    best: dict[str, np.ndarray] | None = None

    if state is not None:
        if world.is_main:
            best = {k.removeprefix("best."): v for k, v in checkpoint.items() if k.startswith("best.")} or None

        def load_weights() -> None:
            if world.is_main:
                import_tensors(model, {k: v for k, v in checkpoint.items() if not k.startswith("best.")}, row_map)

        world.together(load_weights)  # a checkpoint another version wrote can be refused: no rank left waiting
        world.broadcast_([model.embedding.weight.data, model.fc.weight.data, model.fc.bias.data])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        progress = RunState(**state["progress"])
        log(f"resuming at epoch {progress.epoch}, step {progress.step}")
    try:
        for result in train_while_improving(
            model,
            train_set,
            val_set,
            train_cfg,
            optimizer,
            scheduler,
            progress,
            device,
            should_stop,
            on_step,
            world,
            task=task,  # the data says what is asked of each text
        ):
            if result.is_best and world.is_main:
                best = class_table(model, row_map)
            if on_epoch is not None:
                on_epoch(result)
    except StopRequested:
        world.from_main(
            lambda: _save_checkpoint(
                out_dir, cfg, data.path, vocab_sha, vectors, progress, optimizer, scheduler, model, row_map, best, world
            )
        )
        raise Interrupted(
            f"interrupted at epoch {progress.epoch}, step {progress.step}; checkpoint saved. Resume with: "
            + f"{train_command(world)} --resume {out_dir}"
        ) from None
    # the bundle is made from `best`: the live model and the mapped train split go first, so
    # their memory is not held beside the bundle's tables and the validation pass
    model = optimizer = scheduler = train_set = val_set = (
        None  # not del: ruff reads the except clause's lambda as a use after it
    )
    return world.from_main(
        lambda: _save_model(
            out_dir,
            data,
            features,
            cfg,
            (vocab, unk_index),
            vocab_sha,
            vectors,
            train_cfg,
            embed_dim,
            progress,
            best,
            started,
            world,
        )
    )


def _load(
    data_dir: Path,
    cfg: Config,
    state: dict[str, Any] | None,
    copies: int,
    on_read: Callable[[int, int], None],
    log: Callable[[str], None],
):
    """The prepared data, the vectors (if any) and the features of its train and validation
    splits; refused before the tables are made if they would not fit in memory with ``copies``
    ranks on this machine."""
    data = load_prepared(Path(data_dir), ("train", "validation"))
    vocab_sha = sha256_file(data.path / VOCAB)
    if state is not None and state["data"]["vocab_sha256"] != vocab_sha:
        raise BundleError(f"the prepared data at {data.path} changed since the checkpoint was saved; cannot resume")
    # the vocabulary as the bundle keeps it, built now so the list of tokens can go before training
    vocab_size, unk_index = len(data.vocab), data.vocab.unk_index
    tokens = [encode_token(t) for t in data.vocab.itos]
    vocab = TokenTable.build(tokens, range(vocab_size), unk_index)
    data.vocab = None
    vectors = None
    if cfg.model.vectors is not None:
        vectors = _read_vectors(cfg, vocab, vocab_size, state, on_read, log)
        if vectors.extra_tokens:  # words training never saw, after the train vocabulary's
            tokens += vectors.extra_tokens
            vocab_size = len(tokens)
            vocab = TokenTable.build(tokens, range(vocab_size), unk_index)
    del tokens
    classes, val_docs = len(data.labels), len(data.splits["validation"])

    def fits(num_rows: int) -> None:  # once the rows are known, before any table of rows x classes
        check_memory(num_rows, _embed_dim(cfg, vectors, num_rows), classes, val_docs, copies)

    features, train_set = fit_features(data.splits.pop("train"), vocab_size, cfg.model, classes, fits)
    val_set = features.make_set(data.splits["validation"])
    release_freed_memory()  # the vocabulary's strings and the passes' temporaries, before the tables
    return data, vocab, unk_index, vocab_sha, vectors, features, train_set, val_set


def _embed_dim(cfg: Config, vectors: Vectors | None, num_rows: int) -> int:
    """The table's width: the vectors' columns (when given), then ``model.embed_dim`` learned ones."""
    return (vectors.dim if vectors is not None else 0) + resolve_embed_dim(cfg.model.embed_dim, num_rows)


def _read_vectors(cfg: Config, vocab: TokenTable, vocab_size: int, state, on_read, log) -> Vectors:
    """The vectors ``model.vectors`` names, for the train vocabulary and those ``vectors_vocab`` adds."""
    started = time.perf_counter()
    vectors = read_vectors(Path(cfg.model.vectors), vocab, vocab_size, cfg.model.vectors_vocab, on_read)
    if state is not None and state["data"].get("vectors_sha256") != vectors.info["sha256"]:
        raise BundleError(f"the vectors file {cfg.model.vectors} changed since the checkpoint was saved; cannot resume")
    info = vectors.info
    log(
        f"vectors: {info['words']:,} words of {info['dim']} dimensions, {info['matched']:,} of the "
        f"{vocab_size:,} train words found, {info['kept']:,} more kept, {time.perf_counter() - started:.1f}s"
    )
    return vectors


def _device(name: str, world: World) -> torch.device:
    device = resolve_device(name)
    if world.size > 1 and device.type == "mps":
        raise InputError("--device mps trains in one process only (gloo cannot sum MPS tensors)")
    if world.backend == "nccl" and device.type != "cuda":
        raise InputError(f"--backend nccl moves CUDA tensors only; this run is on {device.type} (use gloo or auto)")
    if device.type == "cuda" and world.size > 1:  # one GPU per rank on its node
        device = torch.device("cuda", world.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    return device


def _save_checkpoint(
    out_dir, cfg, data_path, vocab_sha, vectors, progress, optimizer, scheduler, model, row_map, best, world
):
    tensors = export_tensors(model, row_map)
    if best is not None:
        tensors |= {f"best.{k}": v for k, v in best.items()}
    save_checkpoint(
        out_dir,
        {
            "config": cfg.to_dict(),
            "data": {"path": str(data_path.resolve()), "vocab_sha256": vocab_sha}
            | ({"vectors_sha256": vectors.info["sha256"]} if vectors is not None else {}),
            "progress": dataclasses.asdict(progress),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "world_size": world.size,
        },
        tensors,
    )


def _save_model(
    out_dir, data, features, cfg, vocabulary, vocab_sha, vectors, train_cfg, embed_dim, progress, best, started, world
):
    """The best epoch's bundle and the run's metrics, committed together; the run's summary."""
    if best is None or not all_finite(best):
        raise DivergedError("training produced no finite model; lower train.lr")
    spec, seen = features.spec, features.row_map.seen_buckets
    vocab, unk_index = vocabulary
    history = progress.history
    best_row = [r for r in history if r["is_best"]][-1]
    task = training_task(data.manifest, cfg.train.pos_weight)
    bias = best["bias"] - np.float32(task.logit_shift)  # probabilities that mean what they say
    tensors = scoring_tensors(best["table"], bias, seen, features.idf, norm_of(spec.weighting), vocab)
    meta = bundle_meta(data, features, cfg, vocab_sha, len(seen))
    meta["head"] = describe(tensors, spec, unk_index, norm_of(spec.weighting))
    meta["train_effective"] = {"batch_size": train_cfg.batch_size, "lr": train_cfg.lr}  # "auto" resolved
    meta["world_size"] = world.size  # ranks that trained it (torchrun); a global batch is split among them
    meta["model_effective"] = {"embed_dim": embed_dim}
    if vectors is not None:  # which vectors it started from, and how many of its words they gave
        meta["vectors"] = vectors.info
    meta["best"] = {k: best_row[k] for k in ("epoch", "val_loss", task.score_name)}
    # the drift reference and (several labels per text) the threshold, chosen on validation
    per_label = cfg.model.thresholds == "per_label"
    meta |= validation_fields(Bundle(out_dir, meta, tensors), data.splits["validation"], data.labels, per_label)
    metrics = "".join(json.dumps(r) + "\n" for r in history).encode()
    # metrics.jsonl changes with the model or not at all: written first, renamed after the commit
    with staged_file(out_dir / METRICS_LOG, lambda tmp: tmp.write_bytes(metrics)):
        save_bundle(out_dir, tensors, meta)
    remove_checkpoint(out_dir)
    for name in (TUNED, TRIALS):  # a tuned run's: they described the model just replaced
        (out_dir / name).unlink(missing_ok=True)
    return {
        "best_epoch": best_row["epoch"],
        task.score_name: best_row[task.score_name],
        **({"decision": meta["decision"]} if "decision" in meta else {}),
        "val_loss": best_row["val_loss"],
        "epochs_run": len(history),
        "epochs": cfg.train.epochs,
        "seconds": round(time.perf_counter() - started, 3),
        "out": str(out_dir),
    }


def bundle_meta(data, features, cfg: Config, vocab_sha: str, kept_buckets: int) -> dict[str, Any]:
    """Everything but the weights that predicting with the model needs, and where it came from."""
    spec = features.spec
    return {
        "task": task_of(data.manifest).name,
        "labels": data.labels,
        "tokenizer": data.tokenizer,
        "features": {
            "ngrams": spec.ngrams,
            "buckets": spec.buckets,
            "weighting": spec.weighting,
            "kept_buckets": kept_buckets,
            "unseen_idf": features.unseen_idf(),
            "supervised_weight": cfg.model.supervised_weight if spec.weighting in TFIDF else 0.0,
            "n_train_docs": features.n_train_docs,
        },
        "model": dataclasses.asdict(cfg.model),
        "train": dataclasses.asdict(cfg.train),
        "prepare": data.manifest.get("config", {}).get("prepare"),
        "data": {
            "path": str(data.path.resolve()),
            "source": data.manifest.get("source"),
            "vocab_sha256": vocab_sha,
            "rows": {s: v["rows"] for s, v in data.manifest["splits"].items()},
            "per_class": data.manifest["splits"]["train"]["per_class"],
        },
    }
