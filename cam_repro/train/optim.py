"""What updates the weights: the optimizer (with parameter groups), its per-batch learning-rate
schedule from OptimConfig, and one optimizer step (`Optimization`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR

from cam_repro.train.config import OptimConfig

_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)


def parameter_groups(
    model: nn.Module, cfg: OptimConfig, reused: Collection[str] | None = None
) -> list[dict]:
    """Parameter groups: (reused | new layers) x (decayed | norm weights and biases).

    `reused`: the parameter names loaded from pretrained weights; their lr is `cfg.lr`, every
    other parameter's is `cfg.lr * cfg.new_layers_lr_mult`. None: nothing was pretrained, one lr.
    """
    norm_params = {
        id(p) for m in model.modules() if isinstance(m, _NORMS) for p in m.parameters(False)
    }
    norm_wd = cfg.weight_decay if cfg.norm_weight_decay is None else cfg.norm_weight_decay
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        new = reused is not None and name not in reused
        plain = id(p) in norm_params or name.endswith(".bias")
        groups.setdefault((new, plain), []).append(p)
    return [
        {
            "params": params,
            "lr": cfg.lr * (cfg.new_layers_lr_mult if new else 1.0),
            "weight_decay": norm_wd if plain else cfg.weight_decay,
            "name": f"{'new' if new else 'reused' if reused is not None else 'all'}"
            f"{'/no_decay' if plain else ''}",
        }
        for (new, plain), params in sorted(groups.items())
    ]


def build_optimizer(
    model: nn.Module, cfg: OptimConfig, reused: Collection[str] | None = None
) -> torch.optim.Optimizer:
    """SGD (momentum, optional Nesterov) or AdamW over `parameter_groups`."""
    groups = parameter_groups(model, cfg, reused)
    if cfg.name == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0
        )
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))


def lr_factor(cfg: OptimConfig, steps_per_epoch: int, total: int) -> Callable[[int], float]:
    """The lr multiplier after `step` of `total` batches, for every schedule but onecycle."""
    warmup = cfg.warmup_epochs * steps_per_epoch

    def factor(step: int) -> float:
        if step < warmup:
            return cfg.warmup_factor + (1 - cfg.warmup_factor) * step / warmup
        epoch = step / steps_per_epoch
        if cfg.schedule == "step":
            return cfg.gamma ** math.floor(epoch / cfg.step_epochs + 1e-9)
        if cfg.schedule == "multistep":
            return cfg.gamma ** sum(epoch >= m - 1e-9 for m in cfg.milestones)
        if cfg.schedule == "cosine":
            progress = min(1.0, (step - warmup) / max(1.0, total - warmup))
            cos = 0.5 * (1 + math.cos(math.pi * progress))
            return cfg.min_lr_factor + (1 - cfg.min_lr_factor) * cos
        return 1.0  # constant

    return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, epochs: int, steps_per_epoch: int
) -> LRScheduler:
    """A scheduler stepped once per batch, for `epochs` epochs of `steps_per_epoch` batches."""
    total = max(1, epochs * steps_per_epoch)
    if cfg.schedule == "onecycle":
        return OneCycleLR(
            optimizer,
            max_lr=[g["lr"] for g in optimizer.param_groups],
            total_steps=total + 1,  # the step after the last batch stays inside the cycle
            pct_start=cfg.pct_start,
            div_factor=cfg.div_factor,
            final_div_factor=cfg.final_div_factor,
            cycle_momentum=False,  # the measured recipe keeps Nesterov momentum at 0.9
        )
    return LambdaLR(optimizer, lr_factor(cfg, steps_per_epoch, total))


@dataclass
class Optimization:
    """The optimizer, its schedule and the AMP scaler: the three states a resume restores
    (`train.state`) and what one training step moves (`step`)."""

    optimizer: torch.optim.Optimizer
    scheduler: LRScheduler
    scaler: torch.amp.GradScaler

    def parts(self) -> tuple[tuple[str, object], ...]:
        """(checkpoint key, object with a state dict), in the checkpoint's order."""
        return (
            ("optimizer", self.optimizer),
            ("scheduler", self.scheduler),
            ("scaler", self.scaler),
        )

    @property
    def lr(self) -> float:
        """The first parameter group's lr: the one the next step uses."""
        return self.optimizer.param_groups[0]["lr"]

    def step(self, loss: Tensor) -> float:
        """Backpropagate `loss`, step the weights and the schedule; returns the lr it used."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        lr = self.lr
        self.scheduler.step()
        return lr
