"""The evaluation config: the typed schema of `configs/eval.yaml` (`cam-eval`), and the keys it
shares with cam-visualize (the box rule's, the data overrides)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import DictConfig

from cam_repro.data.config import DataConfig, data_config
from cam_repro.localize.boxes import BoxRule
from cam_repro.models.config import ModelConfig, model_config
from cam_repro.runtime.config import RuntimeConfig, check_choice, runtime_config, to_schema
from cam_repro.runtime.errors import ConfigError

LOCALIZERS = ("cam", "backprop")
SPLITS = ("val", "train")


def _optional(tp: Any) -> Any:
    return Optional[tp]  # noqa: UP045 (OmegaConf reads typing.Optional, not `X | None` strings)


# Every data key, defaulting to None: "keep what the checkpoint's training config says".
DataOverrides = dataclasses.make_dataclass(
    "DataOverrides",
    [(f.name, _optional(f.type), None) for f in dataclasses.fields(DataConfig)],
)


@dataclass
class BoxKeys:
    """The paper's box rule as cam-eval and cam-visualize take it (see localize.boxes.BoxRule)."""

    threshold: float = 0.2  # keep pixels >= threshold x the map's (normalised) max
    normalize: str = "max"  # max (the paper) | minmax (later WSOL work)


@dataclass
class EvalConfig(BoxKeys):
    """`cam-eval`: classification and localization errors of a network on a labelled split."""

    # A cam-train checkpoint (RUN_DIR/checkpoints/best.pt); the network, classes and data config
    # come from it. Or, instead, a model (model=vgg16 model.pretrained=true) and data (data=...).
    checkpoint: str | None = None
    model: ModelConfig | None = None
    data: DataOverrides = field(default_factory=DataOverrides)  # type: ignore[valid-type]
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    split: str = "val"
    localizer: str = "cam"  # cam (class activation map) | backprop (Simonyan et al. saliency)
    box_rule: str = "paper"  # paper (the text) | release (the released code's box generator)
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
    # A run folder that already holds results (metrics.json) is refused unless this is true
    overwrite: bool = False


def box_rule(spec: EvalConfig | BoxKeys) -> BoxRule:
    """The BoxRule of an app config (a ConfigError naming the bad key)."""
    if isinstance(spec, EvalConfig):
        return BoxRule(spec.threshold, spec.normalize, spec.box_rule, spec.all_boxes)
    return BoxRule(spec.threshold, spec.normalize)


def eval_config(cfg: EvalConfig | Mapping[str, Any] | DictConfig) -> EvalConfig:
    """Validate an eval config (every key but the data overrides, which need the checkpoint)."""
    spec = to_schema(EvalConfig, cfg)
    check_choice(spec.split, "split", SPLITS)
    check_choice(spec.localizer, "localizer", LOCALIZERS)
    check_choice(spec.pxap, "pxap", ("auto", "true", "false"))
    box_rule(spec)
    spec.runtime = runtime_config(spec.runtime)
    if not 0 < spec.iou_threshold <= 1:
        raise ConfigError(f"iou_threshold must lie in (0, 1], got {spec.iou_threshold}")
    if spec.topk < 1:
        raise ConfigError(f"topk must be >= 1, got {spec.topk}")
    if spec.sweep_thresholds < 2:
        raise ConfigError(f"sweep_thresholds must be >= 2, got {spec.sweep_thresholds}")
    if not spec.maxboxacc_iou or not all(0 < t <= 100 for t in spec.maxboxacc_iou):
        raise ConfigError(f"maxboxacc_iou must be IoU levels in (0, 100], got {spec.maxboxacc_iou}")
    check_one_network(
        spec.checkpoint, spec.model, "best.pt",
        "model=vgg16 model.pretrained=true data=imagenet data.root=DIR",
    )  # fmt: skip
    return spec


def check_one_network(
    checkpoint: str | None, model: ModelConfig | None, file: str, example: str
) -> None:
    """A network stage takes a checkpoint or a model, exactly one: a ConfigError saying which
    (`file`: the checkpoint's usual name; `example`: model overrides to show)."""
    if (checkpoint is None) == (model is None):
        raise ConfigError(
            f"give either checkpoint=RUN_DIR/checkpoints/{file} (a cam-train run) or a model "
            f"(e.g. {example}), not " + ("both" if checkpoint is not None else "neither")
        )


def resolve_data(data: Any, trained: Mapping[str, Any] | None) -> DataConfig:
    """The data config: the checkpoint's training data config, then the user's data.* keys
    (`data`, a DataOverrides: None keeps the checkpoint's value)."""
    overrides = {k: v for k, v in dataclasses.asdict(data).items() if v is not None}
    base = dict(trained or {})
    base.update(overrides)
    return data_config(base)


def resolve_model(spec: EvalConfig) -> ModelConfig | None:
    return None if spec.model is None else model_config(spec.model)
