"""Boxes as pure arrays. Convention everywhere: (x0, y0, x1, y1), 0-based inclusive pixel
coordinates, so a box covers (x1 - x0 + 1) x (y1 - y0 + 1) pixels."""

from __future__ import annotations

import numpy as np


def scale_boxes(
    boxes: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]
) -> np.ndarray:
    """Boxes of an image of `from_size` (W, H) moved onto the same image resized to `to_size`.

    A box covering pixels x0..x1 spans the continuous interval [x0, x1 + 1); both edges are scaled
    and rounded to the nearest pixel edge, then the box is kept at least one pixel wide and inside
    the new image. (N, 4) -> (N, 4) int64; a resize to the same size returns the boxes unchanged.
    """
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    scale = np.array([to_size[0] / from_size[0], to_size[1] / from_size[1]] * 2)
    edges = boxes + np.array([0, 0, 1, 1])  # inclusive -> half-open
    scaled = np.floor(edges * scale + 0.5).astype(np.int64)
    limit = np.array([to_size[0], to_size[1]] * 2) - np.array([1, 1, 0, 0])
    x0y0 = np.clip(scaled[:, :2], 0, limit[:2])
    x1y1 = np.clip(np.maximum(scaled[:, 2:], x0y0 + 1), 1, limit[2:])
    return np.concatenate([x0y0, x1y1 - 1], axis=1)
