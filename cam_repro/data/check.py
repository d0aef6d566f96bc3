"""What `cam-data` says about a split: its counts, and every image opened once in parallel.

Reading a split checks its annotations (and, where sizes come from the images, their headers);
training would meet a corrupt image only when it reaches it. `check_images` meets them all up
front: fully decoded (as training loads them) or, much faster, headers only (which misses a file
whose header is intact but whose pixel data is truncated or garbled).

Counts are of distinct image files: a sample is one question about an image in VQA (several
share the image), and a metadata list may name a file twice; `split_counts` counts each image
once and the questions apart, and `shared_images` names images that two splits both hold.
"""

from __future__ import annotations

from collections.abc import Mapping
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


@dataclass(frozen=True)
class SplitCounts:
    """What one split holds, each thing counted once."""

    split: str
    images: int  # distinct image files
    entries: int  # samples: what an epoch iterates (VQA: questions; else images, repeats included)
    questions: int | None  # VQA: questions asked; None: not a VQA split
    classes: int  # the label vocabulary (VQA: the answers)
    labels_present: int  # labels that at least one sample has
    boxes: int  # boxes of distinct images (VQA: the questions' target boxes)
    multi_box: int  # images (VQA: questions) with more than one box
    masks: int  # distinct images with foreground masks
    skipped: int  # distinct unreadable files the reader left out


def split_counts(data: DataSplit) -> SplitCounts:
    """Images counted once each, whatever number of samples names them; questions apart (VQA,
    whose boxes belong to the questions: the object each answer depends on)."""
    vqa = data.questions is not None
    first: dict[Path, Any] = {}
    for sample in data.samples:
        first.setdefault(sample.path, sample)
    boxed = data.samples if vqa else list(first.values())
    n_boxes = [len(s.boxes) for s in boxed]
    return SplitCounts(
        split=data.split,
        images=len(first),
        entries=len(data.samples),
        questions=len(data.samples) if vqa else None,
        classes=len(data.classes),
        labels_present=len({s.label for s in data.samples}),
        boxes=sum(n_boxes),
        multi_box=sum(n > 1 for n in n_boxes),
        masks=sum(bool(s.masks) for s in first.values()),
        skipped=len({path for path, _ in data.skipped}),
    )


def describe_split(data: DataSplit) -> str:
    """A few lines on what the split holds, every count from `split_counts`."""
    n = split_counts(data)
    held = f" ({n.labels_present} of them given here)" if n.labels_present < n.classes else ""
    if n.questions is not None:
        lines = [
            f"{n.split}: {n.images} images, {n.questions} questions, {n.classes} answers{held}"
        ]
        if n.boxes:
            lines.append(f"  target boxes: {n.boxes} ({n.multi_box} questions with more than one)")
    else:
        lines = [f"{n.split}: {n.images} images of {n.classes} classes{held}"]
        if n.entries > n.images:
            lines.append(
                f"  listed more than once: {n.entries - n.images} repeated entries "
                f"({n.entries} in all; every epoch sees those images more often)"
            )
        if n.boxes:
            lines.append(f"  boxes: {n.boxes} ({n.multi_box} images with more than one)")
    sizes = [s.size for s in data.samples if s.size is not None]
    if sizes:
        w, h = zip(*sizes, strict=True)
        lines.append(f"  image sizes: width {min(w)}-{max(w)}, height {min(h)}-{max(h)}")
    if n.masks:
        lines.append(f"  foreground masks: {n.masks} images")
    if n.skipped:
        lines.append(f"  skipped unreadable images: {n.skipped}")
    lines.append(f"  source: {data.source}")
    return "\n".join(lines)


def shared_images(splits: Mapping[str, DataSplit]) -> list[str]:
    """A line for each pair of splits that hold the same image files (a held-out split that
    shares images with training scores what the network has seen)."""
    files = {name: {s.path for s in data.samples} for name, data in splits.items()}
    names = list(files)
    lines = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            both = files[a] & files[b]
            if both:
                example = min(both)
                lines.append(f"{len(both)} images are in both {a} and {b} (e.g. {example})")
    return lines


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
    reader already left out (data.skipped) count as bad too. Bad files come in sample order;
    a file that several samples name (VQA's questions about one image) is opened once."""
    paths = list(dict.fromkeys(s.path for s in data.samples))
    loader = DataLoader(
        _Opener(paths, decode, max_pixels),
        batch_size=None,
        shuffle=False,
        num_workers=min(workers, len(paths)),  # no idle processes for a small split
        collate_fn=_as_is,
    )
    left_out: dict[Path, str] = {}  # the reader's, once per file
    for path, why in data.skipped:
        left_out.setdefault(path, why)
    bad = list(left_out.items())
    what = "decoding" if decode else "reading headers"
    for index, reason in tqdm(
        loader, desc=f"{data.split}: {what}", total=len(paths), leave=False, disable=not progress
    ):
        if reason is not None:
            bad.append((paths[index], reason))
    return ImageCheck(data.split, len(paths) + len(left_out), bad, decoded=decode)
