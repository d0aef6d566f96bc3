"""Datasets: ILSVRC (both on-disk layouts), CUB-200-2011, and the embedded synthetic benchmark.

Every reader returns a `DataSplit` whose samples carry the label, the original image size and all
ground-truth boxes in 0-based inclusive pixel coordinates of the original image.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from cam_repro.data.config import IMAGENET_MEAN, IMAGENET_STD, DataConfig, data_config
from cam_repro.data.cub import read_cub
from cam_repro.data.dataset import LocalizationDataset, collate_skipping
from cam_repro.data.imagenet import read_imagenet
from cam_repro.data.samples import DataSplit, Sample, load_image, report_skipped
from cam_repro.data.transforms import eval_transform, model_input, normalize, train_transform

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DataConfig",
    "DataSplit",
    "LocalizationDataset",
    "Sample",
    "collate_skipping",
    "data_config",
    "dataset_kind",
    "eval_transform",
    "load_image",
    "model_input",
    "normalize",
    "read_split",
    "train_transform",
]


def read_split(cfg: DataConfig | Mapping[str, Any] | DictConfig, split: str) -> DataSplit:
    """The `train` or `val` split that the data config points at (labels, sizes, boxes)."""
    spec = data_config(cfg)
    reader = read_imagenet if spec.source == "imagenet" else read_cub
    data = reader(spec, split)
    report_skipped(data.skipped, f"{spec.root} {split}")
    return data


def dataset_kind(cfg: DataConfig | Mapping[str, Any] | DictConfig) -> dict[str, Any]:
    """What the data is, for reports: {"kind": "ilsvrc" | "cub" | "synthetic", "evidence": ...}.

    A synthetic set is recognised by the synth.json that cam-synth writes at its root; "evidence"
    is its design (parts | uniform), None for real data.
    """
    spec = data_config(cfg)
    info = Path(spec.root) / "synth.json"
    if info.is_file():
        try:
            design = json.loads(info.read_text()).get("config", {})
        except (OSError, ValueError, AttributeError):
            design = {}
        return {"kind": "synthetic", "evidence": design.get("evidence")}
    return {"kind": "ilsvrc" if spec.source == "imagenet" else "cub", "evidence": None}
