"""max_box_acc(convention="wsolevaluation"): wsolevaluation's BoxEvaluator bit for bit.

Hand-made maps whose boxes and accuracies follow from their rules (evaluation.py:
compute_bboxes_from_scoremaps, BoxEvaluator, calculate_multiple_iou, resize_bbox), then a
cross-check of whole accuracy curves against those steps run with OpenCV on random maps."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cam_repro.localize.wsol import (
    CONVENTIONS,
    BoxAccMeter,
    max_box_acc,
    resize_boxes_wsolevaluation,
    wsolevaluation_thresholds,
)

NEEDS_CV2 = pytest.mark.skipif(
    importlib.util.find_spec("cv2") is None, reason="the largest contour needs OpenCV"
)
BOTH_MODES = pytest.mark.parametrize(
    "all_components",
    [True, pytest.param(False, marks=NEEDS_CV2)],
    ids=["every_contour", "largest_contour"],
)
ALL = {30: 100.0, 50: 100.0, 70: 100.0}
NONE = {30: 0.0, 50: 0.0, 70: 0.0}


def theirs(maps, gt, thresholds=None, **kw) -> dict:
    return max_box_acc(maps, gt, thresholds, convention="wsolevaluation", **kw)


def peak_on_plateau(plateau: float, peak: float = 1.0, dtype=np.float64) -> np.ndarray:
    """(1, 10, 10): zeros, a plateau on rows/cols 1..3 and its pixel (1, 1) raised to `peak`."""
    m = np.zeros((1, 10, 10), dtype=dtype)
    m[0, 1:4, 1:4] = plateau
    m[0, 1, 1] = peak
    return m


@BOTH_MODES
def test_a_single_pixel_gives_a_box_one_pixel_wider_and_taller(all_components) -> None:
    m = np.zeros((1, 8, 8))
    m[0, 2, 3] = 1.0  # x = 3, y = 2: boundingRect (3, 2, 1, 1) -> box (3, 2, 4, 3), 4 px
    r = theirs(m, [np.array([[3, 2, 4, 3]])], all_components=all_components)
    assert r["box_acc"] == ALL and set(r["curve"][70]) == {100.0}
    # the pixel's own box: IoU 1 / 4 at every threshold (ours: the tight box, IoU 1)
    assert theirs(m, [np.array([[3, 2, 3, 2]])], all_components=all_components)["box_acc"] == NONE
    assert max_box_acc(m, [np.array([[3, 2, 3, 2]])])["box_acc"] == ALL


@BOTH_MODES
def test_the_grown_box_is_clipped_at_the_right_and_bottom_border(all_components) -> None:
    m = np.zeros((1, 8, 8))
    m[0, 7, 7] = 1.0  # (7, 7, 8, 8) clipped to (7, 7, 7, 7)
    assert theirs(m, [np.array([[7, 7, 7, 7]])], all_components=all_components)["box_acc"] == ALL
    m = np.zeros((1, 8, 8))
    m[0, 0:2, 6:8] = 1.0  # x 6..7, y 0..1: (6, 0, 8, 2) -> (6, 0, 7, 2), 6 px
    r = theirs(m, [np.array([[6, 0, 7, 1]])], all_components=all_components)
    assert r["box_acc"] == {30: 100.0, 50: 100.0, 70: 0.0}  # IoU 4 / 6 = 0.667


@BOTH_MODES
def test_a_hole_is_a_candidate_box(all_components) -> None:
    m = np.zeros((1, 12, 12))
    m[0, 2:9, 2:9] = 1.0  # ring x, y 2..8: outer box (2, 2, 9, 9), 64 px
    m[0, 4:7, 4:7] = 0.0  # hole 4..6, grown by one: 3..7 -> box (3, 3, 8, 8), 36 px
    gt = [np.array([[3, 3, 8, 8]])]  # the hole's box: IoU 1; the outer box: 36 / 64 = 0.5625
    r = theirs(m, gt, all_components=all_components)
    if all_components:
        assert r["box_acc"] == ALL
    else:  # contourArea: outer 6 * 6 = 36, hole 4 * 4 - 4 * 1/2 = 14 (an octagon): the outer
        assert r["box_acc"] == {30: 100.0, 50: 100.0, 70: 0.0}
    # ours: the ring's tight box (2, 2, 8, 8) only, IoU 36 / 49 = 0.73; a hole is no candidate
    assert max_box_acc(m, [np.array([[4, 4, 6, 6]])])["box_acc"] == NONE


@BOTH_MODES
def test_every_contour_vs_the_largest(all_components) -> None:
    m = np.zeros((1, 20, 20))
    m[0, 1:3, 1:3] = 1.0  # 2 x 2 at 1..2: box (1, 1, 3, 3), contourArea 1
    m[0, 6:10, 6:10] = 1.0  # 4 x 4 at 6..9: box (6, 6, 10, 10), contourArea 9
    r = theirs(m, [np.array([[1, 1, 3, 3]])], all_components=all_components)
    assert r["box_acc"] == (ALL if all_components else NONE)


@BOTH_MODES
def test_no_contour_scores_the_box_0_0_0_0(all_components) -> None:
    m = np.full((1, 6, 6), 0.003)  # 0.003 * 255 = 0.765 -> 0: no pixel is > int(t * 0) = 0
    r = theirs(m, [np.array([[0, 0, 0, 0]])], all_components=all_components)
    assert r["box_acc"] == ALL and set(r["curve"][30]) == {100.0}
    r = theirs(m, [np.array([[0, 0, 1, 1]])], all_components=all_components)
    assert r["box_acc"] == NONE  # IoU 1 / 4
    # t = 1: int(1 * 255) = 255 and no pixel is > 255
    m = np.zeros((1, 8, 8))
    m[0, 2, 3] = 1.0
    gt = [np.array([[0, 0, 0, 0]])]
    r = theirs(m, gt, [0.5, 1.0], all_components=all_components)
    assert r["curve"][30] == [0.0, 100.0]


def test_quantisation_in_the_maps_own_dtype() -> None:
    # plateau 0.599999999: float64 * 255 = 152.99999997 -> 152; its float32 cast is 0.6000000238,
    # * 255 -> 153. At t = 0.597, int(0.597 * 255) = 152: only a 153 plateau passes (strict >).
    m64 = peak_on_plateau(0.599999999)
    gt = [np.array([[1, 1, 4, 4]])]  # the plateau's box; the peak alone (1, 1, 2, 2): IoU 0.25
    assert theirs(m64, gt, [0.597])["box_acc"] == NONE
    assert theirs(m64.astype(np.float32), gt, [0.597])["box_acc"] == ALL
    assert theirs(torch.from_numpy(m64).float(), gt, [0.597])["box_acc"] == ALL
    assert theirs(torch.from_numpy(m64), gt, [0.597])["box_acc"] == NONE


def test_a_pixel_passes_strictly_above_int_t_times_max() -> None:
    # plateau 0.3922 -> int(100.011) = 100; t = 0.3921 -> int(99.9855) = 99 (passes: 100 > 99),
    # t = 0.3922 -> int(100.011) = 100 (fails: 100 is not > 100) although 0.3922 >= t
    m = peak_on_plateau(0.3922)
    gt = [np.array([[1, 1, 4, 4]])]
    r = theirs(m, gt, [0.3921, 0.3922])
    assert r["curve"] == {"thresholds": [0.3921, 0.3922], 30: [100.0, 0.0], 50: [100.0, 0.0],
                          70: [100.0, 0.0]}  # fmt: skip
    # ours keeps value >= t: the plateau's tight box (1, 1, 3, 3) at both, IoU 9 / 16
    assert max_box_acc(m, gt, [0.3921, 0.3922])["curve"][50] == [100.0, 100.0]


def test_the_threshold_is_relative_to_the_quantised_max() -> None:
    # peak 0.5 -> 127, plateau 0.3 -> int(76.5) = 76; t = 0.5 -> int(63.5) = 63: plateau passes;
    # t = 0.6 -> int(76.2) = 76: only the peak
    m = peak_on_plateau(0.3, peak=0.5)
    gt = [np.array([[1, 1, 4, 4]])]
    assert theirs(m, gt, [0.5, 0.6])["curve"][70] == [100.0, 0.0]
    # ours: t = 0.5 keeps only the peak (1, 1, 1, 1), IoU 1 / 16
    assert max_box_acc(m, gt, [0.5])["curve"][30] == [0.0]


def test_default_thresholds_conventions_and_the_meter() -> None:
    assert CONVENTIONS == ("ours", "wsolevaluation")
    t = wsolevaluation_thresholds()
    assert len(t) == 1000 and np.array_equal(t, np.arange(0, 1, 0.001))
    assert (t != np.arange(1000) / 1000).sum() == 144  # their last bits, kept
    assert len(wsolevaluation_thresholds(0.01)) == 100
    m = np.zeros((2, 8, 8))
    m[:, 2, 3] = 1.0
    gt = [np.array([[3, 2, 4, 3]]), np.array([[0, 0, 7, 7]])]
    r = theirs(m, gt)
    assert r["curve"]["thresholds"] == t.tolist() and r["box_acc"] == {30: 50.0, 50: 50.0, 70: 50.0}
    meter = BoxAccMeter(convention="wsolevaluation")
    meter.update(m[:1], gt[:1])
    meter.update(m[1:], gt[1:])
    assert meter.summary() == r
    with pytest.raises(ValueError, match="convention must be one of ours, wsolevaluation"):
        max_box_acc(m, gt, convention="opencv")
    with pytest.raises(ValueError, match=r"interval must lie in \(0, 1\]"):
        wsolevaluation_thresholds(0)


def test_the_largest_contour_without_opencv_is_a_one_line_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 raises ImportError
    with pytest.raises(ValueError, match=r"needs OpenCV: pip install opencv-python-headless$"):
        BoxAccMeter(convention="wsolevaluation", all_components=False)
    m = np.zeros((1, 8, 8))
    m[0, 2, 3] = 1.0  # every contour: no OpenCV
    assert theirs(m, [np.array([[3, 2, 4, 3]])])["box_acc"] == ALL


def test_gt_boxes_resized_by_their_rule() -> None:
    # int(x * W / w), multiplying first: 55 * 224 / 110 = 112 exactly (55 * (224 / 110) would be
    # 111.99999999999999), 45 * 224 / 160 = 63, 109 * 224 / 110 = 221.96, 85 * 224 / 160 = 119
    out = resize_boxes_wsolevaluation(np.array([[55, 45, 109, 85]]), (110, 160), (224, 224))
    assert out.tolist() == [[112, 63, 221, 119]] and out.dtype == np.int64
    out = resize_boxes_wsolevaluation([[10, 20, 299, 199]], (300, 200), (224, 224))
    assert out.tolist() == [[7, 22, 223, 222]]  # 7.47, 22.4, 223.25, 222.88
    with pytest.raises(ValueError, match=r"boxes must be \(k, 4\)"):
        resize_boxes_wsolevaluation([1, 2, 3, 4], (10, 10), (5, 5))


# ---- cross-check against their steps run with OpenCV ---------------------------------------


def opencv_curves(maps, gt_boxes, thresholds, deltas, multi_contour) -> dict:
    """wsolevaluation's BoxEvaluator steps, written here from its rules and run with OpenCV:
    per map and threshold, threshold the uint8 map at int(t * max) with cv2.THRESH_BINARY, take
    every (or the largest-area) contour of cv2.findContours(RETR_TREE, CHAIN_APPROX_SIMPLE),
    grow cv2.boundingRect by one and clip, score (0, 0, 0, 0) without a contour, and count the
    image correct where the best inclusive IoU >= delta / 100."""
    import cv2

    correct = {d: np.zeros(len(thresholds)) for d in deltas}
    for m, gt in zip(maps, gt_boxes, strict=True):
        height, width = m.shape
        image = (m * 255).astype(np.uint8)
        best = np.zeros(len(thresholds))
        for i, t in enumerate(thresholds):
            _, binary = cv2.threshold(image, int(t * np.max(image)), 255, cv2.THRESH_BINARY)
            contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[-2]
            if not multi_contour and len(contours):
                contours = [max(contours, key=cv2.contourArea)]
            boxes = [[0, 0, 0, 0]]
            if len(contours):
                boxes = []
                for c in contours:
                    x, y, w, h = cv2.boundingRect(c)
                    boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
            for a in boxes:
                for g in gt:
                    iw = max(0, min(a[2], g[2]) - max(a[0], g[0]) + 1)
                    ih = max(0, min(a[3], g[3]) - max(a[1], g[1]) + 1)
                    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
                    area_g = (g[2] - g[0] + 1) * (g[3] - g[1] + 1)
                    union = area_a + area_g - iw * ih
                    best[i] = max(best[i], iw * ih / union if union > 0 else 0.0)
        for d in deltas:
            correct[d][best >= d / 100] += 1
    return {d: (correct[d] * 100.0 / float(len(maps))).tolist() for d in deltas}


def random_maps(rng: np.random.Generator, kind: int, n: int, h: int, w: int) -> np.ndarray:
    """Maps in [0, 1] of several structures: noise, few levels (plateaus, ties), smooth CAM-like,
    rings and rectangles with holes and islands, stripes on the image border."""
    if kind == 0:
        return rng.random((n, h, w))
    if kind == 1:
        return np.floor(rng.random((n, h, w)) * 4) / 3
    if kind == 2:
        x = torch.from_numpy(rng.random((n, 1, 4, 4)))
        m = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)[:, 0].numpy()
        lo, hi = m.min(axis=(1, 2), keepdims=True), m.max(axis=(1, 2), keepdims=True)
        return (m - lo) / np.maximum(hi - lo, 1e-12)
    m = np.zeros((n, h, w))
    for k in range(n):
        for _ in range(rng.integers(1, 4)):  # rectangles, each with a hole of another value
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            y1, x1 = rng.integers(y0, h) + 1, rng.integers(x0, w) + 1
            m[k, y0:y1, x0:x1] = rng.random()
            m[k, y0 + 1 : y1 - 1, x0 + 1 : x1 - 1] = rng.random() * (rng.random() < 0.7)
            if rng.random() < 0.5:  # an island in the hole
                m[k, (y0 + y1) // 2, (x0 + x1) // 2] = rng.random()
        if kind == 4:
            m[k, 0, :] = rng.random()  # a stripe on the border
            m[k] *= rng.random((h, w)) < 0.8  # and pin-holes
    return m


def random_gt(rng: np.random.Generator, n: int, h: int, w: int) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        corners = np.sort(rng.integers(0, (w, h), (rng.integers(1, 3), 2, 2)), axis=1)
        boxes = corners.reshape(-1, 4)
        if rng.random() < 0.1:
            boxes[0] = 0  # their empty box's match
        out.append(boxes)
    return out


@pytest.mark.parametrize("all_components", [True, False], ids=["every_contour", "largest"])
def test_curves_equal_their_opencv_steps_on_random_maps(all_components) -> None:
    pytest.importorskip("cv2")
    rng = np.random.default_rng(7)
    deltas = (10, 30, 50, 70, 90)
    for trial in range(120):
        h, w = (int(v) for v in rng.integers(1, 18, 2))
        maps = random_maps(rng, trial % 5, 3, h, w).astype((np.float64, np.float32)[trial % 2])
        gt = random_gt(rng, 3, h, w)
        thresholds = wsolevaluation_thresholds(0.01 if trial % 10 else 0.001)
        r = theirs(maps, gt, thresholds, iou_thresholds=deltas, all_components=all_components)
        expected = opencv_curves(maps, gt, thresholds, deltas, all_components)
        for d in deltas:
            assert r["curve"][d] == expected[d], (trial, d)
            assert r["box_acc"][d] == max(expected[d])


def test_curves_equal_their_opencv_steps_on_cam_sized_maps() -> None:
    pytest.importorskip("cv2")
    rng = np.random.default_rng(8)
    maps = random_maps(rng, 2, 2, 56, 56).astype(np.float32)
    gt = [np.array([[10, 10, 40, 40], [0, 0, 55, 55]]), np.array([[5, 20, 30, 50]])]
    thresholds = wsolevaluation_thresholds()
    r = theirs(torch.from_numpy(maps), gt)
    expected = opencv_curves(maps, gt, thresholds, (30, 50, 70), True)
    assert [r["curve"][d] for d in (30, 50, 70)] == [expected[d] for d in (30, 50, 70)]
    assert max(expected[30]) > 0


def test_public_names() -> None:
    from cam_repro import metrics

    assert metrics.CONVENTIONS is CONVENTIONS
    assert metrics.wsolevaluation_thresholds is wsolevaluation_thresholds
    assert metrics.resize_boxes_wsolevaluation is resize_boxes_wsolevaluation
    assert {"CONVENTIONS", "wsolevaluation_thresholds", "resize_boxes_wsolevaluation"} <= set(
        metrics.__all__
    )


def test_contour_counts_equal_opencvs() -> None:
    """contour_sweep_hits' topology: 8-connected foreground components plus the 4-connected
    background components off the border are exactly the contours findContours returns."""
    cv2 = pytest.importorskip("cv2")
    from cam_repro.localize.components import RING_RUNS, contour_sweep_hits

    rng = np.random.default_rng(9)
    for kind in range(5):
        maps = random_maps(rng, kind, 4, 13, 11)
        quantised = np.ascontiguousarray((maps * 255).astype(np.uint8))
        gt = np.zeros((4, 4), dtype=np.int64)
        _, counts = contour_sweep_hits(quantised, gt, np.arange(5), np.array([0.5]), RING_RUNS)
        for k in range(4):
            for c in range(256):
                _, binary = cv2.threshold(quantised[k], c, 255, cv2.THRESH_BINARY)
                traced = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[-2]
                assert counts[k, c] == len(traced), (kind, k, c)
