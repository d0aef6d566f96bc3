"""MaxBoxAccV2 and PxAP (cam_repro.localize.wsol): hand-computed cases, and the one-pass sweep
checked against the per-threshold labelling loop on random maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cam_repro.localize.pxap import PxAPMeter, pxap
from cam_repro.localize.wsol import BoxAccMeter, max_box_acc, max_box_acc_loop

BOTH = pytest.mark.parametrize("fn", [max_box_acc, max_box_acc_loop], ids=["one_pass", "loop"])


def blank(h: int = 20, w: int = 20) -> np.ndarray:
    return np.zeros((h, w))


@BOTH
def test_best_threshold_is_picked_per_iou_level(fn) -> None:
    # image 0: nested squares 0.3 (rows/cols 5..14, 100 px), 0.6 (6..13, 64 px), 1.0 (7..12,
    # 36 px); GT = the core. IoU at t=0.1: 36/100 = 0.36, t=0.5: 36/64 = 0.5625, t=0.9: 1.
    a = blank()
    a[5:15, 5:15] = 0.3
    a[6:14, 6:14] = 0.6
    a[7:13, 7:13] = 1.0
    # image 1: only the 0.3 square: IoU 0.36 at t=0.1, no pixel passes 0.5 or 0.9
    b = blank()
    b[5:15, 5:15] = 0.3
    gt = [np.array([[7, 7, 12, 12]]), np.array([[7, 7, 12, 12]])]
    r = fn(np.stack([a, b]), gt, thresholds=[0.1, 0.5, 0.9])
    # % correct per threshold (0.1, 0.5, 0.9): 30 -> 100, 50, 50; 50 -> 0, 50, 50; 70 -> 0, 0, 50
    assert r["curve"] == {
        "thresholds": [0.1, 0.5, 0.9],
        30: [100.0, 50.0, 50.0],
        50: [0.0, 50.0, 50.0],
        70: [0.0, 0.0, 50.0],
    }
    assert r["box_acc"] == {30: 100.0, 50: 50.0, 70: 50.0}
    assert r["best_threshold"] == {30: 0.1, 50: 0.5, 70: 0.9}
    assert r["maxboxacc_v2"] == pytest.approx(200 / 3)


@BOTH
def test_the_second_gt_box_can_be_the_match(fn) -> None:
    m = blank()
    m[2:6, 2:6] = 1.0  # box (2, 2, 5, 5), 16 px
    gt = np.array([[10, 10, 15, 15], [2, 2, 5, 6]])  # IoU 0 and 16 / 20 = 0.8
    r = fn(m[None], [gt], thresholds=[0.5])
    assert r["box_acc"] == {30: 100.0, 50: 100.0, 70: 100.0}
    r = fn(m[None], [gt[:1]], thresholds=[0.5])
    assert r["box_acc"] == {30: 0.0, 50: 0.0, 70: 0.0}


@BOTH
def test_a_hole_is_not_a_candidate_box(fn) -> None:
    m = blank(12, 12)
    m[2:9, 2:9] = 1.0  # ring: box (2, 2, 8, 8), 49 px box
    m[4:7, 4:7] = 0.0  # hole (4, 4, 6, 6)
    # the ring's box against the hole's box: IoU 9 / 49 = 0.18 (a hole candidate would score 1)
    r = fn(m[None], [np.array([[4, 4, 6, 6]])], thresholds=[0.5])
    assert r["box_acc"] == {30: 0.0, 50: 0.0, 70: 0.0}
    r = fn(m[None], [np.array([[2, 2, 8, 8]])], thresholds=[0.5])
    assert r["box_acc"] == {30: 100.0, 50: 100.0, 70: 100.0}


@BOTH
def test_all_components_vs_largest(fn) -> None:
    m = blank()
    m[1:3, 1:3] = 1.0  # small blob (1, 1, 2, 2): the GT
    m[6:10, 6:10] = 1.0  # larger blob, 16 px
    gt = [np.array([[1, 1, 2, 2]])]
    assert fn(m[None], gt, thresholds=[0.5])["box_acc"][70] == 100.0
    assert fn(m[None], gt, thresholds=[0.5], all_components=False)["box_acc"][30] == 0.0


@BOTH
def test_largest_component_tie_goes_to_the_first_in_raster_order(fn) -> None:
    m = blank(10, 10)
    m[6:8, 1:3] = 1.0  # 4 px, first pixel (x=1, y=6): raster index 61
    m[1:3, 6:8] = 1.0  # 4 px, first pixel (x=6, y=1): raster index 16 -> this one
    r = fn(m[None], [np.array([[6, 1, 7, 2]])], thresholds=[0.5], all_components=False)
    assert r["box_acc"][70] == 100.0
    r = fn(m[None], [np.array([[1, 6, 2, 7]])], thresholds=[0.5], all_components=False)
    assert r["box_acc"][30] == 0.0


@BOTH
def test_a_pixel_equal_to_the_threshold_passes(fn) -> None:
    m = np.full((10, 10), 0.25)
    m[2:5, 2:5] = 0.3  # np.float64(0.3), the same number as the threshold below
    gt = [np.array([[2, 2, 4, 4]])]
    assert fn(m[None], gt, thresholds=[0.3])["curve"][70] == [100.0]
    assert fn(m[None], gt, thresholds=[np.nextafter(0.3, 1)])["curve"][30] == [0.0]
    # no pixel passes: no box, wrong (wsolevaluation would score a box (0, 0, 0, 0))
    assert fn(m[None], [np.array([[0, 0, 0, 0]])], thresholds=[0.5])["curve"][30] == [0.0]


def test_torch_input_and_default_thresholds() -> None:
    m = torch.zeros(1, 16, 16)
    m[0, 4:8, 4:12] = torch.linspace(0.1, 1.0, 8)  # columns 4..11 rise from 0.1 to 1.0
    r = max_box_acc(m, [torch.tensor([[4, 4, 11, 7]])])
    assert len(r["curve"]["thresholds"]) == 1000 and r["curve"]["thresholds"][999] == 0.999
    # every threshold up to 0.1 keeps the whole 8 x 4 strip exactly (t = 0 also keeps the zeros)
    assert r["curve"][70][0] == 0.0 and r["curve"][70][1] == 100.0
    assert r["best_threshold"] == {30: 0.001, 50: 0.001, 70: 0.001}


def smooth_maps(rng: np.random.Generator, n: int, levels: int | None = None) -> np.ndarray:
    """Random 7x7 maps upsampled bilinearly to 56x56 and min-max normalised (like CAMs);
    `levels` rounds them to k / levels, making plateaus and values equal to thresholds."""
    x = torch.from_numpy(rng.random((n, 1, 7, 7)))
    m = F.interpolate(x, size=(56, 56), mode="bilinear", align_corners=False)[:, 0].numpy()
    m = (m - m.min(axis=(1, 2), keepdims=True)) / np.ptp(m, axis=(1, 2), keepdims=True)
    return np.round(m * levels) / levels if levels else m


def random_boxes(rng: np.random.Generator, n: int, size: int = 56) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        corners = np.sort(rng.integers(0, size, (rng.integers(1, 4), 2, 2)), axis=1)
        out.append(corners.reshape(-1, 4))  # (min x, min y), (max x, max y)
    return out


@pytest.mark.parametrize("levels", [None, 20])
@pytest.mark.parametrize("all_components", [True, False])
def test_one_pass_equals_the_loop_at_1000_thresholds(levels, all_components) -> None:
    rng = np.random.default_rng(levels or 0)
    maps = smooth_maps(rng, 3, levels)
    gt = random_boxes(rng, 3)
    # GT boxes near the components' boxes, so that the curves are not all zero
    gt[0] = np.array([[10, 10, 40, 40], [0, 0, 55, 55]])
    fast = max_box_acc(maps, gt, all_components=all_components)
    assert fast == max_box_acc_loop(maps, gt, all_components=all_components)
    assert max(fast["curve"][30]) > 0


@pytest.mark.parametrize("all_components", [True, False])
def test_one_pass_equals_the_loop_on_threshold_subsets(all_components) -> None:
    rng = np.random.default_rng(1)
    grid = np.arange(1000) / 1000
    for levels in (None, 10, 37):
        maps = smooth_maps(rng, 8, levels)
        gt = random_boxes(rng, 8)
        thresholds = np.sort(rng.choice(grid, 40, replace=False))
        if levels:  # thresholds exactly at the plateaus' values
            thresholds = np.union1d(thresholds, np.arange(levels + 1) / levels)
        fast = max_box_acc(maps, gt, thresholds, all_components=all_components)
        assert fast == max_box_acc_loop(maps, gt, thresholds, all_components=all_components)


def test_one_pass_equals_the_loop_on_noisy_maps() -> None:
    # many small components, ties in size, one-pixel and one-row maps
    rng = np.random.default_rng(2)
    thresholds = [0.0, 0.3, 1 / 3, 0.5, 2 / 3, 1.0]
    for h, w in [(1, 1), (1, 9), (9, 1), (6, 7), (13, 11)]:
        maps = np.floor(rng.random((6, h, w)) * 4) / 3
        xs, ys = rng.integers(0, w, 6), rng.integers(0, h, 6)
        gt = [np.array([[x, y, x, y]]) for x, y in zip(xs, ys, strict=True)]
        for all_components in (True, False):
            fast = max_box_acc(maps, gt, thresholds, all_components=all_components)
            assert fast == max_box_acc_loop(maps, gt, thresholds, all_components=all_components)


def test_pxap_of_a_perfect_map_is_100() -> None:
    masks = np.zeros((2, 8, 8), dtype=bool)
    masks[0, 2:5, 1:6] = True
    masks[1, 0:3, 0:8] = True
    assert pxap(masks.astype(np.float64), masks) == pytest.approx(100.0)


def test_pxap_by_hand() -> None:
    cams = np.array([[[1.0, 0.6, 0.6, 0.2]], [[0.6, 0.2, 0.0, 0.0]]])
    masks = np.array([[[1, 1, 0, 0]], [[1, 0, 1, 0]]])
    # bins [0, .5) [.5, 1) [1, 2) [2, 3]: foreground 1, 2, 1, 0; background 3, 1, 0, 0
    # from the top: tp 0 1 3 4, fp 0 0 1 4 -> precision (nan) 1 .75 .5, recall 0 .25 .75 1
    # area = 1 * .25 + .75 * .5 + .5 * .25 = .75
    assert pxap(cams, masks, thresholds=[0.0, 0.5]) == pytest.approx(75.0)


def test_input_errors() -> None:
    m = np.zeros((1, 8, 8))
    gt = [np.array([[0, 0, 3, 3]])]
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        max_box_acc(m[0], gt)
    with pytest.raises(ValueError, match="gt_boxes has 2 entries for 1 maps"):
        max_box_acc(m, gt * 2)
    with pytest.raises(ValueError, match="strictly increasing"):
        max_box_acc(m, gt, thresholds=[0.5, 0.2])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        max_box_acc_loop(m, gt, thresholds=[0.5, 1.5])
    with pytest.raises(ValueError, match="NaN"):
        max_box_acc(np.full((1, 8, 8), np.nan), gt)
    with pytest.raises(ValueError, match="min-max"):
        max_box_acc(m + 2, gt)
    with pytest.raises(ValueError, match="floating point maps"):  # 0/1 masks are not maps
        max_box_acc(np.ones((1, 8, 8), dtype=np.int64), gt)
    with pytest.raises(ValueError, match=r"x0 <= x1"):
        max_box_acc(m, [np.array([[3, 0, 2, 3]])])
    with pytest.raises(ValueError, match="k >= 1"):
        max_box_acc(m, [np.zeros((0, 4))])
    with pytest.raises(ValueError, match="cams' shape"):
        pxap(m, np.ones((1, 8, 7), dtype=bool))
    # no foreground: undefined with its reason, not an error
    # (tests/evaluate/test_undefined_metrics.py)
    assert pxap(m, np.zeros((1, 8, 8), dtype=bool)).reason.endswith("recall is 0/0")


def test_meters_accumulate_batches_and_sum_over_processes() -> None:
    """Batch by batch equals all at once; an all-reduce over two identical shards doubles every
    count and leaves the percentages unchanged."""
    rng = np.random.default_rng(3)
    maps, boxes = smooth_maps(rng, 6), random_boxes(rng, 6)
    masks = maps > 0.6
    thresholds = np.arange(50) / 50
    meter = BoxAccMeter(thresholds)
    pixels = PxAPMeter(thresholds)
    for s in (slice(0, 2), slice(2, 6)):
        meter.update(maps[s], boxes[s])
        pixels.update(maps[s], masks[s])
    whole = max_box_acc(maps, boxes, thresholds)
    assert meter.summary() == whole and meter.images == 6
    assert pixels.value() == pxap(maps, masks, thresholds)
    hits, fg = meter.hits.copy(), pixels.fg.copy()
    meter.all_reduce(lambda t: t * 2)
    pixels.all_reduce(lambda t: t * 2)
    assert meter.images == 12 and (meter.hits == 2 * hits).all() and (pixels.fg == 2 * fg).all()
    assert meter.summary()["box_acc"] == whole["box_acc"]
    assert pixels.value() == pytest.approx(pxap(maps, masks, thresholds), abs=1e-12)


def test_pxap_ignored_pixels_are_as_if_removed() -> None:
    # PxAP pools pixels over the set, so the kept pixels as one (1, 1, K) map are the same data
    rng = np.random.default_rng(4)
    maps = smooth_maps(rng, 3)
    masks = maps > 0.55
    ignore = (rng.random(maps.shape) < 0.3) & ~masks
    keep = ~ignore
    removed = pxap(maps[keep][None, None], masks[keep][None, None])
    assert pxap(maps, masks, ignore=ignore) == removed
    assert pxap(maps, masks, ignore=torch.from_numpy(ignore)) == removed
    assert pxap(maps, masks, ignore=np.zeros_like(ignore)) == pxap(maps, masks)
    meter = PxAPMeter()
    meter.update(maps, masks, ignore.astype(np.uint8))
    assert meter.value() == removed


def test_pxap_with_ignore_regions_by_hand() -> None:
    masks = np.zeros((1, 4, 4), dtype=bool)
    masks[0, 0, :] = True  # 4 foreground pixels
    ignore = np.zeros((1, 4, 4), dtype=bool)
    ignore[0, 1, :] = True  # 4 ignored pixels
    perfect = masks.astype(np.float64)
    cams = perfect.copy()
    cams[0, 1, :] = 1.0  # the ignored row scores like the foreground
    # without ignore: at score 1, tp 4, fp 4 -> precision 0.5 at recall 1: 50
    assert pxap(cams, masks) == pytest.approx(50.0)
    assert pxap(cams, masks, ignore=ignore) == pytest.approx(100.0)
    assert pxap(perfect, masks, ignore=ignore) == pytest.approx(100.0)
    # a constant map: precision = the foreground fraction of the 12 pixels not ignored, 4 / 12
    assert pxap(np.full((1, 4, 4), 0.5), masks, ignore=ignore) == pytest.approx(100 / 3)
    # a pixel both foreground and ignored stays foreground (wsolevaluation's get_mask)
    assert pxap(cams, masks, ignore=ignore | masks) == pytest.approx(100.0)


def test_pxap_ignore_errors() -> None:
    m = np.zeros((1, 8, 8))
    masks = np.ones((1, 8, 8), dtype=bool)
    with pytest.raises(ValueError, match=r"ignore must have the cams' shape \(1, 8, 8\)"):
        pxap(m, masks, ignore=np.zeros((1, 8, 7), dtype=bool))
    with pytest.raises(ValueError, match="ignore must be bool or hold only 0 and 1"):
        pxap(m, masks, ignore=np.full((1, 8, 8), 255, dtype=np.uint8))
    with pytest.raises(ValueError, match="ignore must have"):
        PxAPMeter().update(m, masks, np.zeros((8, 8), dtype=bool))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pxap_histograms_equal_numpys(dtype) -> None:
    """PxAP's one-pass histograms (components.level_histograms) are np.histogram's, values on
    the edges (0, 0.5, 1, the thresholds themselves) included."""
    from cam_repro.localize.components import level_histograms, level_table

    rng = np.random.default_rng(1)
    for grid in (np.arange(1000) / 1000, np.arange(7) / 7, np.linspace(0.2, 0.9, 50)):
        edges = np.append(grid, [1.0, 2.0, 3.0])
        maps = rng.random((5, 30, 30)).astype(dtype)
        maps[0, :3], maps[1, :2], maps[2, :2] = 1.0, 0.5, 0.0
        maps[3, :4] = grid[:4].astype(dtype)[:, None]
        fg = rng.random(maps.shape) < 0.4
        bg = ~fg & (rng.random(maps.shape) < 0.8)
        got = level_histograms(maps, fg, bg, edges, level_table(edges, 2048))
        for hist, mask in zip(got, (fg, bg), strict=True):
            want = sum(np.histogram(m[k], bins=edges)[0] for m, k in zip(maps, mask, strict=True))
            np.testing.assert_array_equal(hist, want)
