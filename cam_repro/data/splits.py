"""A dataset's splits as the data config names them: the reader for its layout, and what it is."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from cam_repro.data.config import DataConfig, data_config
from cam_repro.data.cub import read_cub
from cam_repro.data.imagenet import read_imagenet
from cam_repro.data.samples import DataSplit, report_skipped


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
