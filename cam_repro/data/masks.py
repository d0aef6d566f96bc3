"""Foreground and ignore masks of samples, resized to the evaluated frame (PxAP's inputs).

Two resize rules, both nearest-neighbour:
- "pil": PIL's NEAREST (the source pixel under the target pixel's centre), foreground where the
  grey value is > 127: our default, for any mask file.
- "opencv": OpenCV's INTER_NEAREST (source index floor(x * src / dst)), foreground where the
  grey value is > 0: what wsolevaluation's get_mask does (cv2.resize(..., INTER_NEAREST),
  `mask > 0.5` on the uint8 image), for exact parity with its PxAP.

A sample's foreground is the union of its mask files (one per instance in OpenImages30k); its
ignore region is the ignore file's nonzero pixels minus that foreground (wsolevaluation's rule:
ignore boxes \\ foreground).

A mask and its image are each resized to the square frame, so they line up only if the mask
covers the image's view: its size must be the image's (from its header), or a scaled copy of
it, the same aspect ratio up to one mask pixel. Another shape (another image's mask, a crop, a
rotation) is an error naming both sizes, never a foreground silently stretched over other pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cam_repro.data.samples import Sample, read_image_size
from cam_repro.runtime.errors import InputFileError

MASK_RESIZE = ("pil", "opencv")


def nearest_indices(src: int, dst: int) -> np.ndarray:
    """OpenCV's INTER_NEAREST source indices for a dst-long axis of a src-long one:
    min(floor(x * (1 / (dst / src))), src - 1), in double precision as OpenCV computes them."""
    inv = 1.0 / (dst / src)
    return np.minimum(np.floor(np.arange(dst, dtype=np.float64) * inv).astype(np.int64), src - 1)


def _read_grey(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"))
    except (OSError, ValueError) as err:
        raise InputFileError(f"{path}: unreadable mask ({err})") from None


def check_mask_view(mask: tuple[int, int], image: tuple[int, int], path: Path, of: Path) -> None:
    """A mask of (width, height) `mask` must cover the view of an image of size `image`: the
    same aspect ratio, up to one mask pixel (its height scaled to the image's width)."""
    (mw, mh), (iw, ih) = mask, image
    if abs(mh * iw / mw - ih) * mw / iw > 1.0:  # the difference, in mask pixels
        raise InputFileError(
            f"{path}: a {mw}x{mh} mask for the {iw}x{ih} image {of} (another aspect ratio): both "
            "are resized to the evaluated frame, so its foreground would cover other pixels; use "
            "the mask made for this image, at its size or scaled with it"
        )


def _resized(path: Path, size: int, rule: str, image: tuple[int, int], of: Path) -> np.ndarray:
    """One mask file of the image `of` (its (width, height) `image`) -> (size, size) bool."""
    grey = _read_grey(path)
    check_mask_view((grey.shape[1], grey.shape[0]), image, path, of)
    if rule == "pil":
        return np.asarray(Image.fromarray(grey).resize((size, size), Image.NEAREST)) > 127
    ys = nearest_indices(grey.shape[0], size)
    xs = nearest_indices(grey.shape[1], size)
    return grey[np.ix_(ys, xs)] > 0


def read_masks(
    samples: Sequence[Sample], size: int, rule: str = "pil"
) -> tuple[np.ndarray, np.ndarray | None]:
    """The samples' foreground (n, size, size) bool, and their ignore regions (n, size, size)
    bool, or None when no sample has an ignore file. Every sample must have a mask."""
    if rule not in MASK_RESIZE:
        raise ValueError(f"rule must be one of {MASK_RESIZE}, got {rule!r}")
    fg = np.zeros((len(samples), size, size), dtype=bool)
    ignore = None
    for i, sample in enumerate(samples):
        if not sample.masks:
            raise InputFileError(f"{sample.path}: no foreground mask")
        # (width, height) from the header only: nothing is decoded, so no pixel limit applies
        image = sample.size or read_image_size(sample.path, max_pixels=None)
        for path in sample.masks:
            fg[i] |= _resized(path, size, rule, image, sample.path)
        if sample.ignore_mask is not None:
            if ignore is None:
                ignore = np.zeros_like(fg)
            ignore[i] = _resized(sample.ignore_mask, size, rule, image, sample.path) & ~fg[i]
    return fg, ignore
