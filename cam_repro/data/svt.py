"""The Street View Text dataset (SVT; Wang, Babenko and Belongie, ICCV 2011) as the positives of
the paper's text detector (Section 4.2: 350 SVT images with text against SUN scenes without),
with a folder of images without text as the negatives (`data.source=svt`).

SVT on disk (data.root), as it is distributed:

ROOT/img/*.jpg                 the street-view images (train: 100, test: 250)
ROOT/train.xml, ROOT/test.xml  the word boxes of each split:

    <tagset><image>
      <imageName>img/14_03.jpg</imageName>  (relative to ROOT)
      <address>...</address>
      <lex>LIVING,ROOM,...</lex>            (the image's lexicon, comma separated)
      <Resolution x="1280" y="880"/>        (width, height)
      <taggedRectangles>
        <taggedRectangle height="75" width="236" x="375" y="253"><tag>LIVING</tag></taggedRectangle>
        ...
    </taggedRectangles></image>...</tagset>

A rectangle's x, y is its top-left pixel (0-based), width and height its size in pixels, so the
box here is **0-based inclusive** (x, y, x + width - 1, y + height - 1). A few of SVT's boxes reach
past the image's border: they are clipped to the image (to its `Resolution`). A box entirely
outside the image, or of non-positive width or height, is an error naming the file and image.

The negatives (data.negatives, relative to ROOT unless absolute): NEG/train/ for the train split,
NEG/test/ (else NEG/val/) for val and test, each searched recursively for images (any of
samples.IMAGE_EXTENSIONS; hidden files and folders ignored, symbolic links followed).

Classes are `no_text` (label 0, the negatives, no boxes) and `text` (label 1: SVT's images of
train.xml for split train, of test.xml for val and test; every word box, labelled 1). Samples are
the negatives then the positives, each sorted by path. A positive's size is its `Resolution`,
checked against the image header (`samples.same_size`: a mismatch is an error, the boxes would
be in another frame). Numbers go through `annotations.parse_number` (`inf`, `nan`, `2.5` refused).
The val split refuses an image that train.xml lists too (a test on training images), and a split
without a single text image (a detector "100% accurate" on no text at all). XML is parsed with
defusedxml: no DTD, entity or external reference is resolved.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element

import defusedxml
import defusedxml.ElementTree as SafeET
import numpy as np

from cam_repro.data.annotations import empty_boxes, parse_number
from cam_repro.data.config import DataConfig
from cam_repro.data.samples import (
    DataSplit,
    Sample,
    is_image_file,
    refuse_overlap,
    same_size,
    size_or_skip,
)
from cam_repro.runtime.errors import ConfigError, InputFileError, MissingFileError

CLASSES = ["no_text", "text"]
CLASS_NAMES = ["no text", "text"]
_CONVERSION = "x, y, width, height -> 0-based inclusive x0 = x, x1 = x + width - 1, clipped"


@dataclass(eq=False)
class SVTImage:
    """One `<image>` of an SVT XML file."""

    name: str  # as the file gives it, relative to the SVT folder (img/14_03.jpg)
    size: tuple[int, int]  # (width, height): its <Resolution>
    boxes: np.ndarray = field(default_factory=empty_boxes)  # (k, 4) int64, 0-based inclusive
    tags: list[str] = field(default_factory=list)  # the word of each box
    lexicon: list[str] = field(default_factory=list)


def _xml_root(path: Path) -> Element:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MissingFileError(f"{path}: missing (SVT's word boxes)") from None
    except OSError as err:
        raise InputFileError(f"{path}: cannot read: {err.strerror or err}") from None
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as err:
        raise InputFileError(
            f"{path}: declares a DTD or entities, which are never resolved "
            f"({type(err).__name__}; SVT's files declare none)"
        ) from None
    except (SafeET.ParseError, LookupError) as err:  # LookupError: an unknown encoding
        raise InputFileError(f"{path}: XML does not parse: {err}") from None
    if root.tag != "tagset":
        raise InputFileError(
            f"{path}: not an SVT file: the root element is <{root.tag}>, not <tagset>"
        )
    return root


def _number(node: Element, key: str, where: str) -> int:
    text = node.get(key)
    if text is None:
        raise InputFileError(f"{where} has no {key}=")
    return int(parse_number(text, where, key))


def _box(node: Element, size: tuple[int, int], where: str) -> tuple[int, int, int, int]:
    """A taggedRectangle's box, 0-based inclusive, clipped to the image."""
    x, y, w, h = (_number(node, key, where) for key in ("x", "y", "width", "height"))
    if w < 1 or h < 1:
        raise InputFileError(f"{where}: width and height must be positive, got {w}x{h}")
    x1, y1 = x + w - 1, y + h - 1
    if x1 < 0 or y1 < 0 or x >= size[0] or y >= size[1]:
        raise InputFileError(
            f"{where}: box x={x} y={y} width={w} height={h} lies outside the "
            f"{size[0]}x{size[1]} image"
        )
    return max(x, 0), max(y, 0), min(x1, size[0] - 1), min(y1, size[1] - 1)


def read_svt_xml(path: Path) -> list[SVTImage]:
    """Every `<image>` of an SVT XML file (train.xml, test.xml), in the file's order."""
    images, seen = [], set()
    for i, node in enumerate(_xml_root(path).iter("image"), start=1):
        name = (node.findtext("imageName") or "").strip()
        if not name:
            raise InputFileError(f"{path}: image {i} has no <imageName>")
        if name in seen:
            raise InputFileError(f"{path}: image {name} appears twice")
        seen.add(name)
        where = f"{path}: image {name}"
        resolution = node.find("Resolution")
        if resolution is None:
            raise InputFileError(f"{where} has no <Resolution x= y=>")
        size = (
            _number(resolution, "x", f"{where} <Resolution>"),
            _number(resolution, "y", f"{where} <Resolution>"),
        )
        if size[0] < 1 or size[1] < 1:
            raise InputFileError(f"{where}: <Resolution> must be positive, got {size[0]}x{size[1]}")
        boxes, tags = [], []
        for k, rect in enumerate(node.iter("taggedRectangle"), start=1):
            tag = (rect.findtext("tag") or "").strip()
            boxes.append(_box(rect, size, f"{where} rectangle {k}" + (f" ({tag})" if tag else "")))
            tags.append(tag)
        lexicon = [w.strip() for w in (node.findtext("lex") or "").split(",") if w.strip()]
        images.append(
            SVTImage(name, size, np.array(boxes, dtype=np.int64).reshape(-1, 4), tags, lexicon)
        )
    return images


def _under(root: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def _images_under(folder: Path) -> list[Path]:
    """The images in `folder` and its sub-folders, sorted (hidden ones ignored)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [Path(dirpath) / f for f in filenames if is_image_file(Path(f))]
    return sorted(found)


def _negatives(cfg: DataConfig, root: Path, split: str) -> Path:
    if not cfg.negatives:  # data_config refuses this too
        raise ConfigError("data.source=svt needs data.negatives: a folder of images without text")
    base = _under(root, cfg.negatives)
    if not base.is_dir():
        raise MissingFileError(f"data.negatives {base} does not exist or is not a folder")
    if split == "train":
        folder = base / "train"
    else:
        folder = base / "test" if (base / "test").is_dir() else base / "val"
    if not folder.is_dir():
        want = "train/" if split == "train" else "test/ or val/"
        raise MissingFileError(f"{folder}: missing (data.negatives needs {want} for split {split})")
    return folder


def read_svt(cfg: DataConfig, split: str) -> DataSplit:
    """The `train` or `val` (= `test`) split: SVT's images with their word boxes (text) and the
    negatives (no text); see the module docstring."""
    if split not in ("train", "val", "test"):
        raise ConfigError(f"unknown split {split!r}; svt has 'train' and 'val' (or 'test')")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise MissingFileError(f"data.root {root} does not exist or is not a folder")
    xml = root / ("train.xml" if split == "train" else "test.xml")
    negatives = _negatives(cfg, root, split)
    samples, skipped = [], []
    found = _images_under(negatives)
    if not found:
        raise InputFileError(f"{negatives}: no images (negatives for split {split})")
    samples += [Sample(path, 0) for path in found]
    listed = sorted(read_svt_xml(xml), key=lambda im: im.name)
    train_xml = root / "train.xml"
    if split != "train" and train_xml.is_file():
        refuse_overlap(
            {image.name: f"{xml}: image {image.name}" for image in listed},
            {image.name: str(train_xml) for image in read_svt_xml(train_xml)},
            "SVT's train.xml and test.xml",
        )
    for image in listed:
        path = root / image.name
        if not path.is_file():
            if cfg.bad_images == "skip":
                skipped.append((path, f"image file is missing (listed in {xml})"))
                continue
            raise MissingFileError(f"{xml}: image {image.name}: {path}: image file is missing")
        size = size_or_skip(path, cfg.max_image_pixels, cfg.bad_images, skipped)
        if size is None:
            continue
        same_size(image.size, size, path, f"{xml}: image {image.name}: <Resolution>")
        labels = np.ones(len(image.boxes), dtype=np.int64)
        samples.append(Sample(path, 1, image.size, image.boxes, labels))
    if not any(s.label == 1 for s in samples):
        raise InputFileError(
            f"{xml}: no text image for split {split!r} ({len(listed)} listed"
            + (f", {len(skipped)} left out as unreadable" if skipped else "")
            + "): a text detector cannot be scored without any"
        )
    source = (
        f"SVT: text images and word boxes from {xml} ({_CONVERSION} to the image); "
        f"no-text images from {negatives} (no boxes)"
    )
    return DataSplit(split, root, list(CLASSES), list(CLASS_NAMES), samples, source, skipped)
