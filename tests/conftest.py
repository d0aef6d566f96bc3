"""Shared fixtures: model configs composed from configs/ exactly as the command line does."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from cam_repro_cli import CONFIG_DIR


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
