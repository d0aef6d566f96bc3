"""PxAP, the WSOL mask metric of Choe et al., CVPR 2020 (wsolevaluation, evaluation.py:
MaskEvaluator): the area under the pixel precision-recall curve of the maps against the GT
foreground masks, with their ignore regions (`pxap(..., ignore=)`), over the same maps in [0, 1]
and thresholds as MaxBoxAccV2 (`localize.wsol`).

Undefined inputs give `Undefined(reason)` (cam_repro.localize.loc_error), never 100 or 0, nor an
exception after a whole evaluation: PxAP without a foreground pixel (recall is 0/0), without a
background pixel (precision is 1 at every threshold: PxAP would be 100 whatever the maps), with
every pixel ignored, or with every pixel below the lowest threshold. Constant (or all-zero) maps
are degenerate but defined: PxAP equals the foreground's share of the pixels (a constant score
ranks nothing, the chance level).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from cam_repro.localize.components import level_histograms, level_table
from cam_repro.localize.loc_error import Undefined
from cam_repro.localize.wsol import as_thresholds, unit_maps


def _as_mask(mask: Any, name: str, shape: tuple) -> np.ndarray:
    """A bool or 0/1 (N, H, W) numpy array or torch tensor of the cams' shape -> bool array."""
    if hasattr(mask, "detach"):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"{name} must have the cams' shape {shape}, got {mask.shape}")
    if mask.dtype != np.bool_:
        if not np.isin(mask, (0, 1)).all():
            raise ValueError(f"{name} must be bool or hold only 0 and 1")
        mask = mask.astype(bool)
    return mask


class PxAPMeter:
    """PxAP's two pixel-score histograms, accumulated batch by batch; `value()` is `pxap`'s.
    `counts` (images, foreground pixels, background pixels) counts what the masks held, whatever
    the scores (the histograms drop scores below the lowest threshold), to say why PxAP is
    undefined when it is."""

    def __init__(self, thresholds: Sequence[float] | np.ndarray | None = None) -> None:
        self.thresholds = as_thresholds(thresholds)
        self._edges = np.append(self.thresholds, [1.0, 2.0, 3.0])
        self._table = level_table(self._edges, max(1024, 2 * len(self._edges)))
        self.fg = np.zeros(len(self._edges) - 1, dtype=np.int64)
        self.bg = np.zeros(len(self._edges) - 1, dtype=np.int64)
        self.counts = np.zeros(3, dtype=np.int64)

    def update(self, cams: Any, masks: Any, ignore: Any = None) -> None:
        """Add a batch: `pxap`'s cams, masks and ignore."""
        maps = unit_maps(cams)
        masks = _as_mask(masks, "masks", maps.shape)
        background = ~masks
        if ignore is not None:
            background &= ~_as_mask(ignore, "ignore", maps.shape)
        # np.histogram(m[fg], bins=edges) per image, in one pass without sorting (tested equal)
        fg, bg = level_histograms(
            np.ascontiguousarray(maps), masks, background, self._edges, self._table
        )
        self.fg += fg
        self.bg += bg
        self.counts += [maps.shape[0], int(masks.sum()), int(background.sum())]

    def add(self, other: PxAPMeter) -> None:
        """Add the histograms of another meter of the same thresholds."""
        if not np.array_equal(other.thresholds, self.thresholds):
            raise ValueError("add: the meters have different thresholds")
        self.fg += other.fg
        self.bg += other.bg
        self.counts += other.counts

    def all_reduce(self, reduce_sum: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Sum the histograms over processes with `reduce_sum` (e.g. an all-reduce)."""
        flat = torch.from_numpy(np.concatenate([self.fg, self.bg, self.counts]))
        total = reduce_sum(flat).numpy().astype(np.int64)
        self.fg, self.bg = np.split(total[:-3], 2)
        self.counts = total[-3:]

    def undefined(self) -> Undefined | None:
        """Why PxAP has no value on what was accumulated; None when it has one."""
        images, fg_pixels, bg_pixels = (int(v) for v in self.counts)
        lowest = float(self.thresholds[0])
        if images == 0:
            return Undefined("no image with a mask was scored")
        if fg_pixels == 0 and bg_pixels == 0:
            return Undefined(f"every pixel of the {images} masks is ignored")
        if fg_pixels == 0:
            return Undefined(f"the {images} masks have no foreground pixel: recall is 0/0")
        if bg_pixels == 0:
            return Undefined(
                f"the {images} masks have no background pixel (every pixel is foreground or "
                "ignored): precision is 1 at every threshold, PxAP would be 100 whatever the maps"
            )
        if self.fg.sum() == 0:
            return Undefined(
                f"no foreground pixel scores at or above the lowest threshold {lowest:g}: "
                "recall is 0/0"
            )
        return None

    def value(self) -> float | Undefined:
        """PxAP in %, or Undefined (`undefined()`) without both classes of pixels."""
        undefined = self.undefined()
        if undefined is not None:
            return undefined
        fg_hist, bg_hist = self.fg, self.bg
        tp = fg_hist[::-1].cumsum().astype(np.float64)  # pixels >= 2, >= 1, >= t_{T-1}, ...
        fp = bg_hist[::-1].cumsum().astype(np.float64)
        fn = fg_hist.sum() - tp
        valid = (tp + fp) != 0
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = tp / (tp + fp)
        recall = tp / (tp + fn)
        return float((precision[1:] * np.diff(recall))[valid[1:]].sum() * 100)


def pxap(
    cams: Any,
    masks: Any,
    thresholds: Sequence[float] | np.ndarray | None = None,
    *,
    ignore: Any = None,
) -> float | Undefined:
    """PxAP of wsolevaluation's MaskEvaluator: area under the pixel precision-recall curve, in %.

    cams (N, H, W) in [0, 1]; masks (N, H, W) bool or 0/1, True = GT foreground; ignore (optional,
    keyword only) bool or 0/1 of the same shape, True = neither foreground nor background: their
    OpenImages ignore region, mask value 255, which MaskEvaluator leaves out of both histograms
    (get_mask builds it as the ignore boxes minus the foreground; here too a pixel in both masks
    and ignore counts as foreground). Scores are pooled over the dataset into histograms with
    right edges thresholds + [1, 2, 3] (bins [t_0, t_1), ..., [t_{T-1}, 1), [1, 2), [2, 3]; a
    score below t_0 is dropped, as in theirs), one for foreground and one for background pixels;
    tp and fp are their reversed cumulative sums (pixels at or above each edge), precision =
    tp / (tp + fp), recall = tp / (tp + fn), and the area is sum(precision[1:] * diff(recall))
    over the points where tp + fp > 0. Undefined (with the reason) without a foreground or a
    background pixel, or with every pixel ignored (PxAPMeter.undefined).
    """
    meter = PxAPMeter(thresholds)
    meter.update(cams, masks, ignore)
    return meter.value()
