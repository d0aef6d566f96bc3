"""Classification and localization errors of the paper's protocol (pure: arrays in, numbers out).

The paper's protocol (Zhou et al. 2016, section 4.1, and the ILSVRC localization task):
- classification top-k error: the true class is not among the k best-scored classes;
- top-1 localization: the top-1 class is right AND its box has IoU >= 0.5 with any ground-truth
  box of that class; top-5: any of the five (class, box) pairs is right in that sense;
- GT-known localization: the box from the true class's map has IoU >= 0.5 with a ground-truth box
  of that class, whatever the prediction.
Errors are 100 minus the accuracy, in percent. Boxes are inclusive (see cam_repro.localize.boxes)
and all in one coordinate frame per image. MaxBoxAccV2 and PxAP (Choe et al., CVPR 2020) live in
cam_repro.localize.wsol; the public module cam_repro.metrics offers both.

A metric that has no value on its input (a rate over no image, a precision-recall curve without
negatives, top-5 over five classes or fewer) is `Undefined(reason)`, never a number that looks
measured: this module's error rates and wsol.py's MaxBoxAcc and PxAP return it, and cam-eval's
metrics.json writes it as null with the reason under "undefined" (evaluate.outputs.with_undefined).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

IOU_THRESHOLD = 0.5
NO_LOC_IMAGE = (
    "no image counts for localization (none has a box of its class, or all are blacklisted)"
)
# Per-image outcomes, and the error each one becomes.
OUTCOMES = {
    "cls_top1": "cls_top1_err",
    "cls_top5": "cls_top5_err",
    "loc_top1": "loc_top1_err",
    "loc_top5": "loc_top5_err",
    "gt_known": "gt_known_loc_err",
}


@dataclass(frozen=True)
class Undefined:
    """A metric that has no value on this input, and why (e.g. a rate over zero images): returned
    in place of the number, so that no caller can print 100 or 0 for it by accident."""

    reason: str

    def __str__(self) -> str:
        return f"undefined ({self.reason})"


def rate(hits: np.ndarray | Sequence[bool], none: str) -> float | Undefined:
    """% of True in `hits`; Undefined(`none`) over no item."""
    hits = np.asarray(hits, dtype=bool)
    return 100.0 * float(hits.mean()) if len(hits) else Undefined(none)


def best_ious(
    boxes: np.ndarray,
    classes: np.ndarray,
    gt_boxes: Sequence[np.ndarray],
    gt_labels: Sequence[np.ndarray],
) -> np.ndarray:
    """IoU of each predicted box with the best-matching ground-truth box OF ITS CLASS.

    boxes (N, k, 4), classes (N, k) -> (N, k) float64; 0 where the image has no box of that class.
    gt_boxes[i] is (m_i, 4) and gt_labels[i] (m_i,) the class of each of image i's boxes.
    """
    # here: boxes.py loads numba and scipy (~0.6 s), which cam-report, a reader of `Undefined`
    # through evaluate/outputs.py, does without
    from cam_repro.localize.boxes import iou_matrix

    boxes = np.asarray(boxes, dtype=np.int64)
    classes = np.asarray(classes, dtype=np.int64)
    if boxes.ndim != 3 or boxes.shape[-1] != 4 or classes.shape != boxes.shape[:2]:
        raise ValueError(
            f"boxes must be (N, k, 4) and classes (N, k); got {boxes.shape} and {classes.shape}"
        )
    if len(gt_boxes) != len(boxes) or len(gt_labels) != len(boxes):
        raise ValueError(
            f"need ground truth for each of the {len(boxes)} images, "
            f"got {len(gt_boxes)} box sets and {len(gt_labels)} label sets"
        )
    # Ground truth padded to (N, m, 4) with class -1 in the padding: one vectorised IoU.
    m = max((len(np.asarray(g).reshape(-1, 4)) for g in gt_boxes), default=0)
    gt = np.zeros((len(boxes), max(m, 1), 4), dtype=np.int64)
    gt_cls = np.full((len(boxes), max(m, 1)), -1, dtype=np.int64)
    for i, (g, c) in enumerate(zip(gt_boxes, gt_labels, strict=True)):
        g = np.asarray(g, dtype=np.int64).reshape(-1, 4)
        gt[i, : len(g)] = g
        gt_cls[i, : len(g)] = np.asarray(c, dtype=np.int64).reshape(-1)
    same = classes[:, :, None] == gt_cls[:, None, :]  # (N, k, m)
    return np.where(same, iou_matrix(boxes, gt), 0.0).max(axis=2)


def image_outcomes(
    topk_classes: np.ndarray,
    labels: np.ndarray,
    topk_ious: np.ndarray,
    gt_known_ious: np.ndarray,
    iou_threshold: float = IOU_THRESHOLD,
) -> dict[str, np.ndarray]:
    """Per image, which of the five criteria it meets: (N,) bool arrays keyed as OUTCOMES.

    topk_classes (N, k) best first; labels (N,); topk_ious (N, k) from `best_ious` of the boxes of
    those classes; gt_known_ious (N,) of the true class's box. k = 5 for the paper's top-5 (fewer
    when there are fewer classes).
    """
    topk_classes = np.asarray(topk_classes)
    labels = np.asarray(labels)
    topk_ious = np.asarray(topk_ious, dtype=np.float64)
    gt_known_ious = np.asarray(gt_known_ious, dtype=np.float64)
    n = len(labels)
    if topk_classes.ndim != 2 or len(topk_classes) != n or topk_ious.shape != topk_classes.shape:
        raise ValueError(
            f"topk_classes and topk_ious must both be (N={n}, k); "
            f"got {topk_classes.shape} and {topk_ious.shape}"
        )
    if gt_known_ious.shape != (n,):
        raise ValueError(f"gt_known_ious must be (N={n},), got {gt_known_ious.shape}")
    right = topk_classes == labels[:, None]  # (N, k): at most one True per row
    located = right & (topk_ious >= iou_threshold)
    return {
        "cls_top1": right[:, 0],
        "cls_top5": right.any(axis=1),
        "loc_top1": located[:, 0],
        "loc_top5": located.any(axis=1),
        "gt_known": gt_known_ious >= iou_threshold,
    }


def error_rates(
    outcomes: Mapping[str, np.ndarray],
    loc_mask: np.ndarray | None = None,
    num_classes: int | None = None,
    k: int = 5,
) -> dict[str, float | Undefined]:
    """Errors in % from `image_outcomes`: classification over every image, localization over
    the images in `loc_mask` (those with boxes and not blacklisted; default all). An error over no
    image is Undefined, and so is the top-k classification error of a network with `num_classes`
    <= k (every class is among its k best: 0 by construction, not a measurement). `k` is the
    evaluation's topk: unless it covers the 5 best classes (or every class, when fewer), the
    top-5 errors are Undefined (they would be another k's, under the top-5 name)."""
    n = len(outcomes["cls_top1"])
    loc_mask = np.ones(n, dtype=bool) if loc_mask is None else np.asarray(loc_mask, dtype=bool)
    if loc_mask.shape != (n,):
        raise ValueError(f"loc_mask must be (N={n},), got {loc_mask.shape}")
    out: dict[str, float | Undefined] = {}
    for key, name in OUTCOMES.items():
        hits = np.asarray(outcomes[key], dtype=bool)
        none = "no image was evaluated"
        if key.startswith(("loc", "gt")):
            hits, none = hits[loc_mask], NO_LOC_IMAGE
        out[name] = 100.0 * (1.0 - hits.mean()) if len(hits) else Undefined(none)
    classes = num_classes if num_classes is not None else k
    if min(k, classes) != min(5, classes):  # the columns would be top-k's, named top-5
        why = (f"evaluated with topk={k}: the top-5 errors need the 5 best classes' maps "
               f"(topk=5), these would be top-{k} errors")  # fmt: skip
        out["cls_top5_err"] = Undefined(why)
        out["loc_top5_err"] = Undefined(why)
    elif num_classes is not None and num_classes <= k:
        out["cls_top5_err"] = Undefined(
            f"the network has {num_classes} classes, at most topk={k}: every class is among its "
            f"top {k}, so the error is 0 by construction"
        )
    return out


def map_peaks(maps: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Where each map is highest, in its image's pixel coordinates (the pointing game's point).

    maps (N, h, w), any resolution covering the whole image; sizes (N, 2) the images' (width,
    height). The peak is the first maximal pixel in row-major order; its centre is mapped to the
    image: x = (col + 0.5) * width / w - 0.5, likewise y. -> (N, 2) float64 (x, y).
    """
    maps = np.asarray(maps)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    if maps.ndim != 3 or len(sizes) != len(maps):
        raise ValueError(f"maps must be (N, h, w), sizes (N, 2); got {maps.shape}, {sizes.shape}")
    n, h, w = maps.shape
    flat = maps.reshape(n, -1).argmax(axis=1)
    rows, cols = np.divmod(flat, w)
    x = (cols + 0.5) * sizes[:, 0] / w - 0.5
    y = (rows + 0.5) * sizes[:, 1] / h - 0.5
    return np.stack([x, y], axis=1)


def points_in_boxes(points: np.ndarray, boxes: Sequence[np.ndarray]) -> np.ndarray:
    """The pointing game's hit (Zhang et al., ECCV 2016, without their 15-pixel tolerance): point
    i (x, y) lies on a pixel of one of boxes[i] (m_i, 4), 0-based inclusive, i.e. within
    [x0 - 0.5, x1 + 0.5] x [y0 - 0.5, y1 + 0.5]. An image without boxes is a miss. -> (N,) bool."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(boxes) != len(points):
        raise ValueError(f"need boxes for each of the {len(points)} points, got {len(boxes)}")
    hits = np.zeros(len(points), dtype=bool)
    for i, (point, b) in enumerate(zip(points, boxes, strict=True)):
        b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
        x, y = point
        inside = (b[:, 0] - 0.5 <= x) & (x <= b[:, 2] + 0.5) & (b[:, 1] - 0.5 <= y)
        hits[i] = bool((inside & (y <= b[:, 3] + 0.5)).any())
    return hits
