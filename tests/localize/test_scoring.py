"""The one scorer of maps against boxes (cam_repro/localize/scoring.py): boxes, IoUs, peaks and
pointing-game hits in the ORIGINAL image, from maps in the evaluation frame."""

from __future__ import annotations

import numpy as np
import pytest

from cam_repro.localize.boxes import BoxRule, frame_boxes, iou_matrix, scale_boxes
from cam_repro.localize.loc_error import map_peaks, points_in_boxes
from cam_repro.localize.scoring import located_boxes, score_against, score_maps

RULE = BoxRule(0.2, "max")


def blob(frame: int, x0: int, y0: int, x1: int, y1: int, peak: tuple[int, int]) -> np.ndarray:
    """A map with a blob over [x0, x1] x [y0, y1] (frame pixels) and its maximum at `peak`."""
    m = np.zeros((frame, frame))
    m[y0 : y1 + 1, x0 : x1 + 1] = 0.5
    m[peak[1], peak[0]] = 1.0
    return m


def test_boxes_peaks_ious_and_hits_are_in_the_original_image() -> None:
    frame, size = 16, (32, 48)  # the image was 32 wide, 48 high; evaluated at 16 x 16
    maps = np.stack([blob(frame, 4, 4, 7, 7, (5, 5)), blob(frame, 10, 10, 13, 13, (12, 12))])
    classes = np.array([[1, 2]])
    gt, labels = np.array([[8, 12, 15, 23], [0, 0, 3, 3]]), np.array([1, 2])
    scored = score_maps(maps[None], classes, np.array([size]), [gt], [labels], RULE)
    # the frame's box [4, 7] scaled by 2 in x, 3 in y; inclusive pixels
    assert scored.boxes[0, 0].tolist() == [8, 12, 15, 23]
    assert scored.ious[0, 0] == pytest.approx(1.0)  # class 1's own box
    assert scored.ious[0, 1] == 0.0  # class 2's box is elsewhere
    # the peak pixel (5, 5) has its centre at 5.5 of 16 -> 5.5 x 2 - 0.5, 5.5 x 3 - 0.5
    assert scored.peaks[0, 0].tolist() == [10.5, 16.0]
    assert scored.hits[0].tolist() == [True, False]


def test_the_last_column_is_cam_evals_true_class_peak_and_hit() -> None:
    """cam-eval took the pointing game from the true class's map (the last) against the image's
    own boxes: the same numbers as the scorer's last column."""
    rng = np.random.default_rng(0)
    maps = rng.random((3, 4, 12, 12))
    classes = rng.integers(0, 3, (3, 4))
    sizes = np.array([[40, 30], [12, 12], [25, 50]])
    gt = [np.array([[0, 0, 20, 20], [5, 5, 39, 29]]), np.zeros((0, 4), np.int64),
          np.array([[3, 3, 10, 40]])]  # fmt: skip
    labels = [np.array([classes[0, -1], 9]), np.zeros(0, np.int64), np.array([classes[2, -1]])]
    scored = score_maps(maps, classes, sizes, gt, labels, RULE)
    peaks = map_peaks(maps[:, -1], sizes)
    own = [g[lab == c] for g, lab, c in zip(gt, labels, classes[:, -1], strict=True)]
    np.testing.assert_array_equal(scored.peaks[:, -1], peaks)
    np.testing.assert_array_equal(scored.hits[:, -1], points_in_boxes(peaks, own))
    boxes, ious = located_boxes(maps, classes, sizes, gt, labels, RULE)
    np.testing.assert_array_equal(scored.boxes, boxes)
    np.testing.assert_array_equal(scored.ious, ious)


def test_the_iou_is_taken_in_the_original_image_not_the_frame() -> None:
    """A non-square image: the IoU of the scaled box differs from the IoU in the frame; the
    scorer's is the original image's (cam-eval's predictions.csv)."""
    frame, size = 10, (30, 7)
    cam = blob(frame, 2, 3, 5, 6, (3, 4))
    gt = np.array([[7, 2, 17, 5]])
    scored = score_maps(cam[None, None], np.array([[0]]), np.array([size]), [gt], [np.zeros(1)],
                        RULE)  # fmt: skip
    in_frame = frame_boxes(cam[None], RULE)
    original = scale_boxes(in_frame, (frame, frame), size)
    assert scored.ious[0, 0] == pytest.approx(iou_matrix(original, gt).max())
    frame_iou = iou_matrix(in_frame, scale_boxes(gt, size, (frame, frame))).max()
    assert abs(scored.ious[0, 0] - frame_iou) > 0.01


def test_all_boxes_answers_with_the_best_candidate() -> None:
    frame = 16
    cam = blob(frame, 1, 1, 3, 3, (2, 2)) + blob(frame, 10, 10, 14, 14, (12, 12)) * 0.8
    gt = np.array([[1, 1, 3, 3]])  # the smaller blob
    rule = BoxRule(0.2, "max", "paper", all_boxes=True)
    scored = score_maps(cam[None, None], np.array([[0]]), np.array([[frame, frame]]), [gt],
                        [np.zeros(1)], rule)  # fmt: skip
    assert scored.boxes[0, 0].tolist() == [1, 1, 3, 3] and scored.ious[0, 0] == 1.0
    single = score_maps(cam[None, None], np.array([[0]]), np.array([[frame, frame]]), [gt],
                        [np.zeros(1)], RULE)  # fmt: skip
    assert single.ious[0, 0] == 0.0  # the largest component alone: the other blob


def test_score_against_one_target() -> None:
    boxes = np.array([[0, 0, 9, 9], [20, 20, 29, 29]])
    peaks = np.array([[4.0, 4.0], [25.0, 25.0]])
    target = np.array([[0, 0, 9, 19]])
    ious, hits = score_against(boxes, peaks, target)
    assert ious.tolist() == [pytest.approx(0.5), 0.0] and hits.tolist() == [True, False]
