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

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numba import njit
from scipy import ndimage

from cam_repro.localize.components import label_components
from cam_repro.runtime.config import check_choice
from cam_repro.runtime.errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor

NORMALIZE = ("max", "minmax")
BOX_RULES = ("paper", "release")


def check_threshold(threshold: float, key: str = "threshold") -> None:
    """The CAM threshold is a fraction of the map's (normalised) range: [0, 1]."""
    if not 0 <= threshold <= 1:
        raise ConfigError(f"{key} must lie in [0, 1], got {threshold}")


@dataclass(frozen=True)
class BoxRule:
    """How a map becomes a box: the paper's rule (keep the pixels >= `threshold` x the normalised
    map's max, take the largest 8-connected component; with `all_boxes` every component's box is
    a candidate) or the released code's generator (`rule="release"`)."""

    threshold: float = 0.2
    normalize: str = "max"  # max (the paper) | minmax (later WSOL work)
    rule: str = "paper"  # paper | release
    all_boxes: bool = False

    def __post_init__(self) -> None:
        check_threshold(self.threshold)
        check_choice(self.normalize, "normalize", NORMALIZE)
        check_choice(self.rule, "box_rule", BOX_RULES)
        if self.rule == "release" and self.all_boxes:
            raise ConfigError(
                "all_boxes applies to box_rule=paper (the release rule keeps one box)"
            )


def as_maps(cams: np.ndarray | Tensor, floats_only: bool = False) -> np.ndarray:
    """Maps as a float numpy array (float32 stays float32, anything else becomes float64);
    with `floats_only`, maps of a non-floating dtype are a ValueError instead of converted."""
    if hasattr(cams, "detach"):
        cams = cams.detach().cpu().numpy()
    cams = np.asarray(cams)
    if floats_only and not np.issubdtype(cams.dtype, np.floating):
        raise ValueError(f"cams must be floating point maps in [0, 1], got dtype {cams.dtype}")
    if cams.dtype not in (np.float32, np.float64):
        cams = cams.astype(np.float64)
    return cams


def normalize_maps(
    cams: np.ndarray | Tensor, normalize: str = "max"
) -> tuple[np.ndarray, np.ndarray]:
    """Normalise each (H, W) map of (N, H, W): "max" divides by the max, "minmax" maps min..max
    to 0..1. -> (normalised maps, valid (N,) bool); an invalid map (see the module doc) is zeros."""
    check_choice(normalize, "normalize", NORMALIZE)
    cams = as_maps(cams)
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


def _whole_image(n: int, height: int, width: int) -> np.ndarray:
    return np.tile(np.array([0, 0, width - 1, height - 1], dtype=np.int64), (n, 1))


@njit(cache=True, nogil=True)
def _above_threshold(maps: np.ndarray, threshold: float, minmax: bool) -> tuple:
    """`normalize_maps(maps) >= threshold` and the valid flags, fused: two passes per map, no
    normalised copy. Arithmetic in the maps' dtype, as numpy does it (threshold in that dtype)."""
    n, height, width = maps.shape
    keep = np.zeros((n, height * width), dtype=np.bool_)
    valid = np.zeros(n, dtype=np.bool_)
    for m in range(n):
        flat = maps[m].ravel()
        hi, lo = flat[0], flat[0]
        finite = True
        for v in flat:
            if not np.isfinite(v):
                finite = False
                break
            hi = max(hi, v)
            lo = min(lo, v)
        ok = finite and (hi > lo if minmax else hi > 0)
        valid[m] = ok
        if not ok:
            continue
        offset = lo if minmax else lo - lo  # zero, in the maps' dtype
        scale = hi - lo if minmax else hi
        for i in range(flat.shape[0]):
            keep[m, i] = (flat[i] - offset) / scale >= threshold
    return keep.reshape(n, height, width), valid


def _kept_pixels(cams: np.ndarray | Tensor, threshold: float, normalize: str) -> tuple:
    """(keep (N, H, W) bool, valid (N,) bool): pixels whose normalised value is >= threshold."""
    check_threshold(threshold)
    check_choice(normalize, "normalize", NORMALIZE)
    maps = np.ascontiguousarray(as_maps(cams))
    if maps.ndim != 3 or maps.shape[1] == 0 or maps.shape[2] == 0:
        raise ValueError(f"maps must be (N, H, W) with H, W >= 1, got shape {maps.shape}")
    if len(maps) == 0:
        return np.zeros(maps.shape, dtype=bool), np.zeros(0, dtype=bool)
    return _above_threshold(maps, maps.dtype.type(threshold), normalize == "minmax")


def largest_component_boxes(
    cams: np.ndarray | Tensor, threshold: float = 0.2, normalize: str = "max"
) -> np.ndarray:
    """The paper's box for each map of a batch: (N, H, W) -> (N, 4) int64, inclusive.

    One connected-component labelling for the whole batch (no Python loop over maps or pixels).
    """
    keep, _ = _kept_pixels(cams, threshold, normalize)
    n, height, width = keep.shape
    out = _whole_image(n, height, width)
    if n == 0:
        return out
    which, boxes, sizes = label_components(keep)
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
    keep, valid = _kept_pixels(cams, threshold, normalize)
    n, height, width = keep.shape
    which, boxes, sizes = label_components(keep)
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
    maps = as_maps(cam)
    if maps.ndim != 2:
        raise ValueError(f"cam must be (H, W), got shape {maps.shape}")
    x0, y0, x1, y1 = largest_component_boxes(maps[None], threshold, normalize)[0].tolist()
    return x0, y0, x1, y1


def boxes_from_cam(
    cam: np.ndarray | Tensor, threshold: float = 0.2, normalize: str = "max"
) -> np.ndarray:
    """Every component's box of one (H, W) map, (k, 4) int64, largest first (multi-box rule)."""
    maps = as_maps(cam)
    if maps.ndim != 2:
        raise ValueError(f"cam must be (H, W), got shape {maps.shape}")
    return component_boxes(maps[None], threshold, normalize)[0]


# The released code's box generator (bboxgenerator/dt_box in the authors' repository), as
# docs/design.md's protocol item 7 describes it: heatmap levels on a 0..255 scale, and the
# fraction of each mask's largest distance-to-background below which thin parts are dropped.
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
    maps = as_maps(cam)
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
        _, boxes, _ = label_components(kept[None])
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


def frame_boxes(maps: np.ndarray | Tensor, rule: BoxRule) -> np.ndarray:
    """The one box of each map under `rule`, in the maps' frame: (N, H, W) -> (N, 4) int64.

    The paper's rule gives the largest component's box (with `all_boxes`, the first of the
    candidates that `component_boxes` lists); the release rule its generator's first box.
    """
    if rule.rule == "release":
        maps = as_maps(maps)
        return np.stack([release_boxes(m)[0] for m in maps]).reshape(len(maps), 4)
    return largest_component_boxes(maps, rule.threshold, rule.normalize)


def box_area(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) inclusive boxes -> (...) pixel counts."""
    boxes = np.asarray(boxes)
    return (boxes[..., 2] - boxes[..., 0] + 1) * (boxes[..., 3] - boxes[..., 1] + 1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of `a` (..., n, 4) with every box of `b` (..., m, 4), inclusive
    -> (..., n, m) float64; leading dimensions broadcast (a batch of images at once)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    a = a.reshape(-1, 4) if a.ndim < 2 else a
    b = b.reshape(-1, 4) if b.ndim < 2 else b
    lo = np.maximum(a[..., :, None, :2], b[..., None, :, :2])  # (..., n, m, 2)
    hi = np.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    inter = np.clip(hi - lo + 1, 0, None).prod(axis=-1)
    union = box_area(a)[..., :, None] + box_area(b)[..., None, :] - inter
    return inter / union


def iou(
    a: np.ndarray | tuple[int, int, int, int], b: np.ndarray | tuple[int, int, int, int]
) -> float:
    """IoU of two inclusive boxes: area = (x1 - x0 + 1) * (y1 - y0 + 1)."""
    return float(iou_matrix(a, b)[0, 0])


def scale_boxes(
    boxes: np.ndarray,
    from_size: tuple[int, int] | np.ndarray,
    to_size: tuple[int, int] | np.ndarray,
) -> np.ndarray:
    """Boxes of an image of `from_size` (W, H) moved onto the same image resized to `to_size`.

    A box covering pixels x0..x1 spans the continuous interval [x0, x1 + 1); both edges are scaled
    and rounded to the nearest pixel edge, then the box is kept at least one pixel wide and inside
    the new image. (..., 4) -> (..., 4) int64 (a single box gives (1, 4)); the sizes are (2,) or
    broadcast against the boxes' leading dimensions, e.g. (N, 1, 2) for N images of k boxes each.
    A resize to the same size returns the boxes unchanged.
    """
    boxes = np.asarray(boxes, dtype=np.int64)
    if boxes.ndim == 1:
        boxes = boxes.reshape(-1, 4)
    src = np.asarray(from_size, dtype=np.float64)
    dst = np.asarray(to_size, dtype=np.float64)
    scale = np.concatenate([dst / src] * 2, axis=-1)  # (..., 4)
    edges = boxes + np.array([0, 0, 1, 1])  # inclusive -> half-open
    scaled = np.floor(edges * scale + 0.5).astype(np.int64)
    size = dst.astype(np.int64)
    x0y0 = np.clip(scaled[..., :2], 0, size - 1)
    x1y1 = np.clip(np.maximum(scaled[..., 2:], x0y0 + 1), 1, size)
    return np.concatenate([x0y0, x1y1 - 1], axis=-1)
