"""CUB-200-2011: ROOT/{images.txt, image_class_labels.txt, bounding_boxes.txt,
train_test_split.txt, classes.txt, images/<class folder>/*.jpg} (ROOT may also be the folder that
holds CUB_200_2011/). The `val` split is CUB's test set, as in the WSOL literature.

Boxes: `bounding_boxes.txt` gives `x y width height` in 0-based pixels; here x0 = x,
x1 = x + width - 1 (0-based inclusive, like every box this package hands out), checked against the
image header's size; `inf`, `nan` or a word is an error (`annotations.parse_number`).

What would silently change a result is refused with one line naming the file: an id twice in a
table, an is_training_image other than 0 or 1 (it would drop the image from both splits), an
image path under two ids of different splits (a test on training images), a class id that
classes.txt lacks (a phantom class), a split with no images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cam_repro.data.annotations import check_box, parse_number, read_table
from cam_repro.data.config import DataConfig
from cam_repro.data.samples import DataSplit, Sample, refuse_overlap, size_or_skip
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
    given = {image_id: _class_id(v[0], root) for image_id, v in labels.items()}
    if class_table:
        unknown = sorted(i for i, c in given.items() if c not in class_table)
        if unknown:
            raise InputFileError(
                f"{root / 'image_class_labels.txt'}: image {unknown[0]} has class id "
                f"{given[unknown[0]]}, which {class_file} does not name"
            )
    class_ids = sorted(set(given.values()) | set(class_table))
    classes = [class_table[c][0] if c in class_table else str(c) for c in class_ids]
    names = [class_name(c) for c in classes]
    index = {c: i for i, c in enumerate(class_ids)}
    _check_split_table(root, images, labels, is_train)
    want = "1" if split == "train" else "0"
    box_file = root / "bounding_boxes.txt"
    samples, skipped = [], []
    for image_id in sorted(images):
        if is_train[image_id][0] != want:
            continue
        path = root / "images" / images[image_id][0]
        size = size_or_skip(path, cfg.max_image_pixels, cfg.bad_images, skipped)
        if size is None:
            continue
        if image_id not in boxes:
            raise InputFileError(f"{box_file}: no box for image {image_id}")
        where = f"{box_file} (image {image_id})"
        x, y, w, h = (
            parse_number(v, where, name, integer=False)
            for v, name in zip(boxes[image_id], ("x", "y", "width", "height"), strict=True)
        )
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
    if not samples:
        kind = "is_training_image 1" if split == "train" else "is_training_image 0 (the test set)"
        raise InputFileError(
            f"{root / 'train_test_split.txt'}: no image of split {split!r} ({kind})"
            + (f"; {len(skipped)} unreadable left out" if skipped else "")
        )
    source = "CUB-200-2011 text files (boxes x y w h, 0-based -> x1 = x + w - 1)"
    return DataSplit(split, root, classes, names, samples, source, skipped)


def _check_split_table(
    root: Path, images: dict[int, list[str]], labels: dict, is_train: dict[int, list[str]]
) -> None:
    """Every image has a label and a split, 0 or 1, and no image file is in both splits."""
    split_file = root / "train_test_split.txt"
    for image_id in sorted(images):
        for table, file in ((labels, "image_class_labels.txt"), (is_train, "train_test_split.txt")):
            if image_id not in table:
                raise InputFileError(f"{root / file}: no line for image {image_id}")
        if is_train[image_id][0] not in ("0", "1"):
            raise InputFileError(
                f"{split_file} (image {image_id}): is_training_image "
                f"{is_train[image_id][0]!r} is neither 1 (train) nor 0 (test)"
            )
    in_split: dict[str, dict[str, str]] = {"0": {}, "1": {}}
    for image_id in sorted(images):
        where = f"{root / 'images.txt'} (image {image_id})"
        path = images[image_id][0]
        listed = in_split[is_train[image_id][0]]
        if path in listed:  # it would count twice
            raise InputFileError(f"{where}: {path} is listed twice, also as {listed[path]}")
        listed[path] = where
    refuse_overlap(in_split["0"], in_split["1"], f"{split_file}")


def _class_id(text: str, root: Path) -> int:
    if not text.isdigit():
        raise InputFileError(
            f"{root / 'image_class_labels.txt'}: class id {text!r} is not an integer"
        )
    return int(text)
