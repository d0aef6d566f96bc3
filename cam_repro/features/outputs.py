"""cam-features' metrics.json for its readers (cam-report, cam-visualize): the record, with the
value checks its schema's types do not make.

The file is runtime/metrics_file.py's (`FeaturesMetrics`, written by `features.run` through
`save_metrics`); this module imports no torch, so cam-report stays light. A metric over no image
is null with its reason under `undefined` (cam-eval's convention): runtime.metrics_file checks
that a listed metric is null, `check_features` that the accuracy, when null, has its reason.
"""

from __future__ import annotations

from pathlib import Path

from cam_repro.runtime.errors import InputFileError
from cam_repro.runtime.metrics_file import FeaturesMetrics, read_metrics

CROPS = ("full", "cam", "gt", "full+cam")  # in the order the fine-grained table shows them
CACHE_STATUS = ("reused", "made")


def check_features(path: Path, record: FeaturesMetrics) -> FeaturesMetrics:
    """`record` (read from `path`) if its values are what the features tables read: a null
    accuracy only with its reason, a known crop, each cache reused or made; one-line errors
    naming `path` if not."""
    if record.accuracy is None and "accuracy" not in record.undefined:
        raise InputFileError(f"{path}: lacks accuracy")
    if record.crop not in CROPS:
        raise InputFileError(f"{path}: crop {record.crop!r} is not one of {', '.join(CROPS)}")
    if any(c.status not in CACHE_STATUS for c in record.caches):
        raise InputFileError(
            f"{path}: caches is not a list of records with status {' or '.join(CACHE_STATUS)}"
        )
    return record


def read_features_metrics(path: Path) -> FeaturesMetrics:
    """The cam-features run's metrics.json `path`, read and value-checked."""
    return check_features(path, read_metrics(path, "features"))
