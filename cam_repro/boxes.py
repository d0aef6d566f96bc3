"""Boxes as pure arrays: from class activation maps to boxes, IoU, scaling between image sizes.

Convention everywhere: (x0, y0, x1, y1), 0-based inclusive pixel coordinates, so a box covers
(x1 - x0 + 1) x (y1 - y0 + 1) pixels (the ILSVRC devkit's convention). Functions take boxes in
the coordinates of the map or image they are given and return them in the same coordinates.

The paper's box rule (section 4.1 of Zhou et al. 2016): normalise the map, keep the pixels whose
value is >= 20% of the max, and take the tight box of the largest connected component. Here
components are 8-connected, "largest" is by pixel count, and ties go to the component met first
in raster order (the one whose first pixel, scanning rows top to bottom, comes first). A map that
cannot be normalised (any NaN or inf; max <= 0 with "max"; a flat map with "minmax") gives the
whole-image box: such a map says nothing about where the object is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

if TYPE_CHECKING:
    from torch import Tensor

NORMALIZE = ("max", "minmax")

# 8-connectivity inside each (H, W) map of an (N, H, W) stack, none between maps.
_EIGHT_IN_STACK = np.zeros((3, 3, 3), dtype=bool)
_EIGHT_IN_STACK[1] = True


def _as_maps(cams: np.ndarray | Tensor) -> np.ndarray:
    """Maps as a float numpy array (float32 stays float32, anything else becomes float64)."""
    if hasattr(cams, "detach"):
        cams = cams.detach().cpu().numpy()
    cams = np.asarray(cams)
    if cams.dtype not in (np.float32, np.float64):
        cams = cams.astype(np.float64)
    return cams


def normalize_maps(
    cams: np.ndarray | Tensor, normalize: str = "max"
) -> tuple[np.ndarray, np.ndarray]:
    """Normalise each (H, W) map of (N, H, W): "max" divides by the max, "minmax" maps min..max
    to 0..1. -> (normalised maps, valid (N,) bool); an invalid map (see the module doc) is zeros."""
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZE)}, got {normalize!r}")
    cams = _as_maps(cams)
    if cams.ndim != 3 or cams.shape[1] == 0 or cams.shape[2] == 0:
        raise ValueError(f"maps must be (N, H, W) with H, W >= 1, got shape {cams.shape}")
    flat = cams.reshape(len(cams), -1)
    finite = np.isfinite(flat).all(axis=1)
    safe = np.where(finite[:, None], flat, 0)
    hi, lo = safe.max(axis=1, initial=-np.inf), safe.min(axis=1, initial=np.inf)
    if normalize == "max":
        valid = finite & (hi > 0)
        scale, offset = np.where(valid, hi, 1), np.zeros_like(lo)
    else:
        valid = finite & (hi > lo)
        scale, offset = np.where(valid, hi - lo, 1), np.where(valid, lo, 0)
    out = (safe - offset[:, None].astype(safe.dtype)) / scale[:, None].astype(safe.dtype)
    out[~valid] = 0
    return out.reshape(cams.shape), valid


def _check_threshold(threshold: float) -> None:
    if not 0 <= threshold <= 1:
        raise ValueError(
            f"threshold must lie in [0, 1] (a fraction of the map's range), got {threshold}"
        )


def _components(keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8-connected components of a (N, H, W) bool stack.

    -> (map index (n,), box (n, 4) inclusive, pixel count (n,)), components in raster order
    (by map, then by their first pixel), which is how scipy numbers them.
    """
    labels, n = ndimage.label(keep, structure=_EIGHT_IN_STACK)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros((0, 4), np.int64), np.zeros(0, np.int64)
    objects = ndimage.find_objects(labels)  # (n,) of (map, rows, cols) slices
    spans = np.array([(m.start, r.start, r.stop, c.start, c.stop) for m, r, c in objects])
    boxes = np.stack([spans[:, 3], spans[:, 1], spans[:, 4] - 1, spans[:, 2] - 1], axis=1)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    return spans[:, 0].astype(np.int64), boxes.astype(np.int64), sizes.astype(np.int64)


def _whole_image(n: int, height: int, width: int) -> np.ndarray:
    return np.tile(np.array([0, 0, width - 1, height - 1], dtype=np.int64), (n, 1))


def largest_component_boxes(
    cams: np.ndarray | Tensor, threshold: float = 0.2, normalize: str = "max"
) -> np.ndarray:
    """The paper's box for each map of a batch: (N, H, W) -> (N, 4) int64, inclusive.

    One connected-component labelling for the whole batch (no Python loop over maps or pixels).
    """
    _check_threshold(threshold)
    maps, valid = normalize_maps(cams, normalize)
    n, height, width = maps.shape
    out = _whole_image(n, height, width)
    if n == 0:
        return out
    which, boxes, sizes = _components((maps >= threshold) & valid[:, None, None])
    if len(which):
        # Per map, the largest component; among equals the first in raster order (stable sort).
        order = np.lexsort((-sizes, which))
        first = np.ones(len(order), dtype=bool)
        first[1:] = which[order][1:] != which[order][:-1]
        pick = order[first]
        out[which[pick]] = boxes[pick]
    return out


def component_boxes(
    cams: np.ndarray | Tensor, threshold: float = 0.2, normalize: str = "max"
) -> list[np.ndarray]:
    """Every component's box for each map of a batch: (N, H, W) -> N arrays (k_i, 4), largest
    component first (ties in raster order), so `[0]` of each is `largest_component_boxes`."""
    _check_threshold(threshold)
    maps, valid = normalize_maps(cams, normalize)
    n, height, width = maps.shape
    which, boxes, sizes = _components((maps >= threshold) & valid[:, None, None])
    order = np.lexsort((-sizes, which))
    which, boxes = which[order], boxes[order]
    starts = np.searchsorted(which, np.arange(n + 1))
    whole = _whole_image(1, height, width)
    return [
        boxes[starts[i] : starts[i + 1]] if valid[i] and starts[i + 1] > starts[i] else whole
        for i in range(n)
    ]


def box_from_cam(
    cam: np.ndarray | Tensor, threshold: float = 0.2, normalize: str = "max"
) -> tuple[int, int, int, int]:
    """The paper's box for one (H, W) map: the tight box of the largest 8-connected component of
    the pixels whose normalised value is >= threshold; the whole image for an invalid map."""
    maps = _as_maps(cam)
    if maps.ndim != 2:
        raise ValueError(f"cam must be (H, W), got shape {maps.shape}")
    x0, y0, x1, y1 = largest_component_boxes(maps[None], threshold, normalize)[0].tolist()
    return x0, y0, x1, y1


def boxes_from_cam(
    cam: np.ndarray | Tensor, threshold: float = 0.2, normalize: str = "max"
) -> np.ndarray:
    """Every component's box of one (H, W) map, (k, 4) int64, largest first (multi-box rule)."""
    maps = _as_maps(cam)
    if maps.ndim != 2:
        raise ValueError(f"cam must be (H, W), got shape {maps.shape}")
    return component_boxes(maps[None], threshold, normalize)[0]


# The released code's box generator (bboxgenerator/dt_box in the authors' repository), as
# DESIGN.md's protocol item 7 describes it: heatmap levels on a 0..255 scale, and the fraction of
# each mask's largest distance-to-background below which thin parts are dropped.
RELEASE_LEVELS = (20, 100, 110)
RELEASE_THIN = 10 / 255


def release_boxes(
    cam: np.ndarray | Tensor, levels: tuple[int, ...] = RELEASE_LEVELS, thin: float = RELEASE_THIN
) -> np.ndarray:
    """The released code's boxes for one (H, W) map, best first: (k, 4) int64, inclusive.

    The map is divided by its max (negatives clipped) and put on a 0..255 scale. For each level,
    the pixels strictly above it form a mask; pixels whose Euclidean distance to the background is
    <= `thin` times the mask's largest such distance are dropped (this removes thin parts: tails,
    bridges between blobs); every 8-connected component of what is left gives a box. The boxes of
    all levels are sorted by area (largest first; ties by level, then raster order), and a box
    whose IoU with a larger kept box is > 0.5 is dropped. The first box is the answer. Our reading
    of the release differs from it in three small ways, on purpose: the map is not quantised to
    uint8 (the release read it back from an 8-bit image), boxes are tight (OpenCV's x + w is one
    pixel wider), and "overlaps by more than half" is read as IoU > 0.5.
    An invalid map (as for the paper's rule), or one with nothing above the lowest level, gives
    the whole-image box.
    """
    maps = _as_maps(cam)
    if maps.ndim != 2:
        raise ValueError(f"cam must be (H, W), got shape {maps.shape}")
    scaled, valid = normalize_maps(maps[None], "max")
    height, width = maps.shape
    if not valid[0]:
        return _whole_image(1, height, width)
    heat = np.clip(scaled[0], 0, None) * 255
    found = []
    for level in levels:
        mask = heat > level
        if not mask.any():
            continue
        depth = ndimage.distance_transform_edt(mask)
        kept = depth > thin * depth.max()
        _, boxes, _ = _components(kept[None])
        found.append(boxes)
    if not found:
        return _whole_image(1, height, width)
    boxes = np.concatenate(found)
    boxes = boxes[np.argsort(-box_area(boxes), kind="stable")]
    overlap = iou_matrix(boxes, boxes)
    keep: list[int] = []
    for i in range(len(boxes)):
        if all(overlap[i, j] <= 0.5 for j in keep):
            keep.append(i)
    return boxes[keep]


def box_area(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) inclusive boxes -> (...) pixel counts."""
    boxes = np.asarray(boxes)
    return (boxes[..., 2] - boxes[..., 0] + 1) * (boxes[..., 3] - boxes[..., 1] + 1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of `a` (n, 4) with every box of `b` (m, 4), inclusive -> (n, m) float64."""
    a = np.asarray(a, dtype=np.int64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.int64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])  # (n, m, 2)
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo + 1, 0, None).prod(axis=-1)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return inter / union


def iou(
    a: np.ndarray | tuple[int, int, int, int], b: np.ndarray | tuple[int, int, int, int]
) -> float:
    """IoU of two inclusive boxes: area = (x1 - x0 + 1) * (y1 - y0 + 1)."""
    return float(iou_matrix(a, b)[0, 0])


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
