"""cam-features' run folder: what its metrics.json must hold, for the readers (cam-report).

The writer is `cam_repro.features.run` (`features_run`, `_metrics`); this module is its reader's
half and imports no torch, so cam-report stays light.

A metric over no image (no test image read, a class without a test image for the mean class
accuracy, no test image with a box for the crop IoU rate and the localization) is null, its
reason under the top-level `"undefined": {"<metric key>": "<reason>"}` (nested keys dotted:
"localization.pointing_game"), cam-eval's convention (cam_repro.evaluate.outputs). `caches` lists
each feature cache the run used: path, split, part, status (reused | made) and, for made, why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cam_repro.evaluate.outputs import check_undefined, undefined_reasons
from cam_repro.runtime.errors import InputFileError

CROPS = ("full", "cam", "gt", "full+cam")  # in the order the fine-grained table shows them
KIND = "features"  # metrics.json's "kind": a cam-features run
REQUIRED = ("accuracy", "features", "crop", "data")  # what the features tables read
CACHE_STATUS = ("reused", "made")


def is_features_metrics(metrics: Any) -> bool:
    """A cam-features metrics.json (`"kind": "features"`)."""
    return isinstance(metrics, dict) and metrics.get("kind") == KIND


def check_features_metrics(path: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """`metrics` (read from `path`, a cam-features metrics.json) if it has what the features
    tables read (a null metric only with its reason under "undefined"); one-line errors naming
    `path` if not."""
    check_undefined(path, metrics)
    why = undefined_reasons(metrics)
    missing = [key for key in REQUIRED if metrics.get(key) is None and key not in why]
    if missing:
        raise InputFileError(f"{path}: lacks {', '.join(missing)}")
    if not isinstance(metrics["data"], dict):
        raise InputFileError(f"{path}: data is not a mapping")
    if metrics["crop"] not in CROPS:
        raise InputFileError(f"{path}: crop {metrics['crop']!r} is not one of {', '.join(CROPS)}")
    accuracy = metrics["accuracy"]
    if accuracy is not None and (
        isinstance(accuracy, bool) or not isinstance(accuracy, int | float)
    ):
        raise InputFileError(f"{path}: accuracy {accuracy!r} is not a number")
    _check_caches(path, metrics.get("caches", []))
    return metrics


def _check_caches(path: Path, caches: Any) -> None:
    """metrics.json's `caches` (absent from runs made before it was recorded): a list of
    {path, split, part, status, reason} records."""
    if not isinstance(caches, list) or not all(
        isinstance(c, dict) and c.get("status") in CACHE_STATUS for c in caches
    ):
        raise InputFileError(
            f"{path}: caches is not a list of records with status {' or '.join(CACHE_STATUS)}"
        )
