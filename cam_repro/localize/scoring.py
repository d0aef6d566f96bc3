"""Localization maps scored against ground truth, in the original image (one scorer for all).

Every command that scores a map against boxes comes here: cam-eval (evaluate.loop), its VQA
evaluation (evaluate.vqa), cam-features' CAM crops and its classifier's localization
(features.run) and cam-visualize's captions (evaluate.views). The maps are in the evaluation
frame (the image resized to F x F); a map's box under a `BoxRule`, its peak (the pointing game's
point), its IoU and its hit are all given in the ORIGINAL image's pixels (0-based inclusive
boxes), where the ground truth is: a figure's caption and predictions.csv agree. Pure numpy, no
I/O, no configs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cam_repro.localize.boxes import BoxRule, component_boxes, frame_boxes, iou_matrix, scale_boxes
from cam_repro.localize.loc_error import best_ious, map_peaks, points_in_boxes


@dataclass
class Scored:
    """Maps (B, j) scored in their original images: boxes (B, j, 4) inclusive, IoUs (B, j) with
    the ground truth of each map's class (0 where the image has none), peaks (B, j, 2) (x, y) and
    pointing-game hits (B, j) (the peak lies on a ground-truth box of the map's class)."""

    boxes: np.ndarray
    ious: np.ndarray
    peaks: np.ndarray
    hits: np.ndarray


def score_maps(
    maps: np.ndarray,
    classes: np.ndarray,
    sizes: np.ndarray,
    gt_boxes: Sequence[np.ndarray],
    gt_labels: Sequence[np.ndarray],
    rule: BoxRule,
) -> Scored:
    """Boxes, IoUs, peaks and hits of maps (B, j, F, F) in the evaluation frame, of classes
    (B, j), for images of original sizes (B, 2) (W, H) whose boxes gt_boxes[i] (m_i, 4) of
    classes gt_labels[i] (m_i,) are in original pixels; all answers in the original image."""
    boxes, ious = located_boxes(maps, classes, sizes, gt_boxes, gt_labels, rule)
    b, j = maps.shape[:2]
    peaks = map_peaks(maps.reshape(b * j, *maps.shape[2:]), np.repeat(sizes, j, axis=0))
    own = [
        np.asarray(gt_boxes[i]).reshape(-1, 4)[np.asarray(gt_labels[i]).reshape(-1) == c]
        for i in range(b)
        for c in np.asarray(classes[i]).tolist()
    ]
    hits = points_in_boxes(peaks, own).reshape(b, j)
    return Scored(boxes, ious, peaks.reshape(b, j, 2), hits)


def score_against(
    boxes: np.ndarray, peaks: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (n, 4) and peaks (n, 2) already found (score_maps) scored against one set of target
    boxes (m, 4), all in the same image: each one's best IoU (n,) and pointing-game hit (n,).
    VQA's baselines score one question's map against another question's target this way."""
    boxes = np.asarray(boxes).reshape(-1, 4)
    peaks = np.asarray(peaks, dtype=np.float64).reshape(-1, 2)
    ious = iou_matrix(boxes, targets).max(axis=1)
    return ious, points_in_boxes(peaks, [targets] * len(peaks))


def located_boxes(
    maps: np.ndarray,
    classes: np.ndarray,
    sizes: np.ndarray,
    gt_boxes: Sequence[np.ndarray],
    gt_labels: Sequence[np.ndarray],
    rule: BoxRule,
) -> tuple[np.ndarray, np.ndarray]:
    """Each map's box in its original image, and its IoU with the ground truth of its class.

    maps (B, j, F, F) in the evaluation frame, classes (B, j), sizes (B, 2) original (W, H)
    -> boxes (B, j, 4) inclusive, ious (B, j). With all_boxes, a map's answer is its candidate
    with the best IoU (the largest component when none overlaps).
    """
    b, j, frame = maps.shape[0], maps.shape[1], maps.shape[-1]
    flat = maps.reshape(b * j, frame, frame)
    if rule.all_boxes:
        candidates = component_boxes(flat, rule.threshold, rule.normalize)
        owner = np.repeat(np.arange(b * j), [len(c) for c in candidates])  # map of a candidate
        image = owner // j
        boxes = scale_boxes(np.concatenate(candidates), (frame, frame), sizes[image])
        ious = best_ious(
            boxes[:, None], classes.reshape(-1)[owner][:, None],
            [gt_boxes[i] for i in image], [gt_labels[i] for i in image],
        )[:, 0]  # fmt: skip
        order = np.lexsort((-ious, owner))  # per map, best IoU first; ties keep the larger
        first = np.ones(len(order), dtype=bool)
        first[1:] = owner[order][1:] != owner[order][:-1]
        pick = order[first]
        return boxes[pick].reshape(b, j, 4), ious[pick].reshape(b, j)
    in_frame = frame_boxes(flat, rule).reshape(b, j, 4)
    boxes = scale_boxes(in_frame, (frame, frame), sizes[:, None, :])
    return boxes, best_ious(boxes, classes, gt_boxes, gt_labels)
