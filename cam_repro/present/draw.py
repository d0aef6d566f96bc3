"""Figures laid out like the paper's: CAMs of the top-k classes, runs side by side, class-specific
units, threshold sweeps, CAMs with their peaks (the pointing game's point; Section 4.2's text
and VQA figures). Built of cam_repro.localize.overlay's pictures with matplotlib's object
API (no pyplot: no global state, no display needed); no I/O: cam_repro.visualize runs the
networks (through cam_repro.evaluate.views) and writes the files.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cam_repro.localize.overlay import GT_COLOR, PRED_COLOR, draw_boxes, normalize_cam, overlay

PEAK_COLOR = (255, 255, 255)  # the map's peak: a white cross with a black rim


@dataclass
class Panel:
    """One picture in a figure: an (H, W, 3) uint8 image and its caption."""

    image: np.ndarray
    title: str = ""


def cam_panel(
    image: np.ndarray,
    cam: np.ndarray | None,
    boxes: np.ndarray | None = None,
    gt_boxes: np.ndarray | None = None,
    title: str = "",
    mode: str = "max",
    line: int = 1,
    peak: Sequence[float] | None = None,
) -> Panel:
    """The image with a normalised CAM over it (None: the bare image), the CAM's box(es) in red,
    the ground truth in green and the map's `peak` (x, y) as a cross; boxes inclusive, all in
    the image's pixels."""
    out = image if cam is None else overlay(image, normalize_cam(cam, mode))
    if gt_boxes is not None and len(gt_boxes):
        out = draw_boxes(out, gt_boxes, GT_COLOR, line)
    if boxes is not None and len(boxes):
        out = draw_boxes(out, boxes, PRED_COLOR, line)
    if peak is not None:
        out = mark_point(out, peak)
    return Panel(out, title)


def mark_point(image: np.ndarray, point: Sequence[float], color=PEAK_COLOR) -> np.ndarray:
    """A copy of the (H, W, 3) uint8 image with a cross at `point` (x, y; the nearest pixel):
    arms of max(2, min(H, W) // 16) pixels in `color` over a black one-pixel rim."""
    out = np.array(image, dtype=np.uint8)
    h, w = out.shape[:2]
    x, y = (int(np.clip(round(float(v)), 0, n - 1)) for v, n in zip(point, (w, h), strict=True))
    arm = max(2, min(h, w) // 16)
    for rim, paint in ((1, (0, 0, 0)), (0, color)):  # the rim first, the cross over it
        long, short = arm + rim, rim
        out[max(y - short, 0) : y + short + 1, max(x - long, 0) : x + long + 1] = paint
        out[max(y - long, 0) : y + long + 1, max(x - short, 0) : x + short + 1] = paint
    return out


def _figure(width: float, height: float):
    """A matplotlib Figure (imported here: the training loop uses this module without plots)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _show(ax, panel: Panel, fontsize: float = 9) -> None:
    ax.imshow(panel.image, interpolation="nearest")
    ax.set_title(panel.title, fontsize=fontsize)
    ax.set_axis_off()


def cam_figure(top: Sequence[Panel], row: Sequence[Panel], title: str = "", width: float = 10.0):
    """The paper's Figures 3-4 layout: large panels on top (the image, the top-1 CAM with its box),
    a row of small panels below (the top-k classes' CAMs with names and scores)."""
    fig = _figure(width, width * 0.62)
    upper, lower = fig.subfigures(2, 1, height_ratios=[1.6, 1])
    for ax, panel in zip(upper.subplots(1, len(top), squeeze=False)[0], top, strict=True):
        _show(ax, panel, 10)
    for ax, panel in zip(lower.subplots(1, len(row), squeeze=False)[0], row, strict=True):
        _show(ax, panel, 8)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def grid_figure(
    rows: Sequence[Sequence[Panel]],
    column_titles: Sequence[str] = (),
    title: str = "",
    cell: float = 2.2,
):
    """Panels in a grid (rows of equal length), e.g. GAP beside GMP on the same images, or a class's
    top units; column titles above the first row."""
    n_rows, n_cols = len(rows), len(rows[0])
    fig = _figure(cell * n_cols, cell * n_rows + 0.5)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, row in enumerate(rows):
        for c, panel in enumerate(row):
            _show(axes[r][c], panel, 8)
    for c, name in enumerate(column_titles):
        axes[0][c].set_title(f"{name}\n{axes[0][c].get_title()}".strip(), fontsize=9)
    if title:  # wrapped to the figure's width (~11 characters per inch at this size)
        width = max(30, int(cell * n_cols * 11))
        lines = [textwrap.fill(line, width) for line in title.split("\n")]
        fig.suptitle("\n".join(lines), fontsize=11)
    return fig


@dataclass
class Curve:
    """One run's threshold sweep (cam-eval's sweep.csv): accuracies (%) per threshold."""

    label: str
    thresholds: np.ndarray  # (T,)
    gt_known: np.ndarray  # (T,) or (n, T) for n seeds: the paper's box rule, GT-known accuracy
    box_acc: dict[str, np.ndarray]  # IoU level -> (T,) or (n, T): MaxBoxAccV2's BoxAcc


def _band(ax, x: np.ndarray, y: np.ndarray, label: str, style: str = "-", color=None):
    y = np.atleast_2d(y)
    mean = y.mean(axis=0)
    (line,) = ax.plot(x, mean, style, label=label, color=color, linewidth=1.5)
    if len(y) > 1:
        std = y.std(axis=0, ddof=1)
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def sweep_figure(curves: Sequence[Curve], threshold: float = 0.2, level: str = "50"):
    """Left: GT-known localization accuracy of the paper's box rule vs the CAM threshold. Right:
    BoxAcc at IoU `level` (MaxBoxAccV2's curve). Mean over seeds with a +-1 std band."""
    fig = _figure(11, 4.2)
    left, right = fig.subplots(1, 2)
    for curve in curves:
        line = _band(left, curve.thresholds, curve.gt_known, curve.label)
        if level in curve.box_acc:
            _band(right, curve.thresholds, curve.box_acc[level], curve.label, "-", line.get_color())
    left.set_title("paper's box rule: GT-known loc. accuracy (IoU >= 0.5)", fontsize=10)
    right.set_title(f"all components, min-max: BoxAcc (IoU >= 0.{level[:1]})", fontsize=10)
    for ax in (left, right):
        ax.axvline(threshold, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("CAM threshold (fraction of the map's max)")
        ax.set_ylabel("accuracy (%)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    left.legend(fontsize=8, loc="lower left")
    return fig


def figure_png(fig, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (write them with an atomic writer)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
