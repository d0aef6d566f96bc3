"""Shared fixtures: every app's schema registered, the seed, a small dataset and a network trained
on it. Plain helpers (configs composed as the command line does, CSV rows) are in helpers.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers import SMALL, train_cfg
from omegaconf import DictConfig

from cam_repro.apps import APPS, compose, register
from cam_repro.data.synth_writer import generate

# Every app's schema, for the tests that compose configs as the commands do (each command
# registers only its own).
for _app in APPS:
    register(_app)


@pytest.fixture(scope="session")
def model_cfg() -> Callable[..., DictConfig]:
    """model_cfg("vgg16_gap", "model.width_mult=0.25") -> the composed `model` node."""

    def make(variant: str, *overrides: str) -> DictConfig:
        return compose("models", [f"model={variant}", *overrides]).model

    return make


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> Path:
    """SMALL (helpers.py): 3 classes of 32 px images, 64 train and 16 val each."""
    out = tmp_path_factory.mktemp("synth") / "small"
    generate({**SMALL, "out": str(out)})
    return out


@pytest.fixture(scope="session")
def trained(small_data: Path, tmp_path_factory) -> Path:
    """tiny_gap trained 4 epochs on the small synthetic set (~1 s): its best.pt."""
    from cam_repro.train import train

    run = tmp_path_factory.mktemp("train") / "run"
    train(train_cfg(small_data, "trainer.epochs=4"), run)
    return run / "checkpoints" / "best.pt"
