"""Optimizer parameter groups and the per-batch learning-rate schedules, by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cam_repro.runtime.errors import ConfigError
from cam_repro.train.config import optim_config
from cam_repro.train.optim import build_optimizer, build_scheduler, parameter_groups


def _lrs(schedule: dict, epochs: int = 4, steps: int = 10) -> list[float]:
    """The lr of every batch of a run, for a one-parameter model with lr 1."""
    cfg = optim_config({"lr": 1.0, **schedule})
    opt = build_optimizer(nn.Linear(1, 1, bias=False), cfg)
    sched = build_scheduler(opt, cfg, epochs, steps)
    lrs = []
    for _ in range(epochs * steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_step_decay_every_two_epochs() -> None:
    lrs = _lrs({"schedule": "step", "step_epochs": 2, "gamma": 0.1})
    assert lrs[:20] == [1.0] * 20  # epochs 1-2
    assert lrs[20:] == pytest.approx([0.1] * 20)  # epochs 3-4


def test_multistep_and_warmup() -> None:
    lrs = _lrs({"schedule": "multistep", "milestones": [1, 3], "warmup_epochs": 0.5})
    # Linear warm-up from 0.01 over the first 5 batches: 0.01, 0.208, 0.406, 0.604, 0.802.
    assert lrs[:5] == pytest.approx([0.01 + 0.99 * i / 5 for i in range(5)])
    assert lrs[5:10] == [1.0] * 5
    assert lrs[10:30] == pytest.approx([0.1] * 20)
    assert lrs[30:] == pytest.approx([0.01] * 10)


def test_cosine_decays_to_min() -> None:
    lrs = _lrs({"schedule": "cosine", "min_lr_factor": 0.1}, epochs=1, steps=5)
    # 0.1 + 0.9 * (1 + cos(pi * i / 5)) / 2 for i = 0..4
    expected = [0.1 + 0.45 * (1 + math.cos(math.pi * i / 5)) for i in range(5)]
    assert lrs == pytest.approx(expected)


def test_onecycle_rises_to_peak_then_anneals() -> None:
    lrs = _lrs({"schedule": "onecycle", "pct_start": 0.3, "div_factor": 25}, epochs=2, steps=50)
    assert lrs[0] == pytest.approx(1 / 25)
    peak = max(range(len(lrs)), key=lrs.__getitem__)
    assert lrs[peak] == pytest.approx(1.0, rel=1e-3) and 25 <= peak <= 35
    assert lrs[-1] < 1e-3 and all(
        a >= b for a, b in zip(lrs[peak:-1], lrs[peak + 1 :], strict=True)
    )


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.classifier = nn.Linear(4, 2)


def test_parameter_groups_new_layers_and_no_decay() -> None:
    cfg = optim_config({"lr": 0.01, "new_layers_lr_mult": 10, "norm_weight_decay": 0.0})
    reused = {"backbone.0.weight", "backbone.0.bias", "backbone.1.weight", "backbone.1.bias"}
    groups = {g["name"]: g for g in parameter_groups(_Net(), cfg, reused)}
    assert set(groups) == {"reused", "reused/no_decay", "new", "new/no_decay"}
    assert [p.shape for p in groups["reused"]["params"]] == [(4, 3, 3, 3)]
    assert len(groups["reused/no_decay"]["params"]) == 3  # conv bias, BN weight and bias
    assert groups["reused"]["lr"] == 0.01 and groups["new"]["lr"] == pytest.approx(0.1)
    assert groups["new"]["weight_decay"] == 5e-4 and groups["new/no_decay"]["weight_decay"] == 0
    # Nothing pretrained: one lr for all, new_layers_lr_mult unused.
    plain = parameter_groups(_Net(), cfg, None)
    assert {g["lr"] for g in plain} == {0.01} and {g["name"] for g in plain} == {
        "all",
        "all/no_decay",
    }


def test_sgd_nesterov_and_adamw() -> None:
    sgd = build_optimizer(_Net(), optim_config({"nesterov": True, "momentum": 0.9}))
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"]
    adamw = build_optimizer(_Net(), optim_config({"name": "adamw", "betas": [0.8, 0.9]}))
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["betas"] == (0.8, 0.9)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"name": "lbfgs"}, "optim.name must be one of sgd, adamw"),
        ({"schedule": "poly"}, "optim.schedule must be one of"),
        ({"lr": -1.0}, "optim.lr must be a finite number > 0"),
        ({"milestones": [3, 1]}, "milestones must be increasing"),
        ({"momentum": 1.5}, "optim.momentum must be in"),
        ({"lrr": 0.1}, "lrr"),
    ],
)
def test_optim_config_errors(override: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        optim_config(override)
