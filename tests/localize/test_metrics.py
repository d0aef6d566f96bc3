"""Classification and localization errors on a hand-built set where every outcome is known."""

from __future__ import annotations

import numpy as np
import pytest

from cam_repro.metrics import (
    best_ious,
    error_rates,
    image_outcomes,
    map_peaks,
    points_in_boxes,
)

FAR = [50, 50, 59, 59]
GT_A = [0, 0, 9, 9]

# Five images, top-5 classes best first, the box drawn from each class's CAM, and the ground truth.
LABELS = np.array([1, 0, 3, 4, 5])
TOPK = np.array(
    [
        [2, 1, 3, 4, 5],  # 0: wrong class with a perfect box; the true class (rank 2) is off
        [0, 1, 2, 3, 4],  # 1: right class, bad box (IoU 0.25)
        [3, 0, 1, 2, 4],  # 2: right class; its box matches the SECOND ground-truth box
        [0, 1, 2, 4, 5],  # 3: the true class at rank 4, with a perfect box
        [5, 0, 1, 2, 3],  # 4: right class; its box matches a box of ANOTHER class only
    ]
)
BOXES = np.array(
    [
        [GT_A, FAR, FAR, FAR, FAR],
        [[0, 0, 4, 4], FAR, FAR, FAR, FAR],
        [[21, 20, 29, 29], FAR, FAR, FAR, FAR],
        [FAR, FAR, FAR, [10, 10, 19, 19], FAR],
        [GT_A, FAR, FAR, FAR, FAR],
    ]
)
GT_BOXES = [
    np.array([GT_A]),
    np.array([GT_A]),
    np.array([GT_A, [20, 20, 29, 29]]),
    np.array([[10, 10, 19, 19]]),
    np.array([GT_A, [30, 30, 39, 39]]),
]
GT_LABELS = [np.array([1]), np.array([0]), np.array([3, 3]), np.array([4]), np.array([6, 5])]
# The true class's box (GT-known): the CAM of the label, wherever it ranks.
GT_KNOWN_BOXES = np.array([FAR, [0, 0, 4, 4], [21, 20, 29, 29], [10, 10, 19, 19], GT_A])


def _outcomes() -> dict[str, np.ndarray]:
    ious = best_ious(BOXES, TOPK, GT_BOXES, GT_LABELS)
    known = best_ious(GT_KNOWN_BOXES[:, None], LABELS[:, None], GT_BOXES, GT_LABELS)[:, 0]
    return image_outcomes(TOPK, LABELS, ious, known)


def test_best_ious_only_count_boxes_of_the_predicted_class() -> None:
    ious = best_ious(BOXES, TOPK, GT_BOXES, GT_LABELS)
    assert ious[0, 0] == 0.0  # a perfect box, but class 2 has no ground-truth box here
    assert ious[1, 0] == 25 / 100
    assert ious[2, 0] == 90 / 100  # against the second box (the first gives 0)
    assert ious[3, 3] == 1.0
    assert ious[4, 0] == 0.0  # matches class 6's box, not class 5's
    assert ious[0, 1] == 0.0
    # IoU exactly 0.5 (50 of 100 pixels) and an image without boxes
    half = best_ious(np.array([[[0, 0, 9, 4]]]), np.array([[1]]), [np.array([GT_A])], [[1]])
    assert half.tolist() == [[0.5]]
    none = best_ious(np.array([[GT_A]]), np.array([[1]]), [np.zeros((0, 4))], [np.zeros(0)])
    assert none.tolist() == [[0.0]]


def test_outcomes_per_image() -> None:
    out = _outcomes()
    assert out["cls_top1"].tolist() == [False, True, True, False, True]
    assert out["cls_top5"].tolist() == [True, True, True, True, True]
    assert out["loc_top1"].tolist() == [False, False, True, False, False]
    assert out["loc_top5"].tolist() == [False, False, True, True, False]
    assert out["gt_known"].tolist() == [False, False, True, True, False]


def test_errors_in_percent() -> None:
    assert error_rates(_outcomes()) == {
        "cls_top1_err": 40.0,
        "cls_top5_err": 0.0,
        "loc_top1_err": 80.0,
        "loc_top5_err": 60.0,
        "gt_known_loc_err": 60.0,
    }


def test_blacklisted_images_leave_only_the_localization_denominator() -> None:
    mask = np.array([False, True, True, True, True])  # image 0 blacklisted
    errors = error_rates(_outcomes(), loc_mask=mask)
    assert errors["cls_top1_err"] == 40.0  # still over all five
    assert errors["loc_top1_err"] == 75.0  # 1 of 4
    assert errors["loc_top5_err"] == 50.0
    assert errors["gt_known_loc_err"] == 50.0
    none = error_rates(_outcomes(), loc_mask=np.zeros(5, bool))["loc_top1_err"]
    assert none.reason.startswith("no image counts for localization")  # Undefined, not a number


def test_iou_threshold_is_inclusive() -> None:
    ious = np.array([[0.5], [0.4999]])
    out = image_outcomes(np.array([[1], [1]]), np.array([1, 1]), ious, ious[:, 0])
    assert out["loc_top1"].tolist() == [True, False]
    assert out["gt_known"].tolist() == [True, False]


def test_shape_mismatches_are_refused() -> None:
    with pytest.raises(ValueError, match="topk_ious"):
        image_outcomes(TOPK, LABELS, np.zeros((5, 4)), np.zeros(5))
    with pytest.raises(ValueError, match="ground truth for each"):
        best_ious(BOXES, TOPK, GT_BOXES[:3], GT_LABELS[:3])


def test_pointing_game_peaks_map_to_image_pixels_and_boxes_by_hand() -> None:
    maps = np.zeros((3, 4, 4))
    maps[0, 1, 2] = 1.0  # map pixel (col 2, row 1) of a 4x4 map over an 8x8 image
    maps[1, 3, 0] = 2.0  # over a 4x4 image: the pixel itself
    maps[2] = 5.0  # flat: the first pixel
    peaks = map_peaks(maps, np.array([[8, 8], [4, 4], [4, 4]]))
    # x = (2 + 0.5) * 8 / 4 - 0.5 = 4.5, y = (1 + 0.5) * 2 - 0.5 = 2.5
    np.testing.assert_allclose(peaks, [[4.5, 2.5], [0.0, 3.0], [0.0, 0.0]])
    boxes = [np.array([[4, 2, 5, 3]]), np.array([[1, 1, 2, 2], [0, 3, 0, 3]]), np.zeros((0, 4))]
    assert points_in_boxes(peaks, boxes).tolist() == [True, True, False]
    # Half a pixel outside the inclusive box is still on its last pixel; beyond, a miss.
    edge = np.array([[5.5, 2.0], [5.51, 2.0]])
    assert points_in_boxes(edge, [np.array([[4, 2, 5, 3]])] * 2).tolist() == [True, False]


def test_top5_errors_are_undefined_unless_topk_covers_the_five_best_classes() -> None:
    # topk=1 or 3 on 10 classes: the "top-5" columns would be top-1's / top-3's under its name
    for k in (1, 3, 7):
        errors = error_rates(_outcomes(), num_classes=10, k=k)
        for key in ("cls_top5_err", "loc_top5_err"):
            assert f"topk={k}" in errors[key].reason
        assert errors["loc_top1_err"] == 80.0 and errors["gt_known_loc_err"] == 60.0
    assert error_rates(_outcomes(), num_classes=10, k=5)["loc_top5_err"] == 60.0
    # 3 classes: topk=3 and topk=5 both cover every class, the paper's top-5 (loc measured)
    assert error_rates(_outcomes(), num_classes=3, k=3)["loc_top5_err"] == 60.0
    assert "topk=2" in error_rates(_outcomes(), num_classes=3, k=2)["loc_top5_err"].reason
