"""cam-features' results as written: metrics.json's content, per_class.csv and predictions.csv.

A metric over no image is null in metrics.json, its reason under "undefined" (cam-eval's
convention, evaluate.outputs.with_undefined); the files' columns: docs/features.md.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

import numpy as np

from cam_repro.data import DataSplit, dataset_kind
from cam_repro.evaluate.network import Network
from cam_repro.evaluate.outputs import with_undefined
from cam_repro.features.cache import PartFeatures
from cam_repro.features.config import FeaturesConfig
from cam_repro.features.linear import LinearClassifier
from cam_repro.localize.loc_error import Undefined, rate
from cam_repro.runtime.errors import CamReproError

if TYPE_CHECKING:
    from cam_repro.features.run import FeatureRun


def per_class_csv(classes: list[str], names: list[str], acc: np.ndarray, counts: np.ndarray) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["class", "name", "num_test", "accuracy"])
    for c, name, n, a in zip(classes, names, counts, acc, strict=True):
        w.writerow([c, name, int(n), "" if np.isnan(a) else f"{a:.2f}"])
    return buf.getvalue()


def predictions_csv(data: DataSplit, test: PartFeatures, pred: np.ndarray) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    crops = test.boxes is not None
    crop_columns = ["crop_x0", "crop_y0", "crop_x1", "crop_y1", "crop_iou"] if crops else []
    w.writerow(["image", "label", "predicted", "correct", *crop_columns])
    for row, (i, p) in enumerate(zip(test.indices, pred, strict=True)):
        s = data.samples[i]
        line = [s.image_id, data.classes[s.label], data.classes[p], int(p == s.label)]
        if crops:
            iou = test.box_ious[row]
            line += [*test.boxes[row].tolist(), "" if np.isnan(iou) else f"{iou:.4f}"]
        w.writerow(line)
    return buf.getvalue()


def metrics_json(
    spec: FeaturesConfig,
    fr: FeatureRun,
    clf: LinearClassifier,
    train: PartFeatures,
    test: PartFeatures,
    pred: np.ndarray,
    per_class: np.ndarray,
    counts: np.ndarray,
    localization: dict[str, Any] | None,
) -> dict[str, Any]:
    """metrics.json: a metric over no image is null, its reason under "undefined"
    (evaluate.outputs.with_undefined, cam-eval's convention)."""
    kind = dataset_kind(fr.net.data)
    split = spec.test_split
    total = len(fr.test) + len(fr.test.skipped)
    none_read = f"no {split} image could be read ({fr.skips[split].count} of {total} unreadable)"
    crop_iou: float | Undefined | None = None  # crop=full: no crop box to score
    if test.box_ious is not None:
        has_box = ~np.isnan(test.box_ious)
        no_box = f"no {split} image read has a ground-truth box of its class"
        crop_iou = rate(test.box_ious[has_box] >= spec.iou_threshold,
                        no_box if len(test.labels) else none_read)  # fmt: skip
    metrics = {  # its kind ("features") and schema: runtime.metrics_file.save_metrics
        "accuracy": rate(pred == test.labels, none_read),
        "mean_class_accuracy": _mean_class_accuracy(
            per_class, counts, fr.train.classes, split, none_read
        ),
        "num_train": len(train.labels),
        "num_test": len(test.labels),
        "num_classes": len(fr.train.classes),
        "num_skipped": sum(s.count for s in fr.skips.values()),
        "features": spec.features,
        "crop": spec.crop,
        "classifier": clf.kind,
        "C": clf.C,
        "solver": clf.solver,
        "l2_normalize": clf.l2_normalize,
        "feature_dim": int(train.features.shape[1]),
        "variant": fr.net.variant,
        "paper_name": fr.net.paper,
        "weights": fr.net.weights,
        "checkpoint": spec.checkpoint,
        "seed": fr.net.seed,
        "trained_on": _trained_on(fr.net),
        "data": {
            "root": str(fr.train.root),
            "name": kind.get("name"),
            "kind": kind.get("kind"),
            "task": kind.get("task"),
            "evidence": kind.get("evidence"),
            "family": kind.get("family"),
            "train_split": spec.train_split,
            "test_split": spec.test_split,
            "image_size": fr.net.data.image_size,
        },
        "crop_box_iou50": crop_iou,
        "threshold": spec.threshold,
        "localization": localization,
        "weights_sha256": fr.net.weights_sha256,
        "weights_load": fr.net.weights_load,  # which file gave the network its tensors
        "caches": [use.record() for use in fr.caches],
    }
    return with_undefined(metrics)


def _mean_class_accuracy(
    per_class: np.ndarray, counts: np.ndarray, classes: list[str], split: str, none_read: str
) -> float | Undefined:
    """The mean of the per-class accuracies, defined only when every class has a test image
    read (a mean over fewer classes is another number than the paper's)."""
    empty = [c for c, n in zip(classes, counts, strict=True) if n == 0]
    if len(empty) == len(classes):
        return Undefined(none_read)
    if empty:
        shown = ", ".join(empty[:5]) + (", ..." if len(empty) > 5 else "")
        return Undefined(
            f"{len(empty)} of {len(classes)} classes have no {split} image read ({shown})"
        )
    return float(np.mean(per_class))


def _trained_on(net: Network) -> str | None:
    """The name of a checkpoint's training data (None: a zoo model, or its config no longer
    reads)."""
    if net.state is None:
        return None
    try:
        return dataset_kind(net.state["config"].get("data")).get("name")
    except CamReproError:
        return None
