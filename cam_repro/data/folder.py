"""Any image folder (`data.source=folder`), in either of two layouts:

class folders:  ROOT/train/<class>/*.jpg, ROOT/val/<class>/*.jpg (or ROOT/test/<class>/*.jpg)
split files:    ROOT/<image_dir>/<class path>/*.jpg, and data.train_list, data.val_list: text files
                with one image path per line, relative to data.image_dir (null: ROOT), e.g.
                `airport_inside/airport_inside_0001.jpg` or `/a/abbey/sun_aaa.jpg` (SUN397, MIT
                Indoor67 and Caltech ship such lists; a leading `/` is stripped)

The `val` split is `val/` when it exists, else `test/` (the split name `test` means the same).
Classes are the sorted class folder names of `train/` (torchvision's ImageFolder order: hidden
folders ignored; as ImageFolder, images in sub-folders of a class folder count, symbolic links are
followed), or the sorted parent paths (`a/abbey`) of the train list's lines, so that both splits
share one label order. Class names are the class names themselves. Blank lines and `#` lines of a
list are skipped; a listed file that is missing is an error (`data.bad_images=skip`: left out and
counted, as an unreadable image).

Boxes are optional; localization is evaluated on the images that have some. Every box leaving this
module is **0-based inclusive pixel coordinates of the original image** (x0, y0, x1, y1), its
label the image's own (box_labels = label):

- `data.boxes`, a CSV (relative to ROOT): header `image,x0,y0,x1,y1`, one row per box (several rows
  per image allowed), coordinates **0-based inclusive** pixels of the original image, used as they
  are. `image` is relative to the split's image root: data.image_dir for split files; the split
  folder for class folders (`<class>/x.jpg`), or ROOT with the split folder (`val/<class>/x.jpg`),
  which a name found in both `train/` and `val/` must use. Rows for the other split's images are
  ignored; a row for a file in neither is an error.
- Otherwise PASCAL VOC / ILSVRC XML files beside the images (`x.jpg` -> `x.xml`), 1-based inclusive:
  x0 = xmin - 1, x1 = xmax - 1 (`annotations.read_voc_xml`). Every `<object>` is a box of the
  image's class: in folder data the XML's `<name>`s are not used as labels.

A sample with boxes has its size: the image header's, which an XML's `<size>` must match (an error
otherwise: the boxes would be in another frame; `samples.checked_size`); one without has no boxes
and size None. The split files and the CSV are read by `runtime.files.read_lines`/`read_text`
(a byte-order mark, CRLF: read alike), their numbers by `annotations.parse_number`. An image of
the val list that is also in the train list is an error (a test on training images).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from cam_repro.data.annotations import check_box, parse_number, read_csv_rows, read_voc_xml
from cam_repro.data.config import DataConfig
from cam_repro.data.samples import (
    IMAGE_EXTENSIONS,
    DataSplit,
    Sample,
    checked_size,
    file_problem,
    is_image_file,
    read_image_size,
    refuse_overlap,
)
from cam_repro.runtime.errors import ConfigError, InputFileError, MissingFileError
from cam_repro.runtime.files import read_lines

_XML_CONVERSION = "1-based inclusive -> 0-based inclusive, x0 = xmin - 1"
_CSV_HEADER = ["image", "x0", "y0", "x1", "y1"]
_EXTENSIONS = ", ".join(IMAGE_EXTENSIONS)

# The boxes CSV's rows of one image: (line number, box 0-based inclusive), not yet checked against
# the image's size.
BoxRows = list[tuple[int, tuple[int, int, int, int]]]


@dataclass
class Listed:
    """An image that a split names."""

    path: Path
    keys: tuple[str, ...]  # the posix paths by which the boxes CSV may name it
    cls: str
    where: str  # the list file and line, or the class folder, for messages


@dataclass
class Found:
    """What a split holds, before its images are looked at."""

    classes: list[str]
    items: list[Listed]
    image_root: Path  # the split folder, or data.image_dir
    roots: list[Path]  # where a boxes CSV row may point (both splits)
    other: Path | None  # class folders: the other split's folder (a CSV name found in both is
    # ambiguous)
    source: str


def read_folder(cfg: DataConfig, split: str) -> DataSplit:
    """The `train` or `val` (= `test`) split of the image folder at `cfg.root`."""
    if split not in ("train", "val", "test"):
        raise ConfigError(f"unknown split {split!r}; folder data has 'train' and 'val' (or 'test')")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise MissingFileError(f"data.root {root} does not exist or is not a folder")
    if cfg.train_list is not None or cfg.val_list is not None:
        found = _from_lists(cfg, root, split)
    else:
        found = _from_class_folders(root, split)
    index = {c: i for i, c in enumerate(found.classes)}
    samples, skipped = [], []
    for item in found.items:
        if item.path.is_file():
            samples.append((item, Sample(item.path, index[item.cls])))
        elif cfg.bad_images == "skip":
            skipped.append((item.path, f"image file is missing (listed in {item.where})"))
        else:
            raise MissingFileError(f"{item.where}: {item.path}: image file is missing")
    if not samples:
        raise InputFileError(f"{found.image_root}: no images for split {split!r}")
    rows, box_file = None, None
    if cfg.boxes is not None:
        box_file = _under(root, cfg.boxes)
        rows = _read_box_csv(box_file)
        _check_rows(rows, box_file, found)
    out = []
    for item, sample in samples:
        try:
            if rows is not None:
                given = [row for key in item.keys for row in rows.get(key, [])]
                out.append(_csv_boxes(sample, given, box_file, cfg.max_image_pixels))
            else:
                out.append(_xml_boxes(sample, cfg.max_image_pixels))
        except InputFileError as err:
            if cfg.bad_images == "skip" and str(err).startswith(str(sample.path)):
                skipped.append((sample.path, file_problem(err, sample.path)))
                continue
            raise
    if not any(len(s.boxes) for s in out):
        boxes = "no boxes"
    elif box_file is not None:
        boxes = f"boxes from {box_file} (0-based inclusive, as given)"
    else:
        boxes = f"boxes from XML files beside the images ({_XML_CONVERSION})"
    classes = found.classes
    return DataSplit(split, root, classes, list(classes), out, f"{found.source}; {boxes}", skipped)


def _under(root: Path, value: str) -> Path:
    """A path from the config: a relative one is relative to data.root."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def _key(text: str) -> str:
    """A list line or a CSV `image` field as a posix path relative to the image root."""
    return PurePosixPath(text.strip().replace("\\", "/").lstrip("/")).as_posix()


# -- split files -----------------------------------------------------------------------------


def _from_lists(cfg: DataConfig, root: Path, split: str) -> Found:
    if cfg.train_list is None or cfg.val_list is None:  # data_config refuses this too
        raise ConfigError("data.train_list and data.val_list go together: give both or neither")
    image_root = _under(root, cfg.image_dir) if cfg.image_dir is not None else root
    if not image_root.is_dir():
        raise MissingFileError(f"data.image_dir {image_root} does not exist or is not a folder")
    train_list = _list_file(root, cfg.train_list, "train_list")
    train = _read_list(train_list, image_root)
    if not train:
        raise InputFileError(f"{train_list}: no image paths")
    classes = sorted({item.cls for item in train})
    if split == "train":
        items, listed = train, train_list
    else:
        listed = _list_file(root, cfg.val_list, "val_list")
        items = _read_list(listed, image_root)
        known = set(classes)
        for item in items:
            if item.cls not in known:
                raise InputFileError(
                    f"{item.where}: class {item.cls} is not a class of the train list "
                    f"({train_list})"
                )
        refuse_overlap(
            {item.keys[0]: item.where for item in items},
            {item.keys[0]: item.where for item in train},
            "data.train_list and data.val_list",
        )
    source = f"image folder, labels from the parent folders of the paths in {listed}"
    return Found(classes, items, image_root, [image_root], None, source)


def _list_file(root: Path, value: str, key: str) -> Path:
    path = _under(root, value)
    if not path.is_file():
        raise MissingFileError(f"data.{key} {path} does not exist")
    return path


def _read_list(path: Path, image_root: Path) -> list[Listed]:
    """A split file: one image path per line (relative to `image_root`), its class its folder."""
    items, first = [], {}
    for line_no, line in enumerate(read_lines(path), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, where = _key(text), f"{path} line {line_no}"
        cls = PurePosixPath(key).parent.as_posix()
        if cls == ".":
            raise InputFileError(f"{where}: {text!r} has no class folder (<class>/<image>)")
        if not is_image_file(Path(key)):
            raise InputFileError(f"{where}: {text!r} is not an image file ({_EXTENSIONS})")
        if key in first:
            raise InputFileError(f"{where}: {text!r} is listed twice (first on line {first[key]})")
        first[key] = line_no
        items.append(Listed(image_root / key, (key,), cls, where))
    return items


# -- class folders per split -----------------------------------------------------------------


def _from_class_folders(root: Path, split: str) -> Found:
    train_dir = root / "train"
    val_dir = root / "val" if (root / "val").is_dir() else root / "test"
    if not train_dir.is_dir():
        raise MissingFileError(
            f"split 'train' not found: {train_dir} is missing (folder data: train/<class>/ and "
            "val/<class>/ or test/<class>/, or data.train_list and data.val_list)"
        )
    classes = [p.name for p in _class_folders(train_dir)]
    if not classes:
        raise InputFileError(f"{train_dir}: no class folders (train/<class>/)")
    if split == "train":
        split_dir, other = train_dir, val_dir if val_dir.is_dir() else None
    elif val_dir.is_dir():
        split_dir, other = val_dir, train_dir
    else:
        raise MissingFileError(f"split {split!r} not found: neither {root / 'val'} nor {val_dir}")
    loose = sorted(p.name for p in split_dir.iterdir() if p.is_file() and is_image_file(p))
    if loose:
        raise InputFileError(
            f"{split_dir}: {len(loose)} image(s) outside the class folders, e.g. {loose[0]} "
            f"(folder data: {split_dir.name}/<class>/<image>)"
        )
    known = set(classes)
    items = []
    for folder in _class_folders(split_dir):
        if folder.name not in known:
            raise InputFileError(
                f"{folder}: class folder {folder.name} is not a class of the train split "
                f"({train_dir})"
            )
        images = _images_under(folder)
        if split == "train" and not images:
            raise InputFileError(f"{folder}: class folder has no images ({_EXTENSIONS})")
        for path in images:
            key = path.relative_to(split_dir).as_posix()
            items.append(Listed(path, (key, f"{split_dir.name}/{key}"), folder.name, str(folder)))
    roots = [root, train_dir, *([val_dir] if val_dir.is_dir() else [])]
    source = f"image folder, labels from the class folders of {split_dir}"
    return Found(classes, items, split_dir, roots, other, source)


def _class_folders(split_dir: Path) -> list[Path]:
    return sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_under(folder: Path) -> list[Path]:
    """The images in `folder` and its sub-folders, in ImageFolder's order (sorted os.walk)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.append((dirpath, sorted(f for f in filenames if is_image_file(Path(f)))))
    return [Path(dirpath) / f for dirpath, files in sorted(found) for f in files]


# -- boxes -----------------------------------------------------------------------------------


def _read_box_csv(path: Path) -> dict[str, BoxRows]:
    """The boxes CSV, `image,x0,y0,x1,y1` rows -> {image key: its rows}."""
    if not path.is_file():
        raise MissingFileError(f"data.boxes {path} does not exist")
    out: dict[str, BoxRows] = {}
    for line, row in read_csv_rows(path, _CSV_HEADER):
        if not "".join(row).strip():
            continue
        where = f"{path} line {line}"
        if len(row) != 5:
            raise InputFileError(f"{where}: expected 5 fields (image,x0,y0,x1,y1), got {len(row)}")
        if not row[0].strip():
            raise InputFileError(f"{where}: the image field is empty")
        fields = zip(row[1:], _CSV_HEADER[1:], strict=True)
        box = tuple(int(parse_number(v, where, name)) for v, name in fields)
        if min(box) < 0:
            raise InputFileError(f"{where}: box {box} has a negative coordinate")
        check_box(box, None, where)
        out.setdefault(_key(row[0]), []).append((line, box))
    return out


def _check_rows(rows: dict[str, BoxRows], path: Path, found: Found) -> None:
    """Each row names an image of this split or a file of the other one, and only one image."""
    names = {key: i for i, item in enumerate(found.items) for key in item.keys}
    for key, given in rows.items():
        where, mine = f"{path} line {given[0][0]}", names.get(key)
        if mine is None and not any((r / key).is_file() for r in found.roots):
            places = ", ".join(str(r) for r in found.roots)
            raise InputFileError(f"{where}: image {key} not found (looked in {places})")
        split_relative = mine is not None and key == found.items[mine].keys[0]
        if split_relative and found.other is not None and (found.other / key).is_file():
            a, b = found.image_root.name, found.other.name
            raise InputFileError(
                f"{where}: image {key} is in both {a}/ and {b}/: write {a}/{key} or {b}/{key}"
            )


def _csv_boxes(sample: Sample, rows: BoxRows, path: Path, max_pixels: int | None) -> Sample:
    if not rows:
        return sample
    sample.size = read_image_size(sample.path, max_pixels)
    return _with_boxes(sample, [check_box(box, sample.size, f"{path} line {n}") for n, box in rows])


def _xml_boxes(sample: Sample, max_pixels: int | None) -> Sample:
    xml = sample.path.with_suffix(".xml")
    if not xml.is_file():
        return sample
    ann = read_voc_xml(xml)
    if not len(ann.boxes):
        return sample
    sample.size = checked_size(sample.path, ann.size, f"{xml}: <size>", max_pixels)
    if ann.size is None:  # no <size>: check the boxes against the image's
        for box in ann.boxes.tolist():
            check_box(tuple(box), sample.size, str(xml))
    return _with_boxes(sample, ann.boxes.tolist())


def _with_boxes(sample: Sample, boxes: list) -> Sample:
    sample.boxes = np.array(boxes, dtype=np.int64).reshape(-1, 4)  # (k, 4)
    sample.box_labels = np.full(len(boxes), sample.label, dtype=np.int64)
    return sample
