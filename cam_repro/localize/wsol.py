"""MaxBoxAccV2, the WSOL box metric of Choe et al., CVPR 2020, in our convention or theirs; their
mask metric, PxAP, is `localize.pxap`, on the same maps and thresholds (`unit_maps`,
`as_thresholds`).

Conventions follow their code (github clovaai/wsolevaluation, evaluation.py: BoxEvaluator,
MaskEvaluator, calculate_multiple_iou, compute_bboxes_from_scoremaps): maps already in [0, 1]
(the GT class's CAM, resized to the evaluated size, min-max normalised); thresholds 0.000, 0.001,
..., 0.999; boxes inclusive (x0, y0, x1, y1) with IoU = inter / (area_a + area_b - inter) on
pixel counts; an image is correct at (t, delta) if its best (candidate, GT) IoU >= delta / 100;
MaxBoxAcc at delta = the best % correct over t, picked separately per delta; MaxBoxAccV2 = the
mean over delta in (30, 50, 70) with every component a candidate (their box_v2_metric sets
multi_contour_eval and multi_iou_eval). Their older MaxBoxAcc is
max_box_acc(..., iou_thresholds=(50,), all_components=False).

Two conventions for the box candidates (`CONVENTIONS`, the `convention` argument of max_box_acc
and BoxAccMeter):

- "ours" (the default): the tight boxes of the 8-connected components of {map >= t}. It differs
  from their OpenCV code in the six ways (a)-(f) below, each chosen on purpose.
- "wsolevaluation": their BoxEvaluator bit for bit on the same float maps and GT boxes (resized
  to the frame by their rule: `resize_boxes_wsolevaluation`): (a)-(f) exactly as they do them,
  and thresholds=None means their np.arange(0, 1, 0.001) (`wsolevaluation_thresholds`). The
  quantisation `(map * 255).astype(np.uint8)` runs in the map's own dtype (a torch tensor's
  too); for float32 maps this gives the same bytes as in float64 (checked for every float32 in
  [0, 1]), but a float64 map and its float32 cast can differ (0.599999999 -> 152 vs 153). The
  thresholds collapse onto <= 256 cut levels per map, each scored once. With every contour a
  candidate (all_components=True, MaxBoxAccV2) no OpenCV is needed: the outer contours'
  boxes come from the 8-connected union-find sweep, the holes' from a 4-connected sweep over the
  background (components.contour_sweep_hits). The largest contour (all_components=False) needs
  cv2.contourArea on OpenCV's traced contours and OpenCV's contour order for ties, so that mode
  calls OpenCV itself at each cut level with two or more contours (optional dependency: the
  `wsol` extra, opencv-python-headless). tests/localize/test_wsol_parity.py checks both modes
  against their steps run with OpenCV (checked with opencv-python-headless 5.0).

How our box candidates differ from their OpenCV code, and why. Each point was read in their
evaluation.py and checked by running its steps with OpenCV on small hand-made maps,
which also showed that their outer contours enclose the same 8-connected components as ours:

(a) Quantisation. They threshold `(scoremap * 255).astype(np.uint8)` (truncated) at
    `int(t * max)`, so thresholds 0.000 .. 0.999 collapse onto 255 integer levels (e.g.
    t = 0.000 .. 0.003 all threshold at 0, t = 0.004 .. 0.007 at 1). We threshold the float map
    at t itself, so every threshold of the sweep is a distinct cut. Their threshold is also
    relative to the map's (quantised) max; ours is absolute, the same thing for a min-max
    normalised map (max 1 -> 255).
(b) Strict vs non-strict. cv2.THRESH_BINARY keeps pixels strictly > the threshold; we keep
    pixels >= t, the rule of the CAM paper and of our single-threshold box extractor. Together
    with (a): at t = 0 they drop pixels below 1/255, we keep the whole map (one whole-image box).
(c) Holes. cv2.findContours with RETR_TREE returns the inner (hole) contours too, one per
    4-connected background component that does not touch the image border, and each becomes a
    candidate box: the box of the foreground pixels bordering the hole, i.e. the hole's box grown
    by one pixel on each side (before (d)). We take the 8-connected components of {map >= t}, so
    a hole is never a candidate; a blob inside a hole is its own component in both. A hole's box
    is not a localisation the map proposes, and the candidate set then depends only on the pixel
    set (no contour tracing).
(d) Box size. They take `x, y, w, h = cv2.boundingRect(c)` and emit (x, y, x + w, y + h) clipped
    to (W - 1, H - 1): one pixel wider and taller than the component's tight inclusive box (except
    at the right/bottom image border), while their IoU counts pixels inclusively. We emit the tight
    inclusive box, consistent with the IoU and with our GT boxes.
(e) Empty threshold. With no contour they emit the box (0, 0, 0, 0), which is scored (it matches a
    GT box (0, 0, 0, 0)). We emit no box: the image is wrong at that threshold.
(f) Largest component (all_components=False, their multi_contour_eval=False). They keep
    max(contours, key=cv2.contourArea) over outer and hole contours: the polygon area of the
    traced contour (0 for a one-pixel-wide line), ties to OpenCV's contour order; we keep the
    component with the most pixels, ties to the component whose first pixel in raster order
    (y * W + x) comes first.

Default thresholds ("ours") are np.arange(1000) / 1000, the correctly rounded decimals; their
np.arange(0, 1, 0.001) differs in the last bit for 144 of the 1000 values, which matters only for
a float threshold that lands exactly on a pixel value. Maps are compared in float64: a float32
map's 0.7 is 0.699999988 and does not pass t = 0.7.

Undefined inputs give `Undefined(reason)` (cam_repro.localize.loc_error), never 100 or 0, nor an
exception after a whole evaluation: BoxAccMeter.summary() over no image (PxAP's cases:
localize.pxap). Degenerate but defined, and returned as numbers: constant (or all-zero) maps give
MaxBoxAcc of the whole-image box at t = 0; GT boxes that cover the whole image give MaxBoxAcc 100
for any map (the whole-image box at t = 0 matches them).

max_box_acc computes the sweep in one pass (cam_repro.localize.components); max_box_acc_loop
labels the map once per threshold with scipy and is the reference the tests and
scripts/bench_maxboxacc.py compare against ("ours" only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from cam_repro.localize.boxes import as_maps, iou_matrix
from cam_repro.localize.components import (
    RING_RUNS,
    contour_sweep_hits,
    level_table,
    sweep_hits,
)
from cam_repro.localize.loc_error import Undefined
from cam_repro.runtime.config import check_choice

DEFAULT_IOU_THRESHOLDS = (30, 50, 70)
CONVENTIONS = ("ours", "wsolevaluation")
_CHUNK = 64  # images per compiled call: bounds the (n, T, D) hit array


def default_thresholds() -> np.ndarray:
    """0.000, 0.001, ..., 0.999 (wsolevaluation's cam_curve_interval=0.001)."""
    return np.arange(1000, dtype=np.float64) / 1000


def wsolevaluation_thresholds(interval: float = 0.001) -> np.ndarray:
    """Their thresholds exactly: np.arange(0, 1, cam_curve_interval) (evaluation.py:
    evaluate_wsol's cam_threshold_list), last bits included."""
    if not 0 < interval <= 1:
        raise ValueError(f"interval must lie in (0, 1], got {interval}")
    return np.arange(0, 1, interval)


def resize_boxes_wsolevaluation(
    boxes: Any, image_size: tuple[int, int], frame_size: tuple[int, int]
) -> np.ndarray:
    """GT boxes (k, 4) of an image of size (w, h) -> (k, 4) int64 in the evaluated frame
    (W, H), by wsolevaluation's resize_bbox (evaluation.py): int(x0 * W / w), ... in float64,
    truncated."""
    b = np.asarray(boxes)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must be (k, 4), got shape {b.shape}")
    (w, h), (fw, fh) = image_size, frame_size
    if min(w, h, fw, fh) <= 0:
        raise ValueError(f"sizes must be positive, got image {image_size}, frame {frame_size}")
    new = np.array([fw, fh, fw, fh], dtype=np.float64)
    old = np.array([w, h, w, h], dtype=np.float64)
    return (b.astype(np.float64) * new / old).astype(np.int64)  # (x0 * W) / w, as theirs


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise ValueError(
            "convention='wsolevaluation' with all_components=False needs OpenCV: "
            "pip install opencv-python-headless"
        ) from None
    return cv2


def unit_maps(cams: Any) -> np.ndarray:
    """(N, H, W) numpy array or torch tensor in [0, 1] -> validated float numpy array."""
    cams = as_maps(cams, floats_only=True)
    if cams.ndim != 3:
        raise ValueError(f"cams must be (N, H, W), got shape {cams.shape}")
    if cams.shape[0] == 0 or cams.shape[1] == 0 or cams.shape[2] == 0:
        raise ValueError(f"cams must hold at least one non-empty map, got shape {cams.shape}")
    if np.isnan(cams).any():
        raise ValueError("cams contain NaN")
    lo, hi = float(cams.min()), float(cams.max())
    if lo < 0 or hi > 1:
        raise ValueError(f"cams must lie in [0, 1] (min-max normalised), got [{lo}, {hi}]")
    return cams


def _quantised(cams: Any) -> np.ndarray:
    """wsolevaluation's `(scoremap * 255).astype(np.uint8)` of validated (N, H, W) maps, computed
    in the maps' own dtype (a torch tensor's too) -> C-contiguous uint8 (N, H, W)."""
    raw = cams.detach().cpu().numpy() if hasattr(cams, "detach") else np.asarray(cams)
    unit_maps(raw)
    return np.ascontiguousarray((raw * 255).astype(np.uint8))


def _cut_levels(quantised: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(n, T) int64: their cv2.threshold level int(t * max) of each map at each threshold; a
    pixel passes iff its quantised value is > the level."""
    peak = quantised.reshape(len(quantised), -1).max(axis=1).astype(np.float64)
    return (thresholds[None, :] * peak[:, None]).astype(np.int64)


def _largest_contour_hits(
    quantised: np.ndarray,
    cuts: np.ndarray,
    every: np.ndarray,
    contours: np.ndarray,
    gt: np.ndarray,
    gt_start: np.ndarray,
    iou_thr: np.ndarray,
) -> np.ndarray:
    """(n, 256, D) hits of the largest contour's box (their multi_contour_eval=False) from the
    every-contour hits and contour counts of `contour_sweep_hits`: where a cut has at most one
    contour they are the same; elsewhere OpenCV runs their steps, since contour areas and the
    order that breaks their ties come from OpenCV's tracing."""
    cv2 = _cv2()
    n, height, width = quantised.shape
    hits = every.copy()
    for k in range(n):
        image_gt = gt[gt_start[k] : gt_start[k + 1]]
        for c in np.unique(cuts[k]):
            if contours[k, c] < 2:
                continue
            _, binary = cv2.threshold(quantised[k], int(c), 255, cv2.THRESH_BINARY)
            traced = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[-2]
            x, y, w, h = cv2.boundingRect(max(traced, key=cv2.contourArea))
            box = np.array([x, y, min(x + w, width - 1), min(y + h, height - 1)])
            hits[k, c] = iou_matrix(box, image_gt).max() >= iou_thr
    return hits


def as_thresholds(thresholds: Any) -> np.ndarray:
    """Score thresholds, checked (strictly increasing, in [0, 1]); None: `default_thresholds`."""
    if thresholds is None:
        return default_thresholds()
    t = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if t.size == 0:
        raise ValueError("thresholds must not be empty")
    if not np.isfinite(t).all() or t[0] < 0 or t[-1] > 1:
        raise ValueError(f"thresholds must lie in [0, 1], got [{t.min()}, {t.max()}]")
    if (np.diff(t) <= 0).any():
        raise ValueError("thresholds must be strictly increasing")
    return np.ascontiguousarray(t)


def _as_iou_thresholds(iou_thresholds: Sequence[float]) -> tuple:
    deltas = tuple(iou_thresholds)
    if not deltas:
        raise ValueError("iou_thresholds must not be empty")
    if len(set(deltas)) != len(deltas):
        raise ValueError(f"iou_thresholds must be distinct, got {deltas}")
    for d in deltas:
        if not 0 < d <= 100:
            raise ValueError(f"iou_thresholds are percentages in (0, 100], got {d}")
    return deltas


def _as_gt(gt_boxes: Sequence[Any], n: int) -> tuple[np.ndarray, np.ndarray]:
    """N lists of inclusive boxes -> stacked (G, 4) int64 and offsets (N + 1,) int64."""
    if len(gt_boxes) != n:
        raise ValueError(f"gt_boxes has {len(gt_boxes)} entries for {n} maps")
    boxes = []
    for i, b in enumerate(gt_boxes):
        if hasattr(b, "detach"):
            b = b.detach().cpu().numpy()
        b = np.asarray(b)
        if b.size == 0 or b.ndim > 2 or b.shape[-1] != 4:
            raise ValueError(f"gt_boxes[{i}] must be (k, 4) with k >= 1, got shape {b.shape}")
        b = b.reshape(-1, 4)
        bi = b.astype(np.int64)
        if not np.array_equal(bi, b):
            raise ValueError(f"gt_boxes[{i}] must hold integer pixel coordinates")
        if (bi[:, 2] < bi[:, 0]).any() or (bi[:, 3] < bi[:, 1]).any():
            raise ValueError(f"gt_boxes[{i}] must be (x0, y0, x1, y1) with x0 <= x1, y0 <= y1")
        boxes.append(bi)
    start = np.zeros(n + 1, dtype=np.int64)
    start[1:] = np.cumsum([len(b) for b in boxes])
    return np.ascontiguousarray(np.concatenate(boxes)), start


def _summary(correct: np.ndarray, thresholds: np.ndarray, deltas: tuple, n: int) -> dict:
    """correct (T, D) = images correct per (threshold, delta) -> the documented result dict."""
    acc = correct * 100.0 / float(n)  # (T, D), the same arithmetic as theirs
    best = acc.argmax(axis=0)  # first (lowest) threshold on ties
    box_acc = {d: float(acc[best[j], j]) for j, d in enumerate(deltas)}
    curve: dict = {"thresholds": thresholds.tolist()}
    curve.update({d: acc[:, j].tolist() for j, d in enumerate(deltas)})
    return {
        "box_acc": box_acc,
        "best_threshold": {d: float(thresholds[best[j]]) for j, d in enumerate(deltas)},
        "maxboxacc_v2": float(np.mean(list(box_acc.values()))),
        "curve": curve,
    }


class BoxAccMeter:
    """Box accuracy at every threshold, accumulated batch by batch (one pass per map).

    `update(cams, gt_boxes)` as for `max_box_acc`; `hits` (T, D) counts the images correct at each
    (threshold, IoU level) and `images` the images seen; `summary()` is `max_box_acc`'s result.
    Processes of a distributed run each fill their own and sum them with `all_reduce`.
    """

    def __init__(
        self,
        thresholds: Sequence[float] | np.ndarray | None = None,
        iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
        all_components: bool = True,
        convention: str = "ours",
    ) -> None:
        check_choice(convention, "convention", CONVENTIONS)
        self.convention = convention
        if thresholds is None and convention == "wsolevaluation":
            thresholds = wsolevaluation_thresholds()
        self.thresholds = as_thresholds(thresholds)
        self.deltas = _as_iou_thresholds(iou_thresholds)
        self.all_components = bool(all_components)
        if convention == "wsolevaluation" and not self.all_components:
            _cv2()  # fail now, not at the first batch
        self._table = level_table(self.thresholds, max(1024, 2 * len(self.thresholds)))
        self._iou = np.array(self.deltas, dtype=np.float64) / 100
        self.hits = np.zeros((len(self.thresholds), len(self.deltas)), dtype=np.int64)
        self.images = 0

    def update(self, cams: Any, gt_boxes: Sequence[Any]) -> None:
        ours = self.convention == "ours"
        maps = unit_maps(cams) if ours else _quantised(cams)
        gt, gt_start = _as_gt(gt_boxes, maps.shape[0])
        for s in range(0, maps.shape[0], _CHUNK):
            e = min(s + _CHUNK, maps.shape[0])
            off = gt_start[s : e + 1]
            hits = self._chunk_hits(maps[s:e], gt[off[0] : off[-1]], off - off[0])
            self.hits += hits.sum(axis=0)
        self.images += maps.shape[0]

    def _chunk_hits(self, chunk: np.ndarray, gt: np.ndarray, gt_start: np.ndarray) -> np.ndarray:
        """(n, T, D) hits of a chunk of maps (validated; uint8 in wsolevaluation's convention)
        and their GT boxes (gt_start from 0)."""
        if self.convention == "ours":
            # float32 maps as they are: the kernel compares each value with the float64
            # thresholds in float64 (a float32 converts exactly), as a float64 copy would
            return sweep_hits(
                np.ascontiguousarray(chunk), self.thresholds, self._table, gt,
                gt_start, self._iou, self.all_components, RING_RUNS,
            )  # fmt: skip
        # The T thresholds collapse onto at most 256 cut levels per map: score every level once
        # (uint8 maps: {q > c} for c = 0 .. 255), then read each threshold's level.
        cuts = _cut_levels(chunk, self.thresholds)  # (n, T)
        by_cut, contours = contour_sweep_hits(chunk, gt, gt_start, self._iou, RING_RUNS)
        if not self.all_components:
            by_cut = _largest_contour_hits(chunk, cuts, by_cut, contours, gt, gt_start, self._iou)
        return by_cut[np.arange(len(chunk))[:, None], cuts]  # (n, 256, D) -> (n, T, D)

    def add(self, other: BoxAccMeter) -> None:
        """Add the counts of another meter of the same thresholds and IoU levels (e.g. one
        filled by another thread)."""
        if other.hits.shape != self.hits.shape or not np.array_equal(
            other.thresholds, self.thresholds
        ):
            raise ValueError("add: the meters have different thresholds or IoU levels")
        self.hits += other.hits
        self.images += other.images

    def all_reduce(self, reduce_sum: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Sum `hits` and `images` over processes with `reduce_sum` (e.g. an all-reduce)."""
        flat = torch.from_numpy(np.append(self.hits.ravel(), self.images))
        total = reduce_sum(flat).numpy()
        self.hits = total[:-1].reshape(self.hits.shape).astype(np.int64)
        self.images = int(total[-1])

    def summary(self) -> dict | Undefined:
        """`max_box_acc`'s result; Undefined over no image (a % of zero images)."""
        if self.images == 0:
            return Undefined("no image with a box was scored")
        return _summary(self.hits, self.thresholds, self.deltas, self.images)


def max_box_acc(
    cams: Any,
    gt_boxes: Sequence[Any],
    thresholds: Sequence[float] | np.ndarray | None = None,
    iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
    all_components: bool = True,
    convention: str = "ours",
) -> dict:
    """MaxBoxAccV2 (all_components=True) or MaxBoxAcc per IoU level, in one pass per map.

    cams: (N, H, W) numpy array or torch tensor, values in [0, 1]. gt_boxes: N arrays (k_i, 4),
    k_i >= 1, inclusive (x0, y0, x1, y1) in map pixels. thresholds: strictly increasing values in
    [0, 1] (default 0.000 .. 0.999); a pixel passes t if value >= t. iou_thresholds: percentages.
    Candidates at t: the tight boxes of the 8-connected components of {cam >= t} (or of the
    largest one); no box if no pixel passes.
    convention="wsolevaluation": their BoxEvaluator's candidates and thresholds instead, bit for
    bit (the module doc; default thresholds `wsolevaluation_thresholds()`; all_components=False
    needs OpenCV).

    Returns, with D the iou_thresholds as given (e.g. 30, 50, 70) and T thresholds:
        {"box_acc": {D: float %},             # max over thresholds of % images correct
         "best_threshold": {D: float},        # the lowest threshold reaching it
         "maxboxacc_v2": float %,             # mean of box_acc over D
         "curve": {"thresholds": [T floats],  # plain lists
                   D: [T floats, % correct at each threshold]}}
    """
    meter = BoxAccMeter(thresholds, iou_thresholds, all_components, convention)
    meter.update(cams, gt_boxes)
    # at least one image (unit_maps refuses zero maps): never Undefined here
    return _summary(meter.hits, meter.thresholds, meter.deltas, meter.images)


_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def _component_boxes(mask: np.ndarray, all_components: bool) -> np.ndarray:
    """Tight inclusive boxes (k, 4) of the 8-connected components of a bool (H, W) mask."""
    labels, count = ndimage.label(mask, structure=_EIGHT_CONNECTED)
    if count == 0:
        return np.zeros((0, 4), dtype=np.int64)
    slices = ndimage.find_objects(labels)
    if not all_components:
        # scipy numbers components in raster order of their first pixel, so argmax's first
        # maximum is the tie-break of the one-pass kernel
        sizes = np.bincount(labels.ravel())[1:]
        slices = [slices[int(sizes.argmax())]]
    return np.array(
        [[sx.start, sy.start, sx.stop - 1, sy.stop - 1] for sy, sx in slices], dtype=np.int64
    )


def max_box_acc_loop(
    cams: Any,
    gt_boxes: Sequence[Any],
    thresholds: Sequence[float] | np.ndarray | None = None,
    iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
    all_components: bool = True,
) -> dict:
    """max_box_acc by labelling each map once per threshold (scipy): the slow reference."""
    maps = unit_maps(cams)
    t = as_thresholds(thresholds)
    deltas = _as_iou_thresholds(iou_thresholds)
    gt, gt_start = _as_gt(gt_boxes, maps.shape[0])
    iou_thr = np.array(deltas, dtype=np.float64) / 100
    correct = np.zeros((len(t), len(deltas)), dtype=np.int64)
    for n in range(maps.shape[0]):
        m = maps[n].astype(np.float64)
        image_gt = gt[gt_start[n] : gt_start[n + 1]]
        for i in range(len(t)):
            boxes = _component_boxes(m >= t[i], all_components)
            if len(boxes):
                correct[i] += iou_matrix(boxes, image_gt).max() >= iou_thr
    return _summary(correct, t, deltas, maps.shape[0])
