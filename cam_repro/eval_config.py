"""The evaluation config: the typed schema of `configs/eval.yaml` (`cam-eval`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import DictConfig

from cam_repro.boxes import NORMALIZE
from cam_repro.data.config import DataConfig, data_config
from cam_repro.engine.config import AMP, BACKENDS, DEVICES, check_choice
from cam_repro.errors import ConfigError
from cam_repro.models.config import ModelConfig, model_config
from cam_repro.typed_config import to_schema

LOCALIZERS = ("cam", "backprop")
BOX_RULES = ("paper", "release")
SPLITS = ("val", "train")


def _optional(tp: Any) -> Any:
    return Optional[tp]  # noqa: UP045 (OmegaConf reads typing.Optional, not `X | None` strings)


# Every data key, defaulting to None: "keep what the checkpoint's training config says".
DataOverrides = dataclasses.make_dataclass(
    "DataOverrides",
    [(f.name, _optional(f.type), None) for f in dataclasses.fields(DataConfig)],
)


@dataclass
class EvalRuntimeConfig:
    """Where and how the network runs (the keys of the same name in cam-train's `trainer`)."""

    device: str = "auto"  # auto | cpu | cuda; under torchrun: cuda:LOCAL_RANK
    dist_backend: str = "auto"  # auto (nccl on GPUs, gloo on CPU) | nccl | gloo
    amp: str = "none"  # none | bf16 | fp16 (the forward pass only; maps are computed in fp32)
    channels_last: bool = True
    threads: int | None = None  # CPU threads per process; null: PyTorch's choice
    progress: bool = True


@dataclass
class EvalConfig:
    """`cam-eval`: classification and localization errors of a network on a labelled split."""

    # A cam-train checkpoint (RUN_DIR/checkpoints/best.pt); the network, classes and data config
    # come from it. Or, instead, a model (model=vgg16 model.pretrained=true) and data (data=...).
    checkpoint: str | None = None
    model: ModelConfig | None = None
    data: DataOverrides = field(default_factory=DataOverrides)  # type: ignore[valid-type]
    trainer: EvalRuntimeConfig = field(default_factory=EvalRuntimeConfig)
    split: str = "val"
    localizer: str = "cam"  # cam (class activation map) | backprop (Simonyan et al. saliency)
    box_rule: str = "paper"  # paper (the text) | release (the released code's box generator)
    threshold: float = 0.2  # paper rule: keep pixels >= threshold x the map's (normalised) max
    normalize: str = "max"  # max (the paper) | minmax (later WSOL work)
    all_boxes: bool = False  # paper rule: every component's box (right if any matches)
    ten_crop: bool = False  # 4 corners + centre of the resize_size image, and their mirrors
    iou_threshold: float = 0.5
    topk: int = 5
    # MaxBoxAccV2 (Choe et al. 2020) and the threshold sweep: thresholds 0, 1/n, ..., (n-1)/n
    maxboxacc: bool = True
    sweep_thresholds: int = 1000
    maxboxacc_iou: list[int] = field(default_factory=lambda: [30, 50, 70])
    # PxAP, the mask metric: auto (when every image has a foreground mask) | true | false
    pxap: str = "auto"


def check_runtime(trainer: EvalRuntimeConfig) -> None:
    """The `trainer` keys of cam-eval and cam-visualize: one-line errors for bad values."""
    check_choice(trainer.device, "trainer.device", DEVICES)
    check_choice(trainer.amp, "trainer.amp", AMP)
    check_choice(trainer.dist_backend, "trainer.dist_backend", BACKENDS)
    if trainer.threads is not None and trainer.threads < 1:
        raise ConfigError(f"trainer.threads must be >= 1, got {trainer.threads}")


def eval_config(cfg: EvalConfig | Mapping[str, Any] | DictConfig) -> EvalConfig:
    """Validate an eval config (every key but the data overrides, which need the checkpoint)."""
    spec = to_schema(EvalConfig, cfg)
    check_choice(spec.split, "split", SPLITS)
    check_choice(spec.localizer, "localizer", LOCALIZERS)
    check_choice(spec.box_rule, "box_rule", BOX_RULES)
    check_choice(spec.normalize, "normalize", NORMALIZE)
    check_choice(spec.pxap, "pxap", ("auto", "true", "false"))
    check_runtime(spec.trainer)
    if not 0 <= spec.threshold <= 1:
        raise ConfigError(f"threshold must lie in [0, 1], got {spec.threshold}")
    if not 0 < spec.iou_threshold <= 1:
        raise ConfigError(f"iou_threshold must lie in (0, 1], got {spec.iou_threshold}")
    if spec.topk < 1:
        raise ConfigError(f"topk must be >= 1, got {spec.topk}")
    if spec.sweep_thresholds < 2:
        raise ConfigError(f"sweep_thresholds must be >= 2, got {spec.sweep_thresholds}")
    if not spec.maxboxacc_iou or not all(0 < t <= 100 for t in spec.maxboxacc_iou):
        raise ConfigError(f"maxboxacc_iou must be IoU levels in (0, 100], got {spec.maxboxacc_iou}")
    if spec.box_rule == "release" and spec.all_boxes:
        raise ConfigError("all_boxes applies to box_rule=paper (the release rule keeps one box)")
    if (spec.checkpoint is None) == (spec.model is None):
        raise ConfigError(
            "give either checkpoint=RUN_DIR/checkpoints/best.pt (a cam-train run) or a model "
            "(e.g. model=vgg16 model.pretrained=true data=imagenet data.root=DIR), not "
            + ("both" if spec.checkpoint is not None else "neither")
        )
    return spec


def resolve_data(data: Any, trained: Mapping[str, Any] | None) -> DataConfig:
    """The data config: the checkpoint's training data config, then the user's data.* keys
    (`data`, a DataOverrides: None keeps the checkpoint's value)."""
    overrides = {k: v for k, v in dataclasses.asdict(data).items() if v is not None}
    base = dict(trained or {})
    base.update(overrides)
    return data_config(base)


def resolve_model(spec: EvalConfig) -> ModelConfig | None:
    return None if spec.model is None else model_config(spec.model)
