"""A dataset's splits as the data config names them: the reader for its layout, and what it is."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from cam_repro.data.config import DataConfig, data_config
from cam_repro.data.cub import read_cub
from cam_repro.data.folder import read_folder
from cam_repro.data.imagenet import read_imagenet
from cam_repro.data.samples import DataSplit, report_skipped


def read_split(cfg: DataConfig | Mapping[str, Any] | DictConfig, split: str) -> DataSplit:
    """The `train` or `val` split that the data config points at (labels, sizes, boxes)."""
    spec = data_config(cfg)
    reader = {"imagenet": read_imagenet, "cub": read_cub, "folder": read_folder}[spec.source]
    data = reader(spec, split)
    report_skipped(data.skipped, f"{spec.root} {split}")
    return data


def dataset_kind(cfg: DataConfig | Mapping[str, Any] | DictConfig) -> dict[str, Any]:
    """What the data is, for reports: {"kind": "ilsvrc" | "cub" | "folder" | "synthetic",
    "evidence": ..., "name": ...}, plus "family" for synthetic data.

    A synthetic set is recognised by the synth.json that cam-synth writes at its root; "evidence"
    is its design (parts | uniform), None for real data; "family" its design family (0 when
    synth.json has none). "name" is data.name when given, else ILSVRC, CUB-200-2011, the root
    folder's name (folder data), or "synthetic (<evidence>)", with ", family N" when N is not 0.
    """
    spec = data_config(cfg)
    info = Path(spec.root) / "synth.json"
    if info.is_file():
        try:
            design = json.loads(info.read_text()).get("config", {})
        except (OSError, ValueError, AttributeError):
            design = {}
        evidence, family = design.get("evidence"), design.get("family", 0)
        name = f"synthetic ({evidence or 'unknown'}{f', family {family}' if family else ''})"
        return {
            "kind": "synthetic",
            "evidence": evidence,
            "family": family,
            "name": spec.name or name,
        }
    kind, name = {
        "imagenet": ("ilsvrc", "ILSVRC"),
        "cub": ("cub", "CUB-200-2011"),
        "folder": ("folder", Path(spec.root).expanduser().resolve().name),
    }[spec.source]
    return {"kind": kind, "evidence": None, "name": spec.name or name}
