"""Shared fixtures: configs composed from configs/ as the command line does; a small dataset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from cam_repro.apps import APPS, register
from cam_repro.data.synth_writer import generate
from cam_repro_cli import CONFIG_DIR

# Every app's schema, for the tests that compose configs as the commands do (each command
# registers only its own).
for _app in APPS:
    register(_app)


@pytest.fixture(scope="session")
def model_cfg() -> Callable[..., DictConfig]:
    """model_cfg("vgg16_gap", "model.width_mult=0.25") -> the composed `model` node."""

    def make(variant: str, *overrides: str) -> DictConfig:
        with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
            return compose("models", overrides=[f"model={variant}", *overrides]).model

    return make


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# 3 classes of 32 px images, 64 train and 16 val each: 6 batches of 32 per epoch, ~0.3 s an epoch.
SMALL = {
    "num_classes": 3,
    "train_per_class": 64,
    "val_per_class": 16,
    "image_size": 32,
    "evidence": "uniform",
}
SMALL_TRAIN = [
    "data.image_size=32",
    "data.resize_size=32",
    "data.batch_size=32",
    "runtime.device=cpu",
    "runtime.progress=false",
]


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "small"
    generate({**SMALL, "out": str(out)})
    return out


@pytest.fixture(scope="session")
def trained(small_data: Path, tmp_path_factory) -> Path:
    """tiny_gap trained 4 epochs on the small synthetic set (~1 s): its best.pt."""
    from cam_repro.train import train

    run = tmp_path_factory.mktemp("train") / "run"
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose("train", [f"data.root={small_data}", *SMALL_TRAIN, "trainer.epochs=4"])
    train(cfg, run)
    return run / "checkpoints" / "best.pt"
