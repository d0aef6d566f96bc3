"""cam-visualize's config: the typed schema of `configs/visualize.yaml`, light to import (no torch),
so that `cam-visualize --help` answers at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cam_repro.evaluate.config import SPLITS, BoxKeys, DataOverrides, box_rule
from cam_repro.runtime.config import RuntimeConfig, check_choice, runtime_config, to_schema
from cam_repro.runtime.errors import ConfigError


@dataclass
class VisualizeConfig(BoxKeys):
    """`cam-visualize`: figures of class activation maps from cam-train checkpoints (the box
    rule's threshold and normalize: as in cam-eval); of a VQA checkpoint, vqa_panels.png."""

    checkpoint: str | None = None  # RUN_DIR/checkpoints/last.pt (or best.pt); VQA: vqa_panels
    compare: list[str] = field(default_factory=list)  # more checkpoints for compare.png
    images: list[str] = field(default_factory=list)  # image files; empty: num_images of the data
    data: DataOverrides = field(default_factory=DataOverrides)  # type: ignore[valid-type]
    split: str = "val"
    num_images: int = 6
    topk: int = 5
    units: int = 4  # class-specific units per class (0: no units figure)
    unit_classes: list[str] = field(default_factory=list)  # wnids or names; empty: first image's
    sweeps: list[str] = field(default_factory=list)  # cam-eval run folders (or sweeps) to plot
    features_run: str | None = None  # a cam-features run folder: linear_cams.png (text_cams.png)
    per_image: bool = True  # cam_<image>.png for every image
    dpi: int = 100
    runtime: RuntimeConfig = field(default_factory=lambda: RuntimeConfig(progress=False))


def visualize_config(cfg: Any) -> VisualizeConfig:
    spec = to_schema(VisualizeConfig, cfg)
    check_choice(spec.split, "split", SPLITS)
    box_rule(spec)
    spec.runtime = runtime_config(spec.runtime)
    if spec.checkpoint is None and not spec.sweeps and spec.features_run is None:
        raise ConfigError(
            "nothing to draw: give checkpoint=RUN_DIR/checkpoints/last.pt (CAM figures), "
            "sweeps=[EVAL_RUN_DIR, ...] (threshold-sweep curves) and/or features_run=DIR (CAMs "
            "of a cam-features run's linear classifier)"
        )
    if spec.compare and spec.checkpoint is None:
        raise ConfigError("compare=[...] needs checkpoint=... (the first run of the comparison)")
    if spec.num_images < 1 or spec.topk < 1 or spec.units < 0 or spec.dpi < 20:
        raise ConfigError("num_images and topk must be >= 1, units >= 0 and dpi >= 20")
    return spec
