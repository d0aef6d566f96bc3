"""cam-train: a tiny run that learns, its run dir, exact resume, NaN stops, clear errors."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import write_classic, write_cub
from helpers import train_cfg
from omegaconf import OmegaConf
from PIL import Image

from cam_repro.data import read_split
from cam_repro.data.loaders import eval_loader
from cam_repro.models.checkpoint import load_checkpoint, load_model
from cam_repro.runtime.distributed import Dist
from cam_repro.runtime.errors import ConfigError, RunInterruptedError
from cam_repro.train import TrainingDivergedError, train, validate
from cam_repro.train.config import train_config
from cam_repro.train.epoch import batch_inputs


def final_state(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints/last.pt")["model"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.slow
def test_tiny_run_learns_and_fills_its_run_dir(small_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    metrics = train(train_cfg(small_data, "trainer.epochs=4"), run)
    assert metrics["status"] == "finished" and len(metrics["epochs"]) == 4
    final = metrics["final"]
    assert final["val_top1_err"] < 35.0  # chance is 66.7% with 3 classes
    assert metrics["epochs"][-1]["train_loss"] < metrics["epochs"][0]["train_loss"]
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert sorted(p.name for p in run.iterdir()) == [
        ".cam-repro.lock",
        "checkpoints",
        "config.yaml",
        "metrics.json",
        "tb",
        "train.log",
    ]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    assert any((run / "tb").glob("events.out.tfevents.*"))
    assert "epoch 4/4" in (run / "train.log").read_text()
    saved = train_config(OmegaConf.load(run / "config.yaml"))
    assert saved.data.root == str(small_data) and saved.model.pool == "gap"

    # best.pt holds the epoch with the lowest val error; evaluating it alone gives that number.
    model, state = load_model(run / "checkpoints/best.pt")
    assert state["classes"] == ["n90000000", "n90000001", "n90000002"]
    spec = train_config(state["config"])
    val = validate(
        model,
        eval_loader(read_split(spec.data, "val"), spec.data, Dist()),
        batch_inputs(spec),
        Dist(),
    )
    assert val["top1_err"] == metrics["best"]["val_top1_err"]
    assert val["images"] == 48


def test_tensorboard_has_curves_and_cam_overlays(small_data: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(train_cfg(small_data, "trainer.epochs=2", "trainer.log_every=2"), tmp_path / "run")
    events = EventAccumulator(str(tmp_path / "run" / "tb"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "epoch/val_top1_err", "epoch/val_top5_err"} <= scalars
    assert len(events.Scalars("train/loss")) == 6  # 12 batches, logged every 2
    images = events.Images("val/cam_top1")
    assert len(images) == 2  # one strip per epoch: 4 fixed val images, 32 px drawn at 128
    assert (images[0].width, images[0].height) == (4 * 128, 128)
    strip = np.asarray(Image.open(io.BytesIO(images[-1].encoded_image_string)).convert("RGB"))
    assert strip.std() > 20  # heatmap colours over the images, not a blank picture
    assert (strip == [0, 255, 0]).all(axis=2).sum() > 100  # the green ground-truth box outlines


@pytest.mark.parametrize("checkpoint_every", [0, 4], ids=["epoch-checkpoint", "step-checkpoint"])
def test_killed_run_resumes_to_the_same_weights(
    small_data: Path, tmp_path: Path, checkpoint_every: int
) -> None:
    overrides = ["trainer.epochs=2", "trainer.deterministic=true", "data.num_workers=0"]
    train(train_cfg(small_data, *overrides), tmp_path / "straight")

    run = tmp_path / "killed"
    killed = [*overrides, f"trainer.checkpoint_every={checkpoint_every}"]

    def kill_at_step_10(trainer) -> None:
        if trainer.global_step == 10:  # epoch 2, batch 4 of 6
            raise KeyboardInterrupt

    # Without step checkpoints the run restarts epoch 2; with them, after batch 2 (step 8).
    at = "after epoch 1" if checkpoint_every == 0 else "at epoch 2, batch 2"
    with pytest.raises(RunInterruptedError, match=f"epoch 2, batch 4; the last checkpoint .{at}"):
        train(train_cfg(small_data, *killed), run, on_step=kill_at_step_10)
    state = load_checkpoint(run / "checkpoints/last.pt")
    expected = (1, 0, 6) if checkpoint_every == 0 else (1, 2, 8)
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == expected

    metrics = train(train_cfg(small_data, *killed, "trainer.resume=auto"), run)
    assert_same_weights(final_state(tmp_path / "straight"), final_state(run))
    straight = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    for a, b in zip(straight["epochs"], metrics["epochs"], strict=True):
        assert a["train_loss"] == b["train_loss"] and a["val_top1_err"] == b["val_top1_err"]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(
    small_data: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"

    def poison(trainer) -> None:
        if trainer.global_step == 8:  # in epoch 2, after epoch 1's checkpoint
            with torch.no_grad():
                trainer.model.classifier.weight.fill_(float("nan"))

    with pytest.raises(TrainingDivergedError, match=r"became nan at epoch 2.*last good checkpoint"):
        train(train_cfg(small_data, "trainer.epochs=3", "trainer.log_every=1"), run, poison)
    state = load_checkpoint(run / "checkpoints/last.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    assert json.loads((run / "metrics.json").read_text())["status"].startswith("diverged")


def test_a_run_dir_with_a_run_is_not_overwritten(small_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(train_cfg(small_data, "trainer.epochs=1", "optim=sgd"), run)
    config = (run / "config.yaml").read_text()
    with pytest.raises(ConfigError, match=r"already holds a run.*trainer.resume=auto"):
        train(train_cfg(small_data, "trainer.epochs=1", "optim=sgd", "seed=5"), run)
    assert (run / "config.yaml").read_text() == config  # the refused run wrote nothing over it
    again = ["trainer.resume=auto", "optim=sgd"]
    with pytest.raises(
        ConfigError, match=r"another model config \(pool 'gap' in the file, 'gmp' here\)"
    ):
        train(train_cfg(small_data, *again, "model=tiny_gmp"), run)
    with pytest.raises(ConfigError, match=r"6 batches per epoch, this run has 3"):
        train(train_cfg(small_data, *again, "data.batch_size=64"), run)
    # A finished run resumed with more epochs trains only the new ones.
    more = train(train_cfg(small_data, *again, "trainer.epochs=2"), run)
    assert [e["epoch"] for e in more["epochs"]] == [1, 2] and more["global_step"] == 12


def test_a_one_cycle_run_cannot_be_stretched(small_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(train_cfg(small_data, "trainer.epochs=1"), run)
    with pytest.raises(ConfigError, match=r"one-cycle schedule is laid out over its 1 epochs"):
        train(train_cfg(small_data, "trainer.epochs=2", "trainer.resume=auto"), run)


def test_fp16_needs_a_gpu(small_data: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"runtime\.amp=fp16 needs a GPU"):
        train(train_cfg(small_data, "runtime.amp=fp16"), tmp_path / "run")


def test_bf16_autocast_and_channels_last_train_on_cpu(small_data: Path, tmp_path: Path) -> None:
    metrics = train(
        train_cfg(small_data, "trainer.epochs=1", "runtime.amp=bf16", "runtime.channels_last=true"),
        tmp_path / "run",
    )
    assert math.isfinite(metrics["final"]["val_loss"])
    # Autocast computes in bf16 but keeps the weights in float32, NCHW or not.
    weights = final_state(tmp_path / "run")
    assert weights["backbone.0.weight"].dtype == torch.float32


@pytest.mark.parametrize("source", ["imagenet", "cub"])
def test_trains_on_ilsvrc_and_cub_folders(tmp_path: Path, source: str) -> None:
    """The real-data paths: JPEGs decoded by 2 worker processes, classic ILSVRC or CUB tables."""
    if source == "imagenet":
        root, counts = write_classic(tmp_path / "ilsvrc"), (6, 3)
    else:
        root, counts = write_cub(tmp_path / "cub"), (2, 2)
    cfg = train_cfg(
        root, f"data={source}", "data.image_size=16", "data.resize_size=16", "data.batch_size=4",
        "data.num_workers=2", "trainer.epochs=2", "trainer.cam_images=2",
    )  # fmt: skip
    metrics = train(cfg, tmp_path / "run")
    assert (metrics["num_train"], metrics["num_val"]) == counts
    assert metrics["status"] == "finished" and metrics["global_step"] == 2 * -(-counts[0] // 4)
    assert math.isfinite(metrics["final"]["val_loss"])
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    assert len(state["classes"]) == (3 if source == "imagenet" else 2)
