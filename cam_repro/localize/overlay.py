"""Class activation maps as pictures: jet colouring, overlays on the image, box outlines.

Pure functions on arrays (numpy + PIL, no I/O): the training loop's TensorBoard overlays and the
figures of cam_repro.present.draw are made of these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from cam_repro.localize.boxes import normalize_maps

if TYPE_CHECKING:
    from torch import Tensor

GT_COLOR = (0, 255, 0)  # ground truth: green, as in the paper's figures
PRED_COLOR = (255, 0, 0)  # the CAM's box: red

# MATLAB's jet: dark blue, blue, cyan, yellow, red, dark red at evenly spaced eighths.
_JET_X = np.array([0.0, 1 / 8, 3 / 8, 5 / 8, 7 / 8, 1.0])
_JET_RGB = np.array(
    [[0, 0, 0.5], [0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0], [0.5, 0, 0]]
)  # (6, 3)


def colorize(cam: np.ndarray) -> np.ndarray:
    """(H, W) map in [0, 1] -> (H, W, 3) uint8 jet colours; outside values clipped, NaN -> 0."""
    x = np.clip(np.nan_to_num(np.asarray(cam, dtype=np.float64), nan=0.0), 0.0, 1.0)
    rgb = np.stack([np.interp(x, _JET_X, _JET_RGB[:, c]) for c in range(3)], axis=-1)
    return np.round(rgb * 255).astype(np.uint8)


def normalize_cam(cam: np.ndarray, mode: str = "max") -> np.ndarray:
    """(H, W) map -> [0, 1]: "max" divides by the max and clips negatives, "minmax" rescales.

    A map that cannot be scaled (max not positive, flat, or any NaN/inf) becomes all zeros.
    The same normalisation as the box rule's (cam_repro.boxes.normalize_maps).
    """
    cam = np.asarray(cam, dtype=np.float64)
    if cam.size == 0:
        return np.zeros_like(cam)
    scaled, _ = normalize_maps(cam[None], mode)
    return np.clip(scaled[0], 0.0, 1.0)


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend `(1 - alpha) * image + alpha * colorize(cam)`, the cam resized bilinearly to the image.

    image (H, W, 3) uint8, cam (h, w) in [0, 1] -> (H, W, 3) uint8.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    height, width = image.shape[:2]
    small = Image.fromarray(np.asarray(cam, dtype=np.float32))  # mode "F"
    cam_full = np.asarray(small.resize((width, height), Image.BILINEAR))  # (H, W)
    blend = (1 - alpha) * image.astype(np.float64) + alpha * colorize(cam_full)
    return np.clip(np.round(blend), 0, 255).astype(np.uint8)


def draw_boxes(
    image: np.ndarray,
    boxes: np.ndarray | Sequence[Sequence[int]],
    color: tuple[int, int, int] = (0, 255, 0),
    width: int = 1,
) -> np.ndarray:
    """A copy of the (H, W, 3) uint8 image with the (k, 4) inclusive boxes outlined `width` inwards.

    Drawn with numpy, not ImageDraw.rectangle: Pillow draws a one-pixel-tall box over two rows.
    """
    out = np.array(image, dtype=np.uint8)
    img_h, img_w = out.shape[:2]
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.int64).reshape(-1, 4).tolist():
        ys = np.arange(max(y0, 0), min(y1, img_h - 1) + 1)
        xs = np.arange(max(x0, 0), min(x1, img_w - 1) + 1)
        if ys.size == 0 or xs.size == 0:
            continue  # box entirely outside the image
        # distance of each pixel to the nearest box edge; the outline is where it is < width
        edge = np.minimum.outer(np.minimum(ys - y0, y1 - ys), np.minimum(xs - x0, x1 - xs))
        out[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1][edge < width] = color
    return out


def denormalize(image: Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """A normalised float (3, H, W) tensor -> the (H, W, 3) uint8 image it came from."""
    x = image.detach().cpu().numpy().astype(np.float64)  # (3, H, W)
    x = x * np.asarray(std, dtype=np.float64)[:, None, None]
    x = x + np.asarray(mean, dtype=np.float64)[:, None, None]
    return np.round(np.clip(x * 255, 0, 255)).astype(np.uint8).transpose(1, 2, 0)  # (H, W, 3)
