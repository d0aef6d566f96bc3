"""CUB-200-2011: ROOT/{images.txt, image_class_labels.txt, bounding_boxes.txt,
train_test_split.txt, classes.txt, images/<class folder>/*.jpg} (ROOT may also be the folder that
holds CUB_200_2011/). The `val` split is CUB's test set, as in the WSOL literature.

Boxes: `bounding_boxes.txt` gives `x y width height` in 0-based pixels; here x0 = x,
x1 = x + width - 1 (0-based inclusive, like every box this package hands out).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cam_repro.data.annotations import check_box, read_table
from cam_repro.data.config import DataConfig
from cam_repro.data.samples import DataSplit, Sample, size_or_skip
from cam_repro.runtime.errors import ConfigError, InputFileError, MissingFileError


def class_name(folder: str) -> str:
    """A CUB class folder's readable name: '001.Black_footed_Albatross' -> 'Black footed
    Albatross'."""
    return folder.split(".", 1)[-1].replace("_", " ")


def _cub_root(root: Path) -> Path:
    if not root.is_dir():
        raise MissingFileError(f"data.root {root} does not exist or is not a folder")
    if not (root / "images.txt").is_file() and (root / "CUB_200_2011" / "images.txt").is_file():
        return root / "CUB_200_2011"
    return root


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputFileError(f"{where}: {text!r} is not a number") from None


def read_cub(cfg: DataConfig, split: str) -> DataSplit:
    """The `train` or `val` (= test) split of CUB-200-2011 at `cfg.root`."""
    if split not in ("train", "val"):
        raise ConfigError(f"unknown split {split!r}; CUB has 'train' and 'val' (its test set)")
    root = _cub_root(Path(cfg.root).expanduser())
    images = read_table(root / "images.txt", 1, "image path")
    labels = read_table(root / "image_class_labels.txt", 1, "class id")
    boxes = read_table(root / "bounding_boxes.txt", 4, "x y width height")
    is_train = read_table(root / "train_test_split.txt", 1, "is_training_image (0/1)")
    class_file = root / "classes.txt"
    class_table = read_table(class_file, 1, "class name") if class_file.is_file() else {}
    class_ids = sorted({_class_id(v[0], root) for v in labels.values()} | set(class_table))
    classes = [class_table[c][0] if c in class_table else str(c) for c in class_ids]
    names = [class_name(c) for c in classes]
    index = {c: i for i, c in enumerate(class_ids)}
    want = "1" if split == "train" else "0"
    box_file = root / "bounding_boxes.txt"
    samples, skipped = [], []
    for image_id in sorted(images):
        for table, file in ((labels, "image_class_labels.txt"), (is_train, "train_test_split.txt")):
            if image_id not in table:
                raise InputFileError(f"{root / file}: no line for image {image_id}")
        if is_train[image_id][0] != want:
            continue
        path = root / "images" / images[image_id][0]
        size = size_or_skip(path, cfg.max_image_pixels, cfg.bad_images, skipped)
        if size is None:
            continue
        if image_id not in boxes:
            raise InputFileError(f"{box_file}: no box for image {image_id}")
        x, y, w, h = (_number(v, f"{box_file} (image {image_id})") for v in boxes[image_id])
        box = (round(x), round(y), round(x + w) - 1, round(y + h) - 1)
        box = check_box(box, size, f"{box_file} (image {image_id})")
        label = index[_class_id(labels[image_id][0], root)]
        samples.append(
            Sample(
                path,
                label,
                size,
                np.array([box], dtype=np.int64),
                np.array([label], dtype=np.int64),
            )
        )
    source = "CUB-200-2011 text files (boxes x y w h, 0-based -> x1 = x + w - 1)"
    return DataSplit(split, root, classes, names, samples, source, skipped)


def _class_id(text: str, root: Path) -> int:
    if not text.isdigit():
        raise InputFileError(
            f"{root / 'image_class_labels.txt'}: class id {text!r} is not an integer"
        )
    return int(text)
