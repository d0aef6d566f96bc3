"""Open every image of a split once, in parallel, and list the ones that cannot be read.

Reading a split checks its annotations (and, where sizes come from the images, their headers);
training would meet a corrupt image only when it reaches it. `check_images` meets them all up
front: fully decoded (as training loads them) or, much faster, headers only (which misses a file
whose header is intact but whose pixel data is truncated or garbled).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from cam_repro.data.config import DEFAULT_MAX_IMAGE_PIXELS
from cam_repro.data.samples import DataSplit, file_problem, load_image, read_image_size
from cam_repro.runtime.errors import InputFileError

LISTED = 5  # bad files that describe() names by default


@dataclass
class ImageCheck:
    """What `check_images` found in one split: how many images it opened, and the bad ones."""

    split: str
    checked: int  # images opened, plus those the reader had already left out (bad_images=skip)
    bad: list[tuple[Path, str]]  # (path, reason), the reader's left-out ones first
    decoded: bool = True  # fully decoded; False: headers only

    def describe(self, listed: int | None = LISTED) -> str:
        """A summary line, then the first `listed` bad files (None: all), one per line."""
        how = "decoded" if self.decoded else "headers only"
        lines = [f"{self.split}: {self.checked} images checked ({how}), {len(self.bad)} unreadable"]
        shown = self.bad if listed is None else self.bad[:listed]
        lines += [f"  bad: {path}: {reason}" for path, reason in shown]
        if len(shown) < len(self.bad):
            lines.append(f"  ... and {len(self.bad) - len(shown)} more")
        return "\n".join(lines)


class _Opener(Dataset):
    """Item i: (i, None) if image i opens, else (i, why not)."""

    def __init__(self, paths: list[Path], decode: bool, max_pixels: int | None) -> None:
        self.paths = paths
        self.decode = decode
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, str | None]:
        path = self.paths[index]
        try:
            if self.decode:
                load_image(path, self.max_pixels)
            else:
                read_image_size(path, self.max_pixels)
        except InputFileError as err:
            return index, file_problem(err, path)
        return index, None


def _as_is(item: Any) -> Any:
    return item


def check_images(
    data: DataSplit,
    decode: bool = True,
    workers: int = 0,
    progress: bool = False,
    max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
) -> ImageCheck:
    """Open every image of `data` once: fully decoded (`decode`) or the header only, in
    `workers` processes (0: this one), with a progress bar if `progress`. An image that is
    missing, corrupt or has more than `max_pixels` pixels (None: no limit) is bad; the images the
    reader already left out (data.skipped) count as bad too. Bad files come in sample order."""
    paths = [s.path for s in data.samples]
    loader = DataLoader(
        _Opener(paths, decode, max_pixels),
        batch_size=None,
        shuffle=False,
        num_workers=min(workers, len(paths)),  # no idle processes for a small split
        collate_fn=_as_is,
    )
    bad = list(data.skipped)
    what = "decoding" if decode else "reading headers"
    for index, reason in tqdm(
        loader, desc=f"{data.split}: {what}", total=len(paths), leave=False, disable=not progress
    ):
        if reason is not None:
            bad.append((paths[index], reason))
    return ImageCheck(data.split, len(paths) + len(data.skipped), bad, decoded=decode)
