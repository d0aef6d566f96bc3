"""A torch Dataset over a DataSplit: (image tensor, label, sample index)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, default_collate

from cam_repro.data.samples import DEFAULT_MAX_IMAGE_PIXELS, DataSplit, file_problem, read_image
from cam_repro.runtime.errors import ConfigError, InputFileError

log = logging.getLogger(__name__)

# data.cache=memory is for small datasets (the embedded one is ~40 MB decoded); past this, stop.
MAX_CACHE_BYTES = 8 * 2**30


@dataclass(frozen=True)
class Skipped:
    """What the dataset gives for an image it could not decode (data.bad_images=skip)."""

    index: int
    reason: str


class LocalizationDataset(Dataset):
    """Items are (image, label, index); `data.samples[index]` has the size, boxes and mask.

    An item may be asked for as `dataset[index]` or `dataset[(index, seed)]`: with a seed, the
    random augmentation of that image draws from a generator seeded with it, so what a sample
    looks like depends only on the seed, not on which worker process loads it or in what order.
    `cache=True` decodes every image once, up front, and keeps it in RAM as a uint8 tensor.
    `crops` (N, 4), 0-based inclusive boxes of the original images, crops each image to its box
    before the transform (cam-features: the CAM box or the ground-truth box, Section 4.1).
    With bad_images="skip", an image that cannot be decoded gives a `Skipped` item;
    `collate_skipping` drops those from the batch and reports their indices with it, so the main
    process counts each file once (`SkipLog`), whichever worker met it and however often.
    """

    def __init__(
        self,
        data: DataSplit,
        transform: Callable[[Any], Tensor],
        bad_images: str = "error",
        cache: bool = False,
        max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
        crops: np.ndarray | None = None,
    ) -> None:
        if crops is not None and crops.shape != (len(data.samples), 4):
            raise ValueError(f"crops must be ({len(data.samples)}, 4), got {crops.shape}")
        self.data = data
        self.crops = crops
        self.transform = transform
        self.bad_images = bad_images
        self.max_pixels = max_pixels
        self.cached: list[Tensor | Skipped] | None = self._decode_all() if cache else None

    def __len__(self) -> int:
        return len(self.data.samples)

    def _load(self, index: int) -> Tensor | Skipped:
        """Sample `index`'s image, uint8 (3, H, W) (`read_image`), or a `Skipped` if unreadable
        and bad_images="skip"."""
        path = self.data.samples[index].path
        try:
            return read_image(path, self.max_pixels)
        except InputFileError as err:
            if self.bad_images != "skip":
                raise
            return Skipped(index, file_problem(err, path))

    def _decode_all(self) -> list[Tensor | Skipped]:
        """Every sample's image, decoded once per file (VQA: several questions share one)."""
        images: list[Tensor | Skipped] = []
        decoded: dict[Path, Tensor] = {}
        total = 0
        for index in range(len(self)):
            path = self.data.samples[index].path
            if path in decoded:
                images.append(decoded[path])
                continue
            image = self._load(index)  # (3, H, W)
            if not isinstance(image, Skipped):
                decoded[path] = image
                total += image.numel()
            if total > MAX_CACHE_BYTES:
                raise ConfigError(
                    f"data.cache=memory: {self.data.root} {self.data.split} needs more than "
                    f"{MAX_CACHE_BYTES // 2**30} GB decoded; use data.cache=none for large datasets"
                )
            images.append(image)
        log.info(
            "%s: cached %d decoded images (%.1f MB)", self.data.split, len(decoded), total / 1e6
        )
        return images

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[Tensor, int, int] | Skipped:
        index, seed = item if isinstance(item, tuple) else (item, None)
        image = self._load(index) if self.cached is None else self.cached[index]
        if isinstance(image, Skipped):
            return image
        if self.crops is not None:
            image = crop_image(image, self.crops[index])
        if seed is not None:
            # The default generator: torchvision's random transforms draw from it. Seeding it
            # costs ~1 us (torch.manual_seed, which also seeds every GPU, costs ~100 us).
            torch.default_generator.manual_seed(seed)
        return self.transform(image), self.data.samples[index].label, index


def crop_image(image: Image.Image | Tensor, box: np.ndarray) -> Image.Image | Tensor:
    """A PIL image or (3, H, W) tensor cut to a 0-based inclusive box (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    if isinstance(image, Tensor):
        return image[:, y0 : y1 + 1, x0 : x1 + 1]
    return image.crop((x0, y0, x1 + 1, y1 + 1))


def collate_skipping(batch: list[Any]) -> tuple[Any, Any, Any, list[tuple[int, str]]]:
    """(images, labels, indices, skipped): default_collate of the decoded items, and the
    (index, reason) of each skipped one; images, labels and indices are None if none is left."""
    kept = [item for item in batch if not isinstance(item, Skipped)]
    skipped = [(item.index, item.reason) for item in batch if isinstance(item, Skipped)]
    if not kept:
        return None, None, None, skipped
    images, labels, indices = default_collate(kept)
    return images, labels, indices, skipped


class SkipLog:
    """The images of a split left out as unreadable, each file once: those its reader left out
    (`DataSplit.skipped`) and those that failed to decode during loading (batches' `skipped`).
    Logs a warning the first time each file is met."""

    def __init__(self, data: DataSplit) -> None:
        self.data = data
        self.at_load: dict[int, str] = {}  # sample index -> reason

    def add(self, skipped: Iterable[tuple[int, str]]) -> None:
        for index, reason in skipped:
            if index not in self.at_load:
                self.at_load[index] = reason
                path = self.data.samples[index].path
                log.warning("%s: skipped unreadable image %s: %s", self.data.split, path, reason)

    def merge(self, parts: Iterable[dict[int, str]]) -> None:
        """Add other processes' `at_load` (torchrun), without logging again."""
        for part in parts:
            for index, reason in part.items():
                self.at_load.setdefault(index, reason)

    @property
    def count(self) -> int:
        """Unreadable images of the split: left out by the reader or while loading."""
        return len(self.data.skipped) + len(self.at_load)

    @property
    def used(self) -> int:
        """The split's images that were read (or can be: not yet met unreadable)."""
        return len(self.data.samples) - len(self.at_load)
