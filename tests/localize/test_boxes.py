"""Boxes: scaling, the paper's box rule on hand-drawn maps, IoU, the released box generator."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import ndimage

from cam_repro.localize.boxes import (
    _kept_pixels,
    box_from_cam,
    boxes_from_cam,
    component_boxes,
    iou,
    iou_matrix,
    largest_component_boxes,
    normalize_maps,
    release_boxes,
    scale_boxes,
)
from cam_repro.localize.components import label_components


def test_same_size_is_identity() -> None:
    boxes = np.array([[0, 0, 63, 63], [5, 7, 5, 7], [10, 2, 40, 30]])
    assert np.array_equal(scale_boxes(boxes, (64, 64), (64, 64)), boxes)


def test_scaling_moves_pixel_edges() -> None:
    # pixels 10..19 of 100 span [10, 20); at half size [5, 10) -> pixels 5..9
    assert scale_boxes([[10, 0, 19, 99]], (100, 100), (50, 50)).tolist() == [[5, 0, 9, 49]]
    # x doubles, y shrinks 500 -> 224: [111, 442) * 0.448 = [49.7, 198.0) -> 50..197
    got = scale_boxes([[0, 111, 9, 441]], (100, 500), (200, 224))
    assert got.tolist() == [[0, 50, 19, 197]]


def test_whole_image_maps_to_whole_image_and_tiny_boxes_survive() -> None:
    assert scale_boxes([[0, 0, 499, 374]], (500, 375), (224, 224)).tolist() == [[0, 0, 223, 223]]
    assert scale_boxes([[3, 3, 3, 3]], (500, 500), (10, 10)).tolist() == [[0, 0, 0, 0]]


# --- boxes from class activation maps (hand-drawn maps) ---------------------------------------


def _canvas(h: int = 10, w: int = 12) -> np.ndarray:
    return np.zeros((h, w))


def test_two_blobs_the_larger_wins() -> None:
    cam = _canvas()
    cam[1:3, 1:3] = 1.0  # 4 pixels, the brightest
    cam[5:8, 6:10] = 0.5  # 12 pixels, dimmer but above 20% of the max
    assert box_from_cam(cam) == (6, 5, 9, 7)
    # every component, largest first
    assert boxes_from_cam(cam).tolist() == [[6, 5, 9, 7], [1, 1, 2, 2]]
    # at 60% of the max only the small bright blob is left
    assert box_from_cam(cam, threshold=0.6) == (1, 1, 2, 2)


def test_diagonal_chain_is_one_component_by_8_connectivity() -> None:
    cam = _canvas()
    for i in range(5):
        cam[2 + i, 3 + i] = 1.0  # touching only at corners
    cam[0, 11] = 1.0
    cam[9, 0] = 1.0
    assert box_from_cam(cam) == (3, 2, 7, 6)
    assert len(boxes_from_cam(cam)) == 3


def test_equal_components_tie_goes_to_raster_order() -> None:
    cam = _canvas()
    cam[6:8, 1:3] = 1.0  # 4 pixels, lower rows
    cam[1:3, 8:10] = 1.0  # 4 pixels, met first scanning rows from the top
    assert box_from_cam(cam) == (8, 1, 9, 2)


def test_threshold_exactly_at_a_pixel_value_keeps_it() -> None:
    cam = _canvas()
    cam[4, 2:8] = [5.0, 1.0, 1.0, 1.0, 1.0, 0.9]  # 1.0 / 5.0 = 0.2 exactly; 0.9 / 5 < 0.2
    assert box_from_cam(cam, threshold=0.2) == (2, 4, 6, 4)
    assert box_from_cam(cam.astype(np.float32), threshold=0.2) == (2, 4, 6, 4)


def test_degenerate_maps_give_the_whole_image() -> None:
    whole = (0, 0, 11, 9)
    assert box_from_cam(_canvas()) == whole  # flat zero
    assert box_from_cam(-np.ones((10, 12))) == whole  # max not positive
    nan = _canvas()
    nan[3, 3] = 1.0
    nan[0, 0] = np.nan
    assert box_from_cam(nan) == whole
    inf = _canvas()
    inf[3, 3] = np.inf
    assert box_from_cam(inf) == whole
    assert box_from_cam(np.full((10, 12), 7.0), normalize="minmax") == whole  # flat
    assert boxes_from_cam(_canvas()).tolist() == [list(whole)]


def test_max_and_minmax_normalisation_differ_on_negative_maps() -> None:
    cam = np.full((10, 12), -1.0)
    cam[2:4, 2:4] = 1.0  # the object
    cam[2:8, 2:10] = np.maximum(cam[2:8, 2:10], -0.5)  # a weak halo around it
    # max: pixels >= 0.2 * 1.0 -> the object only; minmax: (v + 1) / 2 >= 0.2 keeps the halo too
    assert box_from_cam(cam, normalize="max") == (2, 2, 3, 3)
    assert box_from_cam(cam, normalize="minmax") == (2, 2, 9, 7)


def test_batched_forms_equal_one_map_at_a_time() -> None:
    rng = np.random.default_rng(0)
    cams = rng.random((6, 9, 11)) ** 3
    cams[2] = 0.0  # an invalid map inside a batch
    cams[4, 0, 0] = np.nan
    for threshold in (0.2, 0.5):
        batched = largest_component_boxes(cams, threshold)
        assert batched.tolist() == [list(box_from_cam(c, threshold)) for c in cams]
        every = component_boxes(cams, threshold)
        assert [b.tolist() for b in every] == [boxes_from_cam(c, threshold).tolist() for c in cams]
        assert all((b[0] == one).all() for b, one in zip(every, batched, strict=True))


def test_torch_maps_are_accepted() -> None:
    cam = torch.zeros(8, 8)
    cam[2:5, 3:6] = 2.0
    assert box_from_cam(cam) == (3, 2, 5, 4)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        box_from_cam(_canvas(), threshold=1.5)
    with pytest.raises(ValueError, match="normalize"):
        box_from_cam(_canvas(), normalize="sum")
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        box_from_cam(np.zeros((2, 3, 4)))


# --- IoU, inclusive convention (hand-computed) -------------------------------------------------


def test_iou_by_hand() -> None:
    assert iou([0, 0, 9, 9], [0, 0, 9, 9]) == 1.0
    # overlap 5 x 5 = 25 pixels of 100 + 100 - 25
    assert iou([0, 0, 9, 9], [5, 5, 14, 14]) == 25 / 175
    # sharing one column of pixels (x = 1): 2 of 4 + 4 - 2
    assert iou([0, 0, 1, 1], [1, 0, 2, 1]) == 2 / 6
    # edge to edge without a shared pixel: no overlap
    assert iou([0, 0, 1, 1], [2, 0, 3, 1]) == 0.0
    # nested: the inner 2 x 2 inside the outer 4 x 4
    assert iou([0, 0, 3, 3], [1, 1, 2, 2]) == 4 / 16
    # disjoint
    assert iou([0, 0, 2, 2], [10, 10, 12, 12]) == 0.0
    # one-pixel boxes
    assert iou([3, 3, 3, 3], [3, 3, 3, 3]) == 1.0


def test_iou_matrix_is_many_to_many() -> None:
    a = np.array([[0, 0, 9, 9], [0, 0, 1, 1]])
    b = np.array([[5, 5, 14, 14], [0, 0, 9, 9], [2, 0, 3, 1]])
    expected = [[25 / 175, 1.0, 4 / 100], [0.0, 4 / 100, 0.0]]
    assert np.allclose(iou_matrix(a, b), expected, rtol=0, atol=1e-15)
    assert iou_matrix(a, np.zeros((0, 4))).shape == (2, 0)


# --- the released code's box generator ---------------------------------------------------------


def test_release_rule_drops_a_thin_tail_that_the_paper_rule_keeps() -> None:
    cam = np.zeros((100, 100))
    cam[10:70, 10:70] = 1.0  # a 60 x 60 object: its deepest pixel is 30 from the background
    cam[40, 70:95] = 0.5  # a one-pixel-wide tail, 25 pixels long, above 20% of the max
    # The paper's rule: the tail is part of the largest component.
    assert box_from_cam(cam) == (10, 10, 94, 69)
    # The release: a tail pixel is 1 from the background, 1/30 < 10/255 of the deepest: dropped.
    # The blob's own rim (1/30 too) goes with it, so the box shrinks by one pixel on each side,
    # except at x = 69, row 40, where the tail pushed the background sqrt(2) away: 1.41/30 stays.
    assert release_boxes(cam)[0].tolist() == [11, 11, 69, 68]


def test_release_rule_levels_and_overlap_suppression() -> None:
    cam = np.zeros((100, 100))
    cam[10:70, 10:70] = 0.3  # above level 20 (of 255) only
    cam[30:50, 30:50] = 1.0  # above all three levels
    boxes = release_boxes(cam)
    # Level 20 gives the big square less its rim (1 / 30 deep). Levels 100 and 110 give the inner
    # one, whole (its rim is 1 / 10 of its depth, > 10 / 255), twice: the duplicate is suppressed;
    # the inner box overlaps the big one by 400 / 3364 < 0.5, so it is kept.
    assert boxes.tolist() == [[11, 11, 68, 68], [30, 30, 49, 49]]
    assert release_boxes(np.zeros((5, 6))).tolist() == [[0, 0, 5, 4]]


def test_components_equal_scipy_labelling_on_random_masks() -> None:
    """The compiled labelling numbers components and boxes exactly as scipy.ndimage does."""
    rng = np.random.default_rng(1)
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True  # 8-connected inside each map, none across maps
    # (4, 64, 64) at density ~0.5 holds thousands of runs: the run arrays must grow.
    shapes = [(5, 17, 23), (3, 1, 9), (3, 9, 1), (2, 40, 40), (4, 64, 64)]
    for shape, density in itertools.product(shapes, (0.1, 0.45, 0.6, 0.95)):
        keep = rng.random(shape) < density
        which, boxes, sizes = label_components(keep)
        labels, n = ndimage.label(keep, structure=structure)
        objects = ndimage.find_objects(labels)
        assert len(which) == n
        assert which.tolist() == [m.start for m, _, _ in objects]
        assert boxes.tolist() == [[c.start, r.start, c.stop - 1, r.stop - 1] for _, r, c in objects]
        assert sizes.tolist() == np.bincount(labels.ravel())[1:].tolist()


def test_scale_boxes_broadcasts_one_size_per_image() -> None:
    # two images of 2 boxes each, from a 64 x 64 frame to 128 x 32 and 64 x 64
    boxes = np.array([[[0, 0, 63, 63], [8, 8, 15, 15]], [[0, 0, 63, 63], [8, 8, 15, 15]]])
    sizes = np.array([[128, 32], [64, 64]])
    got = scale_boxes(boxes, (64, 64), sizes[:, None, :])
    assert got.tolist() == [
        [[0, 0, 127, 31], [16, 4, 31, 7]],  # x doubles, y halves: [8, 16) -> [16, 32), [4, 8)
        [[0, 0, 63, 63], [8, 8, 15, 15]],
    ]
    assert (got[0] == scale_boxes(boxes[0], (64, 64), (128, 32))).all()


def test_fused_threshold_equals_normalise_then_compare() -> None:
    """The compiled normalise-and-threshold keeps exactly the pixels normalize_maps says."""
    rng = np.random.default_rng(2)
    maps = rng.normal(size=(6, 13, 11))
    maps[1] = -np.abs(maps[1])  # max <= 0
    maps[2] = 3.0  # flat
    maps[3, 4, 4] = np.nan
    maps[4] = np.round(maps[4] * 4) / 4  # values landing exactly on thresholds
    for dtype, normalize, threshold in itertools.product(
        (np.float32, np.float64), ("max", "minmax"), (0.0, 0.2, 0.25, 0.5, 1.0)
    ):
        m = maps.astype(dtype)
        keep, valid = _kept_pixels(m, threshold, normalize)
        scaled, expected_valid = normalize_maps(m, normalize)
        assert valid.tolist() == expected_valid.tolist()
        expected = (scaled >= dtype(threshold)) & expected_valid[:, None, None]
        assert (keep == expected).all(), (dtype, normalize, threshold)
