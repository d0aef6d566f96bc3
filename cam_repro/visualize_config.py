"""cam-visualize's config: the typed schema of `configs/visualize.yaml`, light to import (no torch),
so that `cam-visualize --help` answers at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cam_repro.evaluate.config import (
    SPLITS,
    BoxKeys,
    DataOverrides,
    TorchCamKeys,
    box_rule,
    check_localizer,
    check_one_network,
)
from cam_repro.models.config import ModelConfig
from cam_repro.runtime.config import RuntimeConfig, check_choice, runtime_config, to_schema
from cam_repro.runtime.errors import ConfigError


@dataclass
class VisualizeConfig(BoxKeys):
    """`cam-visualize`: figures of class activation maps (or Grad-CAM / Backprop maps) of any
    network cam-eval takes, a cam-train checkpoint or a model, on image files or its data (the
    box rule's threshold and normalize: as in cam-eval); of a VQA checkpoint, vqa_panels.png."""

    checkpoint: str | None = None  # a cam-train run's RUN_DIR/checkpoints/last.pt; or give model=
    model: ModelConfig | None = None  # instead of a checkpoint: model=torchvision model.name=...
    model_classes: int | None = None  # a model's outputs; null: 1000 with weights, else the data's
    class_names: str | None = None  # names of the outputs: a file, one per line | imagenet
    compare: list[str] = field(default_factory=list)  # more checkpoints, drawn in compare.png
    images: list[str] = field(default_factory=list)  # image files or folders; empty: the data's
    data: DataOverrides = field(default_factory=DataOverrides)  # data.* keys  # type: ignore[valid-type]
    split: str = "val"  # the data's split drawn without images=; choices val | train
    localizer: str = "cam"  # the maps drawn; choices cam | gradcam | backprop | torchcam
    gradcam_layer: str | None = None  # localizer=gradcam: the module; null: as cam-eval picks
    torchcam: TorchCamKeys = field(default_factory=TorchCamKeys)  # localizer=torchcam: as cam-eval
    num_images: int = 6  # images of the data drawn (and per class in units_*.png)
    topk: int = 5  # classes drawn per image, best first, with their maps
    units: int = 4  # class-specific units per class (CAM head and data only); 0: no units figure
    unit_classes: list[str] = field(default_factory=list)  # wnids, names or indices; empty: first
    sweeps: list[str] = field(default_factory=list)  # cam-eval run folders (or sweeps) to plot
    features_run: str | None = None  # a cam-features run folder: linear_cams.png (text_cams.png)
    per_image: bool = True  # cam_<image>.png for every image; choices true | false
    dpi: int = 100  # the PNGs' dots per inch
    runtime: RuntimeConfig = field(default_factory=lambda: RuntimeConfig(progress=False))  # device


def visualize_config(cfg: Any) -> VisualizeConfig:
    spec = to_schema(VisualizeConfig, cfg)
    check_choice(spec.split, "split", SPLITS)
    check_localizer(spec.localizer, spec.gradcam_layer, spec.torchcam)
    box_rule(spec)
    spec.runtime = runtime_config(spec.runtime)
    network = spec.checkpoint is not None or spec.model is not None
    if network or spec.images:
        check_one_network(
            spec.checkpoint, spec.model, "last.pt",
            "model=torchvision model.name=resnet50 model.pretrained=true",
        )  # fmt: skip
    if not network and not spec.sweeps and spec.features_run is None:
        raise ConfigError(
            "nothing to draw: give checkpoint=RUN_DIR/checkpoints/last.pt or a model (e.g. "
            "model=torchvision model.name=resnet50 model.pretrained=true images=[photo.jpg]) "
            "(CAM figures), sweeps=[EVAL_RUN_DIR, ...] (threshold-sweep curves) and/or "
            "features_run=DIR (CAMs of a cam-features run's linear classifier)"
        )
    if spec.compare and spec.checkpoint is None:
        raise ConfigError("compare=[...] needs checkpoint=... (the first run of the comparison)")
    if spec.model is not None and not spec.images and spec.data.root is None:
        raise ConfigError(
            "images=[...] (files or folders) or data (data=... data.root=DIR): a model without a "
            "checkpoint has no data of its own to draw"
        )
    if spec.model_classes is not None and (spec.checkpoint is not None or spec.model_classes < 1):
        raise ConfigError("model_classes: a model's number of outputs (>= 1), not a checkpoint's")
    if spec.num_images < 1 or spec.topk < 1 or spec.units < 0 or spec.dpi < 20:
        raise ConfigError("num_images and topk must be >= 1, units >= 0 and dpi >= 20")
    return spec
