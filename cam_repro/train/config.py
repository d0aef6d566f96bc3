"""The training config: typed schemas for `configs/train.yaml` and `configs/optim/*.yaml`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig

from cam_repro.data.config import DataConfig, data_config
from cam_repro.models.config import ModelConfig, model_config
from cam_repro.models.method_config import MethodConfig, method_config, method_problem
from cam_repro.runtime.config import RuntimeConfig, check_choice, runtime_config, to_schema
from cam_repro.runtime.errors import ConfigError

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("step", "multistep", "cosine", "onecycle", "constant")
TASKS = ("classify", "vqa")


@dataclass
class OptimConfig:
    """Optimizer and learning-rate schedule. Defaults: the paper's released Caffe solver.

    The release: SGD, base lr 0.001, momentum 0.9, weight decay 5e-4, batch 64, lr x0.1 every 40k
    iterations (about 2 ImageNet epochs at batch 64), no extra lr on the new layers.
    """

    name: str = "sgd"  # sgd | adamw
    lr: float = 0.001  # peak lr for onecycle; after warm-up for the others
    momentum: float = 0.9  # sgd
    nesterov: bool = False  # sgd
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adamw
    weight_decay: float = 5e-4  # of the weights (AdamW: decoupled)
    # Weight decay of BN/GN weights and of biases; null: the same as weight_decay (Caffe's way).
    norm_weight_decay: float | None = None
    # lr x this on the layers that pretrained weights do not cover (the added conv, the linear
    # layer) when model.pretrained or model.weights_path loads the rest; 1 in the release, 10 in
    # later WSOL fine-tuning. Without pretrained weights every layer is new and this does nothing.
    new_layers_lr_mult: float = 1.0
    schedule: str = "step"  # step | multistep | cosine | onecycle | constant; stepped per batch
    step_epochs: float = 2.0  # step: lr x gamma every this many epochs
    milestones: list[float] = field(default_factory=list)  # multistep: epochs where lr x gamma
    gamma: float = 0.1  # step, multistep: the lr factor at each step
    warmup_epochs: float = 0.0  # linear warm-up from warmup_factor x lr (not onecycle)
    warmup_factor: float = 0.01  # the warm-up's first lr, as a fraction of lr
    min_lr_factor: float = 0.0  # cosine: the final lr as a fraction of lr
    pct_start: float = 0.3  # onecycle: the fraction of steps over which lr rises
    div_factor: float = 25.0  # onecycle: start lr = lr / div_factor
    final_div_factor: float = 1e4  # onecycle: final lr = start lr / final_div_factor


@dataclass
class TrainerConfig:
    """How the loop runs: length, resume, logging (device and precision: `runtime`)."""

    epochs: int = 8  # passes over the train split
    # null: start fresh (and refuse a run dir that already has checkpoints/last.pt);
    # auto: continue from the run dir's checkpoints/last.pt if there is one; or a checkpoint path.
    resume: str | None = None
    deterministic: bool = False  # deterministic kernels (bit-exact reruns and resume on CPU)
    compile: bool = False  # torch.compile the model
    sync_bn: bool = False  # torchrun: synchronise batch-norm statistics across processes
    log_every: int = 20  # batches between loss/lr logs (TensorBoard) and the NaN/inf check
    checkpoint_every: int = 0  # also save last.pt every this many batches (0: at epoch ends)
    eval_every: int = 1  # validate every this many epochs (and always after the last)
    cam_images: int = 4  # fixed val images whose CAM overlays go to TensorBoard each epoch
    tensorboard: bool = True  # TensorBoard logs in RUN/tb/


@dataclass
class TrainConfig:
    """`cam-train`: everything a run needs."""

    seed: int = 0  # the initial weights, data order and augmentation
    # classify: image -> class | vqa: image + question -> answer (data.source=vqa; the model's
    # pooled image features and the question's bag-of-words feed one linear layer, models/vqa.py)
    task: str = "classify"
    model: ModelConfig = field(default_factory=ModelConfig)  # model=<variant>: configs/model/
    data: DataConfig = field(default_factory=DataConfig)  # data=<preset>: configs/data/
    optim: OptimConfig = field(default_factory=OptimConfig)  # optim=<preset>: configs/optim/
    # method=<name>: the WSOL method trained (configs/method/; docs/methods.md)
    method: MethodConfig = field(default_factory=MethodConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


def _positive(value: float, key: str, allow_zero: bool = False) -> None:
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ConfigError(
            f"{key} must be a finite number {'>=' if allow_zero else '>'} 0, got {value}"
        )


def optim_config(cfg: OptimConfig | Mapping[str, Any] | DictConfig) -> OptimConfig:
    """Validate an optim config."""
    spec = to_schema(OptimConfig, cfg, "optim")
    check_choice(spec.name, "optim.name", OPTIMIZERS)
    check_choice(spec.schedule, "optim.schedule", SCHEDULES)
    _positive(spec.lr, "optim.lr")
    _positive(spec.weight_decay, "optim.weight_decay", allow_zero=True)
    if spec.norm_weight_decay is not None:
        _positive(spec.norm_weight_decay, "optim.norm_weight_decay", allow_zero=True)
    _positive(spec.new_layers_lr_mult, "optim.new_layers_lr_mult")
    _positive(spec.step_epochs, "optim.step_epochs")
    _positive(spec.warmup_epochs, "optim.warmup_epochs", allow_zero=True)
    if not 0 <= spec.momentum < 1:
        raise ConfigError(f"optim.momentum must be in [0, 1), got {spec.momentum}")
    if not 0 < spec.gamma <= 1:
        raise ConfigError(f"optim.gamma must be in (0, 1], got {spec.gamma}")
    if not 0 < spec.warmup_factor <= 1 or not 0 <= spec.min_lr_factor <= 1:
        raise ConfigError("optim.warmup_factor must be in (0, 1] and min_lr_factor in [0, 1]")
    if not 0 < spec.pct_start < 1:
        raise ConfigError(f"optim.pct_start must be in (0, 1), got {spec.pct_start}")
    if len(spec.betas) != 2 or not all(0 <= b < 1 for b in spec.betas):
        raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {spec.betas}")
    if sorted(spec.milestones) != list(spec.milestones):
        raise ConfigError(f"optim.milestones must be increasing epochs, got {spec.milestones}")
    return spec


def trainer_config(cfg: TrainerConfig | Mapping[str, Any] | DictConfig) -> TrainerConfig:
    """Validate a trainer config."""
    spec = to_schema(TrainerConfig, cfg, "trainer")
    for key in ("epochs", "log_every", "eval_every"):
        if getattr(spec, key) < 1:
            raise ConfigError(f"trainer.{key} must be >= 1, got {getattr(spec, key)}")
    if spec.checkpoint_every < 0 or spec.cam_images < 0:
        raise ConfigError("trainer.checkpoint_every and trainer.cam_images must be >= 0")
    return spec


def train_config(cfg: TrainConfig | Mapping[str, Any] | DictConfig) -> TrainConfig:
    """Validate a whole training config (every group), or raise a one-line ConfigError."""
    spec = to_schema(TrainConfig, cfg)
    check_choice(spec.task, "task", TASKS)
    if (spec.task == "vqa") != (spec.data.source == "vqa"):
        raise ConfigError(
            f"task={spec.task} with data.source={spec.data.source}: VQA data (data=vqa or "
            "data=synthetic_vqa) goes with task=vqa, and task=vqa needs it"
        )
    if spec.task == "vqa" and spec.method.name != "cam":
        raise ConfigError(f"method={spec.method.name}: task=vqa trains plain CAM only (method=cam)")
    model, method = model_config(spec.model), method_config(spec.method)
    problem = method_problem(model, method)  # before any data is read
    if problem:
        raise ConfigError(problem)
    return TrainConfig(
        seed=spec.seed,
        task=spec.task,
        model=model,
        data=data_config(spec.data),
        optim=optim_config(spec.optim),
        method=method,
        trainer=trainer_config(spec.trainer),
        runtime=runtime_config(spec.runtime),
    )
