"""Box scaling between an original image and its resized copy (hand-computed values)."""

from __future__ import annotations

import numpy as np

from cam_repro.boxes import scale_boxes


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
