"""A torch Dataset over a DataSplit: (image tensor, label, sample index)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, default_collate
from torchvision.transforms.v2 import functional as TF

from cam_repro.data.samples import DataSplit, load_image
from cam_repro.runtime.errors import ConfigError, InputFileError

log = logging.getLogger(__name__)

# data.cache=memory is for small datasets (the embedded one is ~40 MB decoded); past this, stop.
MAX_CACHE_BYTES = 8 * 2**30


class LocalizationDataset(Dataset):
    """Items are (image, label, index); `data.samples[index]` has the size, boxes and mask.

    An item may be asked for as `dataset[index]` or `dataset[(index, seed)]`: with a seed, the
    random augmentation of that image draws from a generator seeded with it, so what a sample
    looks like depends only on the seed, not on which worker process loads it or in what order.
    `cache=True` decodes every image once, up front, and keeps it in RAM as a uint8 tensor.
    With bad_images="skip", an image that cannot be decoded gives None and a logged warning;
    `collate_skipping` drops those from the batch.
    """

    def __init__(
        self,
        data: DataSplit,
        transform: Callable[[Any], Tensor],
        bad_images: str = "error",
        cache: bool = False,
    ) -> None:
        self.data = data
        self.transform = transform
        self.bad_images = bad_images
        self.skipped = 0  # in this process (each DataLoader worker counts its own)
        self.cached: list[Tensor | None] | None = self._decode_all() if cache else None

    def __len__(self) -> int:
        return len(self.data.samples)

    def _load(self, index: int) -> Any:
        try:
            return load_image(self.data.samples[index].path)
        except InputFileError as err:
            if self.bad_images != "skip":
                raise
            self.skipped += 1
            log.warning("skipped (%d so far in this process): %s", self.skipped, err)
            return None

    def _decode_all(self) -> list[Tensor | None]:
        images: list[Tensor | None] = []
        total = 0
        for index in range(len(self)):
            image = self._load(index)
            tensor = None if image is None else TF.pil_to_tensor(image)  # uint8 (3, H, W)
            total += 0 if tensor is None else tensor.numel()
            if total > MAX_CACHE_BYTES:
                raise ConfigError(
                    f"data.cache=memory: {self.data.root} {self.data.split} needs more than "
                    f"{MAX_CACHE_BYTES // 2**30} GB decoded; use data.cache=none for large datasets"
                )
            images.append(tensor)
        log.info(
            "%s: cached %d decoded images (%.1f MB)", self.data.split, len(images), total / 1e6
        )
        return images

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[Tensor, int, int] | None:
        index, seed = item if isinstance(item, tuple) else (item, None)
        image = self._load(index) if self.cached is None else self.cached[index]
        if image is None:
            return None
        if seed is not None:
            # The default generator: torchvision's random transforms draw from it. Seeding it
            # costs ~1 us (torch.manual_seed, which also seeds every GPU, costs ~100 us).
            torch.default_generator.manual_seed(seed)
        return self.transform(image), self.data.samples[index].label, index


def collate_skipping(batch: list[Any]) -> Any:
    """default_collate without the None items of skipped images; None if nothing is left."""
    kept = [item for item in batch if item is not None]
    return default_collate(kept) if kept else None
