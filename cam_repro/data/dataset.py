"""A torch Dataset over a DataSplit: (image tensor, label, sample index)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from torch import Tensor
from torch.utils.data import Dataset, default_collate

from cam_repro.data.samples import DataSplit, load_image
from cam_repro.errors import InputFileError

log = logging.getLogger(__name__)


class LocalizationDataset(Dataset):
    """Items are (image, label, index); `data.samples[index]` has the size, boxes and mask.

    With bad_images="skip", an image that cannot be decoded gives None and a logged warning;
    `collate_skipping` drops those from the batch.
    """

    def __init__(
        self, data: DataSplit, transform: Callable[[Any], Tensor], bad_images: str = "error"
    ) -> None:
        self.data = data
        self.transform = transform
        self.bad_images = bad_images
        self.skipped = 0  # in this process (each DataLoader worker counts its own)

    def __len__(self) -> int:
        return len(self.data.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int, int] | None:
        sample = self.data.samples[index]
        try:
            image = load_image(sample.path)
        except InputFileError as err:
            if self.bad_images != "skip":
                raise
            self.skipped += 1
            log.warning("skipped (%d so far in this process): %s", self.skipped, err)
            return None
        return self.transform(image), sample.label, index


def collate_skipping(batch: list[Any]) -> Any:
    """default_collate without the None items of skipped images; None if nothing is left."""
    kept = [item for item in batch if item is not None]
    return default_collate(kept) if kept else None
