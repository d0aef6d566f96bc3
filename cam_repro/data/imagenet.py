"""ILSVRC CLS-LOC on disk, in either common layout (the embedded synthetic set uses the first):

kaggle:   ROOT/ILSVRC/Data/CLS-LOC/{train/<wnid>/*.JPEG, val/*.JPEG}
          ROOT/ILSVRC/Annotations/CLS-LOC/val/<image id>.xml
          ROOT/LOC_val_solution.csv, ROOT/LOC_synset_mapping.txt
          ROOT/ILSVRC/Masks/CLS-LOC/val/<image id>.png   (optional foreground masks; ours)
classic:  ROOT/train/<wnid>/*.JPEG, ROOT/val/*.JPEG (flat, or val/<wnid>/ class folders)
          val XML files from ILSVRC2012_bbox_val_v3 (see DataConfig.val_annotations for where),
          or ROOT/LOC_val_solution.csv; ROOT/LOC_synset_mapping.txt or synset_words.txt (names)
          ROOT/val_masks/<image id>.png   (optional)

A val image's size is its header's, which the XML's `<size>` must match (`samples.checked_size`:
the boxes are in the XML's frame; a resized copy of the images is refused, not mis-scored).

Classes are the sorted wnids of the train folders (torchvision's ImageFolder order), or of the
synset mapping when there is no train folder (evaluation-only copies of ILSVRC).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cam_repro.data.annotations import (
    Annotation,
    check_box,
    read_loc_csv,
    read_synset_mapping,
    read_voc_xml,
)
from cam_repro.data.config import DataConfig
from cam_repro.data.samples import (
    DataSplit,
    Sample,
    checked_size,
    file_problem,
    is_image_file,
)
from cam_repro.runtime.errors import ConfigError, InputFileError, MissingFileError

_CONVERSION = "1-based inclusive in the files, 0-based inclusive here (x0 = xmin - 1)"
_CLASSIC_XML_DIRS = (
    "val_boxes",
    "bbox_val",
    "ILSVRC2012_bbox_val_v3/val",
    "ILSVRC2012_bbox_val_v3",
)


@dataclass
class Layout:
    """Where each part of an ILSVRC copy lives."""

    name: str  # kaggle | classic
    train_dir: Path
    val_dir: Path
    xml_dir: Path | None
    csv_file: Path | None
    synsets: Path | None
    masks_dir: Path | None


def _existing(*paths: Path) -> Path | None:
    return next((p for p in paths if p.exists()), None)


def find_layout(cfg: DataConfig) -> Layout:
    """The layout of `cfg.root` (detected when `cfg.layout` is auto)."""
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise MissingFileError(f"data.root {root} does not exist or is not a folder")
    kaggle = root / "ILSVRC" / "Data" / "CLS-LOC"
    name = cfg.layout
    if name == "auto":
        if kaggle.is_dir():
            name = "kaggle"
        elif (root / "train").is_dir() or (root / "val").is_dir():
            name = "classic"
        else:
            raise MissingFileError(
                f"{root}: not an ILSVRC folder: neither the Kaggle layout (ILSVRC/Data/CLS-LOC/) "
                "nor the classic one (train/, val/) is there"
            )
    csv_file = root / "LOC_val_solution.csv"
    synsets = _existing(root / "LOC_synset_mapping.txt", root / "synset_words.txt")
    if name == "kaggle":
        if cfg.val_annotations:
            raise ConfigError("data.val_annotations applies to the classic layout only")
        return Layout(
            name,
            kaggle / "train",
            kaggle / "val",
            root / "ILSVRC" / "Annotations" / "CLS-LOC" / "val",
            csv_file,
            synsets,
            root / "ILSVRC" / "Masks" / "CLS-LOC" / "val",
        )
    xml_dir, val_dir = None, root / "val"
    if cfg.val_annotations:
        given = Path(cfg.val_annotations).expanduser()
        if not given.exists():
            raise MissingFileError(f"data.val_annotations {given} does not exist")
        if given.is_dir():
            xml_dir = given
        else:
            csv_file = given
    else:
        xml_dir = _existing(*(root / d for d in _CLASSIC_XML_DIRS))
        if xml_dir is None and val_dir.is_dir() and any(val_dir.glob("*.xml")):
            xml_dir = val_dir
    return Layout(name, root / "train", val_dir, xml_dir, csv_file, synsets, root / "val_masks")


def _class_folders(train_dir: Path) -> list[Path]:
    return sorted(p for p in train_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


def _classes(layout: Layout) -> tuple[list[str], list[str]]:
    names = read_synset_mapping(layout.synsets) if layout.synsets else {}
    if layout.train_dir.is_dir():
        classes = [p.name for p in _class_folders(layout.train_dir)]
        if not classes:
            raise InputFileError(f"{layout.train_dir}: no class folders (train/<wnid>/)")
    elif names:
        classes = sorted(names)
    else:
        raise MissingFileError(
            f"{layout.train_dir} is missing and there is no LOC_synset_mapping.txt to name the "
            "classes"
        )
    return classes, [names.get(c, c) for c in classes]


def read_imagenet(cfg: DataConfig, split: str) -> DataSplit:
    """The `train` or `val` split of an ILSVRC copy at `cfg.root`."""
    layout = find_layout(cfg)
    classes, names = _classes(layout)
    if split == "train":
        return _train_split(layout, classes, names)
    if split == "val":
        return _val_split(layout, classes, names, cfg)
    raise ConfigError(f"unknown split {split!r}; ImageNet has 'train' and 'val'")


def _train_split(layout: Layout, classes: list[str], names: list[str]) -> DataSplit:
    if not layout.train_dir.is_dir():
        raise MissingFileError(f"split 'train' not found: {layout.train_dir} is missing")
    samples = []
    for label, wnid in enumerate(classes):
        images = _images_in(layout.train_dir / wnid)
        if not images:
            raise InputFileError(
                f"{layout.train_dir / wnid}: class folder has no images (.JPEG, .jpg, .png, ...)"
            )
        samples += [Sample(path, label) for path in images]
    source = f"ILSVRC {layout.name} layout, labels from the train class folders"
    return DataSplit("train", layout.train_dir.parent, classes, names, samples, source)


def _val_split(layout: Layout, classes: list[str], names: list[str], cfg: DataConfig) -> DataSplit:
    if not layout.val_dir.is_dir():
        raise MissingFileError(f"split 'val' not found: {layout.val_dir} is missing")
    index = {wnid: i for i, wnid in enumerate(classes)}
    folder_labels = {p.name for p in _class_folders(layout.val_dir)} & set(index)
    images = _images_in(layout.val_dir) + [
        p for wnid in sorted(folder_labels) for p in _images_in(layout.val_dir / wnid)
    ]
    if not images:
        raise InputFileError(f"{layout.val_dir}: no images")
    use_xml = layout.xml_dir is not None and layout.xml_dir.is_dir()
    use_csv = layout.csv_file is not None and layout.csv_file.is_file()
    if cfg.val_labels == "xml" and not use_xml:
        raise MissingFileError(
            f"data.val_labels=xml but the XML folder {layout.xml_dir} is missing"
        )
    if cfg.val_labels == "csv" and not use_csv:
        raise MissingFileError(f"data.val_labels=csv but {layout.csv_file} is missing")
    by_csv = (
        read_loc_csv(layout.csv_file)
        if use_csv and (cfg.val_labels == "csv" or not use_xml)
        else None
    )
    if by_csv is None and not use_xml and not folder_labels:
        raise MissingFileError(
            f"no val labels for {layout.val_dir}: no XML folder (ILSVRC2012_bbox_val_v3 or "
            f"Annotations/CLS-LOC/val) and no {layout.csv_file}; set data.val_annotations"
        )
    masks_dir = layout.masks_dir if layout.masks_dir and layout.masks_dir.is_dir() else None
    samples, skipped = [], []
    for path in images:
        try:
            samples.append(_val_sample(path, layout, by_csv, index, masks_dir, use_xml, cfg))
        except InputFileError as err:
            if cfg.bad_images == "skip" and str(err).startswith(str(path)):
                skipped.append((path, file_problem(err, path)))
                continue
            raise
    if by_csv is not None:
        what = f"{layout.csv_file.name} ({_CONVERSION})"
    elif use_xml:
        what = f"XML files in {layout.xml_dir} ({_CONVERSION})"
    else:
        what = "the val class folders (no boxes)"
    source = f"ILSVRC {layout.name} layout, val labels and boxes from {what}"
    return DataSplit("val", layout.val_dir.parent, classes, names, samples, source, skipped)


def _val_sample(
    path: Path,
    layout: Layout,
    by_csv: dict[str, Annotation] | None,
    index: dict[str, int],
    masks_dir: Path | None,
    use_xml: bool,
    cfg: DataConfig,
) -> Sample:
    image_id = path.stem
    folder_wnid = path.parent.name if path.parent != layout.val_dir else None
    if by_csv is not None:
        ann = by_csv.get(image_id)
        where = f"{layout.csv_file}, image {image_id}"
        if ann is None:
            raise InputFileError(f"{layout.csv_file}: no row for val image {path.name}")
    elif use_xml:
        xml = layout.xml_dir / f"{image_id}.xml"
        if not xml.is_file():
            raise MissingFileError(f"{xml}: missing (the annotation of val image {path.name})")
        ann, where = read_voc_xml(xml), str(xml)
    elif folder_wnid is not None:
        ann, where = Annotation(None, [], np.zeros((0, 4), np.int64)), str(path)
    else:
        raise InputFileError(
            f"{path}: no label: no annotation file and not in a val/<wnid>/ folder"
        )
    # An image without an <object> (a negative of cam-synth task=text) in a val/<wnid>/ folder is
    # labelled by its folder and has no boxes.
    if not ann.wnids and folder_wnid is None:
        raise InputFileError(f"{where}: no <object>, so no label")
    for wnid in ann.wnids:
        if wnid not in index:
            raise InputFileError(f"{where}: wnid {wnid} is not a training class")
    label = ann.wnids[0] if ann.wnids else folder_wnid
    if folder_wnid is not None and label != folder_wnid:
        raise InputFileError(f"{where}: labelled {label} but the image is in {folder_wnid}/")
    size = checked_size(path, ann.size, f"{where}: <size>", cfg.max_image_pixels)
    if ann.size is None:  # the CSV has no sizes: check its boxes against the image's
        for box in ann.boxes.tolist():
            check_box(tuple(box), size, where)
    mask = masks_dir / f"{image_id}.png" if masks_dir else None
    return Sample(
        path,
        index[label],
        size,
        ann.boxes,
        np.array([index[w] for w in ann.wnids], dtype=np.int64),
        (mask,) if mask is not None and mask.is_file() else (),
    )
