"""cam-features' run folder: what its metrics.json must hold, for the readers (cam-report).

The writer is `cam_repro.features.run` (`features_run`, `_metrics`); this module is its reader's
half and imports no torch, so cam-report stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cam_repro.runtime.errors import InputFileError

CROPS = ("full", "cam", "gt", "full+cam")  # in the order the fine-grained table shows them
KIND = "features"  # metrics.json's "kind": a cam-features run
REQUIRED = ("accuracy", "features", "crop", "data")  # what the features tables read


def is_features_metrics(metrics: Any) -> bool:
    """A cam-features metrics.json (`"kind": "features"`)."""
    return isinstance(metrics, dict) and metrics.get("kind") == KIND


def check_features_metrics(path: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """`metrics` (read from `path`, a cam-features metrics.json) if it has what the features
    tables read; one-line errors naming `path` if not."""
    missing = [key for key in REQUIRED if metrics.get(key) is None]
    if missing:
        raise InputFileError(f"{path}: lacks {', '.join(missing)}")
    if not isinstance(metrics["data"], dict):
        raise InputFileError(f"{path}: data is not a mapping")
    if metrics["crop"] not in CROPS:
        raise InputFileError(f"{path}: crop {metrics['crop']!r} is not one of {', '.join(CROPS)}")
    accuracy = metrics["accuracy"]
    if isinstance(accuracy, bool) or not isinstance(accuracy, int | float):
        raise InputFileError(f"{path}: accuracy {accuracy!r} is not a number")
    return metrics
