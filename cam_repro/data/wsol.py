"""wsolevaluation's data as it ships it (`data.source=wsol`; Choe et al., "Evaluating Weakly
Supervised Object Localization Methods Right", CVPR 2020, github.com/clovaai/wsolevaluation):

METADATA/<ILSVRC|CUB|OpenImages>/<train|val|test>/
    image_ids.txt     one image id per line: its path relative to the images root (data.root),
                      e.g. val/ILSVRC2012_val_00000001.JPEG, train/n01440764/n01440764_10026.JPEG,
                      val2/0/<hash>.jpeg (ImageNetV2), 001.Black_footed_Albatross/x.jpg (CUB),
                      test/01226z/<id>.jpg (OpenImages)
    class_labels.txt  <image_id>,<label>          (0-based)
    image_sizes.txt   <image_id>,<w>,<h>          (needed with boxes; OpenImages ships none)
    localization.txt  boxes (ILSVRC, CUB): <image_id>,<x0>,<y0>,<x1>,<y1>, one line per box
                      masks (OpenImages): <image_id>,<mask>,<ignore>, one line per instance mask;
                      the image's first line names its ignore file, later lines leave it empty

wsolevaluation reads these in data_loaders.py (get_image_ids, get_class_labels, get_image_sizes,
get_bounding_boxes, get_mask_paths). Our `train` split reads their train; our `val` split reads
their `data.split` (test, the reported split, or val: ImageNetV2, CUBV2, OpenImages val, on which
they choose hyperparameters such as the CAM threshold).

Every declared size (image_sizes.txt) is checked against the image's header (`checked_size`):
a mismatch is an error naming the line and both sizes, since the boxes would be in another frame.
With their train split there, our val split may hold none of its images and no label it lacks.
Every text file is read by `runtime.files.read_lines` (a byte-order mark, CRLF: read alike), every
number by `annotations.parse_number` (`inf`, `nan`, `40.5` refused).

Boxes are used exactly as given: wsolevaluation's IoU counts pixels inclusively (evaluation.py,
calculate_multiple_iou: `+ 1` on both sides), so they are 0-based inclusive, which is what every
reader here hands out. Their boxes may touch the far border (x1 = W, one past the last pixel
column); such a box is kept as given, and `scale_boxes` clips it into the resized frame. A box
outside 0 <= x0 <= x1 <= W, 0 <= y0 <= y1 <= H is an error. Every box is of the image's class.

Masks (OpenImages30k): `Sample.masks` are every instance mask of the image (nonzero =
foreground; their union is the foreground), `Sample.ignore_mask` its ignore file (None where the
field is empty); both relative to data.mask_root (null: data.root), as wsolevaluation's
--mask_root (dataset/OpenImages, the images' root too).

Classes: the labels are those of class_labels.txt. Label l is named after the folder of its
images in the train split's image ids (train/<wnid>/ for ILSVRC, <class folder>/ for CUB,
train/<class>/ for OpenImages) when each label has one folder and each folder one label, else
after this split's folders on the same condition, else str(l). wsolevaluation's ILSVRC labels
are the sorted wnids' indices, so its classes are those of a network trained by our ILSVRC reader
(and its CUB classes those of our CUB reader). The number of classes is the largest label read
(this split's, and the train split's when read for names) plus one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from cam_repro.data.annotations import parse_number, read_synset_mapping
from cam_repro.data.config import WSOL_DATASETS, WSOL_SPLITS, DataConfig
from cam_repro.data.cub import class_name as cub_class_name
from cam_repro.data.samples import DataSplit, Sample, checked_size, refuse_overlap
from cam_repro.runtime.config import check_choice
from cam_repro.runtime.errors import ConfigError, InputFileError, MissingFileError
from cam_repro.runtime.files import read_lines

BOX_DATASETS = ("ILSVRC", "CUB")  # localization.txt holds boxes; OpenImages' holds masks
_SYNSET_FILES = ("LOC_synset_mapping.txt", "synset_words.txt")


@dataclass
class Listing:
    """One metadata split folder's image ids and labels, in image_ids.txt's order."""

    folder: Path
    ids: list[str]
    lines: dict[str, int]  # image id -> its line in image_ids.txt
    labels: dict[str, int] = field(default_factory=dict)


def read_wsol(cfg: DataConfig, split: str) -> DataSplit:
    """The `train` split (their train) or the `val` split (their `cfg.split`: test or val) of
    wsolevaluation's metadata at `cfg.metadata` for the images at `cfg.root`."""
    if split not in ("train", "val"):
        raise ConfigError(
            f"unknown split {split!r}; data.source=wsol has 'train' and 'val' (wsolevaluation's "
            f"data.split: test or val)"
        )
    if cfg.metadata is None:
        raise ConfigError("data.source=wsol needs data.metadata: wsolevaluation's metadata/ folder")
    check_choice(cfg.dataset, "data.dataset", WSOL_DATASETS)
    check_choice(cfg.split, "data.split", WSOL_SPLITS)
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise MissingFileError(f"data.root {root} does not exist or is not a folder")
    theirs = "train" if split == "train" else cfg.split
    dataset_dir = _dataset_folder(_under(root, cfg.metadata), cfg.dataset)
    folder = dataset_dir / theirs
    if not folder.is_dir():
        raise MissingFileError(f"{folder}: missing (wsolevaluation's {cfg.dataset} {theirs} split)")
    this = _listing(folder)
    train = this if split == "train" else _train_listing(dataset_dir / "train")
    _check_against_train(this, train)
    has_loc = (folder / "localization.txt").is_file()
    if split == "val" and not has_loc:
        raise MissingFileError(f"{folder / 'localization.txt'}: missing (boxes or masks)")
    boxes = has_loc and cfg.dataset in BOX_DATASETS
    sizes, size_lines = _sizes(folder, this, required=boxes)
    classes = _class_folders(this, train)
    names = _class_names(classes, cfg.dataset, root)
    samples: dict[str, Sample] = {}  # image id -> its sample, in image_ids.txt's order
    skipped: list[tuple[Path, str]] = []
    where = folder / "image_ids.txt"
    for image_id in this.ids:
        path = root / PurePosixPath(image_id)
        if path.is_file():
            samples[image_id] = Sample(path, this.labels[image_id])
        elif cfg.bad_images == "skip":
            skipped.append(
                (path, f"image file is missing (listed in {where} line {this.lines[image_id]})")
            )
        else:
            raise MissingFileError(
                f"{where} line {this.lines[image_id]}: {path}: image file is missing"
            )
    for image_id, sample in samples.items():  # the boxes' frame must be the image's
        if image_id in sizes:
            where = f"{folder / 'image_sizes.txt'} line {size_lines[image_id]}"
            sample.size = checked_size(sample.path, sizes[image_id], where, cfg.max_image_pixels)
    if not samples:
        raise InputFileError(f"{where}: none of its images is there (data.root {root})")
    what = "no boxes or masks"
    if boxes:
        _add_boxes(samples, this, folder / "localization.txt", sizes)
        what = "boxes 0-based inclusive, as given"
    elif has_loc:
        mask_root = _under(root, cfg.mask_root) if cfg.mask_root is not None else root
        _add_masks(samples, this, folder / "localization.txt", mask_root)
        what = f"instance masks and ignore masks under {mask_root}"
    source = f"wsolevaluation metadata {folder} ({cfg.dataset} {theirs}); {what}"
    return DataSplit(split, root, classes, names, list(samples.values()), source, skipped)


def _under(root: Path, value: str) -> Path:
    """A path from the config: a relative one is relative to data.root."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def _dataset_folder(metadata: Path, dataset: str) -> Path:
    if not metadata.is_dir():
        raise MissingFileError(f"data.metadata {metadata} does not exist or is not a folder")
    folder = metadata / dataset
    if not folder.is_dir():
        raise MissingFileError(
            f"{folder}: missing (data.metadata must be wsolevaluation's metadata/ folder, which "
            "holds ILSVRC/, CUB/ and OpenImages/)"
        )
    return folder


def _rows(path: Path, fields: int, form: str) -> Iterable[tuple[int, list[str]]]:
    """(line number, the fields) of each non-blank line of a comma-separated metadata file with
    exactly `fields` fields; `form` is the expected line, for messages."""
    if not path.is_file():
        raise MissingFileError(f"{path}: missing")
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != fields or not parts[0]:
            raise InputFileError(f"{path} line {number}: expected '{form}', got {line.strip()!r}")
        yield number, parts


def _listing(folder: Path) -> Listing:
    """image_ids.txt and class_labels.txt of one split folder, checked against each other."""
    ids_file = folder / "image_ids.txt"
    ids: list[str] = []
    lines: dict[str, int] = {}
    for number, (image_id,) in _rows(ids_file, 1, "<image path>"):
        if image_id in lines:
            raise InputFileError(
                f"{ids_file} line {number}: image {image_id} is listed twice (also line "
                f"{lines[image_id]})"
            )
        ids.append(image_id)
        lines[image_id] = number
    if not ids:
        raise InputFileError(f"{ids_file}: no image ids")
    listing = Listing(folder, ids, lines)
    labels_file = folder / "class_labels.txt"
    seen: dict[str, int] = {}
    for number, (image_id, text) in _rows(labels_file, 2, "<image id>,<label>"):
        where = f"{labels_file} line {number}"
        _known(image_id, listing, where)
        if image_id in seen:
            raise InputFileError(
                f"{where}: image {image_id} has a second label (also line {seen[image_id]})"
            )
        listing.labels[image_id] = _number(text, where, image_id, "label", 0)
        seen[image_id] = number
    _complete(listing, listing.labels, labels_file, "label")
    return listing


def _train_listing(folder: Path) -> Listing | None:
    """The train split's ids and labels, to name the classes; None when it is not there."""
    if not (folder / "image_ids.txt").is_file() or not (folder / "class_labels.txt").is_file():
        return None
    return _listing(folder)


def _known(image_id: str, listing: Listing, where: str) -> None:
    if image_id not in listing.lines:
        raise InputFileError(
            f"{where}: image {image_id} is not in {listing.folder / 'image_ids.txt'}"
        )


def _complete(listing: Listing, table: dict, path: Path, what: str) -> None:
    """Every image of the listing has an entry in `table` (read from `path`)."""
    for image_id in listing.ids:
        if image_id not in table:
            raise InputFileError(f"{path}: no {what} for image {image_id}")


def _number(text: str, where: str, image_id: str, what: str, least: int) -> int:
    return int(parse_number(text, f"{where} (image {image_id})", what, least=least))


def _check_against_train(this: Listing, train: Listing | None) -> None:
    """The train split: every label from 0 to the largest has images (a label without would be
    a class that nothing trains). Another split: none of its images in the train split (a test
    on training images), no label the train split lacks (a typo would add classes)."""
    ids_file, labels_file = "image_ids.txt", "class_labels.txt"
    if train is None:
        return
    if train is this:
        missing = sorted(set(range(max(this.labels.values()) + 1)) - set(this.labels.values()))
        if missing:
            raise InputFileError(
                f"{this.folder / labels_file}: no image has label {missing[0]}"
                + (f" (nor {len(missing) - 1} other labels)" if len(missing) > 1 else "")
                + f", but labels run to {max(this.labels.values())}: a class without training "
                "images; labels must be 0, 1, ... without gaps"
            )
        return
    known = set(train.labels.values())
    for image_id in this.ids:
        if this.labels[image_id] not in known:
            raise InputFileError(
                f"{this.folder / labels_file} (image {image_id}): label "
                f"{this.labels[image_id]} is not a label of the train split "
                f"({train.folder / labels_file})"
            )
    refuse_overlap(
        {i: f"{this.folder / ids_file} line {n}" for i, n in this.lines.items()},
        {i: f"{train.folder / ids_file} line {n}" for i, n in train.lines.items()},
        f"wsolevaluation's {train.folder.parent.name} metadata",
    )


def _sizes(
    folder: Path, listing: Listing, required: bool
) -> tuple[dict[str, tuple[int, int]], dict[str, int]]:
    """image_sizes.txt: ({image id: (width, height)}, {image id: its line}); empty dicts when the
    file is absent and not `required` (the image headers give the sizes when they are needed)."""
    path = folder / "image_sizes.txt"
    if not path.is_file() and not required:
        return {}, {}
    if not path.is_file():
        raise MissingFileError(f"{path}: missing (the image sizes the boxes are in)")
    sizes: dict[str, tuple[int, int]] = {}
    lines: dict[str, int] = {}
    for number, (image_id, w, h) in _rows(path, 3, "<image id>,<width>,<height>"):
        where = f"{path} line {number}"
        _known(image_id, listing, where)
        if image_id in lines:
            raise InputFileError(
                f"{where}: image {image_id} has a second size (also line {lines[image_id]})"
            )
        sizes[image_id] = (
            _number(w, where, image_id, "width", 1),
            _number(h, where, image_id, "height", 1),
        )
        lines[image_id] = number
    _complete(listing, sizes, path, "size")
    return sizes, lines


def _add_boxes(
    samples: dict[str, Sample], listing: Listing, path: Path, sizes: dict[str, tuple[int, int]]
) -> None:
    """localization.txt's boxes onto the samples (0-based inclusive, as given; the image's
    class). Every image of the split needs at least one box."""
    boxes: dict[str, list[tuple[int, int, int, int]]] = {}
    form = "<image id>,<x0>,<y0>,<x1>,<y1>"
    for number, (image_id, *coords) in _rows(path, 5, form):
        where = f"{path} line {number}"
        _known(image_id, listing, where)
        x0, y0, x1, y1 = (_number(c, where, image_id, "coordinate", 0) for c in coords)
        size = sizes[image_id]
        if not (x0 <= x1 <= size[0] and y0 <= y1 <= size[1]):
            raise InputFileError(
                f"{where} (image {image_id}): box ({x0}, {y0}, {x1}, {y1}) is not "
                f"0 <= x0 <= x1 <= {size[0]}, 0 <= y0 <= y1 <= {size[1]} (its "
                f"{size[0]}x{size[1]} image)"
            )
        boxes.setdefault(image_id, []).append((x0, y0, x1, y1))
    _complete(listing, boxes, path, "box")
    for image_id, sample in samples.items():
        given = boxes[image_id]
        sample.boxes = np.array(given, dtype=np.int64).reshape(-1, 4)
        sample.box_labels = np.full(len(given), sample.label, dtype=np.int64)


def _add_masks(samples: dict[str, Sample], listing: Listing, path: Path, mask_root: Path) -> None:
    """localization.txt's instance masks and ignore masks onto the samples. Every image of the
    split needs at least one mask; a missing mask or ignore file is an error."""
    masks: dict[str, list[Path]] = {}
    ignores: dict[str, Path | None] = {}
    for number, (image_id, mask, ignore) in _rows(path, 3, "<image id>,<mask>,<ignore mask>"):
        where = f"{path} line {number}"
        _known(image_id, listing, where)
        if not mask:
            raise InputFileError(f"{where} (image {image_id}): no mask path")
        if image_id in masks and ignore:
            raise InputFileError(
                f"{where} (image {image_id}): a second ignore mask; only the image's first line "
                "names one"
            )
        files = [("mask", mask_root / PurePosixPath(mask))]
        if image_id not in masks:
            ignores[image_id] = mask_root / PurePosixPath(ignore) if ignore else None
            if ignore:
                files.append(("ignore mask", ignores[image_id]))
        if image_id in samples:  # the masks of an image left out (bad_images=skip) are not needed
            for what, file in files:
                if not file.is_file():
                    raise MissingFileError(f"{where} (image {image_id}): {what} {file} is missing")
        masks.setdefault(image_id, []).append(files[0][1])
    _complete(listing, masks, path, "mask")
    for image_id, sample in samples.items():
        sample.masks = tuple(masks[image_id])
        sample.ignore_mask = ignores[image_id]


def _folder_names(listing: Listing | None) -> dict[int, str]:
    """{label: the folder its images are in} when each label's images share one folder and no
    two labels share one; {} otherwise (or without a listing)."""
    if listing is None:
        return {}
    names: dict[int, str] = {}
    labels: dict[str, int] = {}
    for image_id in listing.ids:
        label, folder = listing.labels[image_id], PurePosixPath(image_id).parent.name
        if not folder or names.setdefault(label, folder) != folder:
            return {}
        if labels.setdefault(folder, label) != label:
            return {}
    return names


def _class_folders(this: Listing, train: Listing | None) -> list[str]:
    """The classes, label order: the train split's folder names, else this split's, else
    str(label) (see the module's docstring)."""
    labels = set(this.labels.values()) | (set(train.labels.values()) if train else set())
    from_train, from_this = _folder_names(train), _folder_names(this)
    classes = [
        from_train.get(label) or from_this.get(label) or str(label)
        for label in range(max(labels) + 1)
    ]
    if len(set(classes)) < len(classes):  # the two sources disagree: no names rather than wrong
        return [str(label) for label in range(len(classes))]
    return classes


def _class_names(classes: list[str], dataset: str, root: Path) -> list[str]:
    """Readable names, as the ILSVRC and CUB readers give them: ILSVRC's synset mapping (under
    data.root) when there is one; CUB's folder name without its number; else the class."""
    if dataset == "ILSVRC":
        mapping = next((root / f for f in _SYNSET_FILES if (root / f).is_file()), None)
        words = read_synset_mapping(mapping) if mapping else {}
        return [words.get(c, c) for c in classes]
    if dataset == "CUB":
        return [cub_class_name(c) for c in classes]
    return list(classes)
