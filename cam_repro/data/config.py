"""The data config: one typed schema for `configs/data/*.yaml`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig

from cam_repro.runtime.config import to_schema
from cam_repro.runtime.errors import ConfigError

SOURCES = ("imagenet", "cub", "folder", "svt", "vqa", "wsol")
WSOL_DATASETS = ("ILSVRC", "CUB", "OpenImages")  # wsolevaluation's metadata/ folders
WSOL_SPLITS = ("test", "val")  # the wsolevaluation split that our val split reads
LAYOUTS = ("auto", "kaggle", "classic")
VAL_LABELS = ("auto", "xml", "csv")
AUGMENTS = ("random_resized_crop", "scale_crop", "translate", "none")
BAD_IMAGES = ("error", "skip")
CACHES = ("none", "memory")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# PIL's own default Image.MAX_IMAGE_PIXELS (1024 * 1024 * 1024 // 4 // 3), as a constant: the
# default of data.max_image_pixels, whatever PIL's setting is at run time.
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485


@dataclass
class DataConfig:
    """Where the images and boxes are, and how images become tensors."""

    # imagenet (ILSVRC layouts; the synthetic set too) | cub | folder (any image folder: class
    # folders per split, or one folder of classes plus split files; see cam_repro/data/folder.py)
    # | svt (text / no text: SVT's word boxes plus a folder of negatives) | vqa (VQA v2 JSON)
    # | wsol (wsolevaluation's metadata/ text files with their image folders; see
    # cam_repro/data/wsol.py)
    source: str = "imagenet"
    root: str = MISSING  # the dataset's folder, e.g. data.root=/data/ILSVRC2012
    # A display name of the dataset for reports, e.g. SUN397; null: named by the reader (ILSVRC,
    # CUB-200-2011, the root folder's name for folder data, synthetic (<evidence>), wsol:
    # "<dataset> <split> (wsolevaluation)")
    name: str | None = None
    # ImageNet: kaggle (ILSVRC/Data/CLS-LOC/...) | classic (train/<wnid>/, val/) | auto (detect)
    layout: str = "auto"
    # ImageNet val labels and boxes: xml (per-image files) | csv (LOC_val_solution.csv) | auto
    # (XML when the folder exists, else the CSV)
    val_labels: str = "auto"
    # Classic layout: the folder of val XML files or the CSV; null = look in the usual places
    # (root/val_boxes, root/bbox_val, root/ILSVRC2012_bbox_val_v3[/val], XML beside the images,
    # root/LOC_val_solution.csv)
    val_annotations: str | None = None
    # Folder data with split files: text files with one image path per line (relative to
    # image_dir), whose parent folder is the class (SUN397, MIT Indoor67, Caltech); both or neither
    # (neither: class folders root/train/<class>/, root/val/<class>/ or root/test/<class>/).
    # Relative paths are relative to root.
    train_list: str | None = None
    val_list: str | None = None  # folder data with split files: the val split's (see train_list)
    image_dir: str | None = None  # split files: the folder their paths start from; null = root
    # Folder data: a CSV of boxes, `image,x0,y0,x1,y1` (0-based inclusive pixels of the original
    # image; image relative to the split folder or image_dir); null: PASCAL VOC XML files beside
    # the images where there are any (x.jpg -> x.xml)
    boxes: str | None = None
    # svt (cam_repro/data/svt.py): root is the SVT folder (img/, train.xml, test.xml, the word
    # boxes), the positives; `negatives` a folder of images without text (SUN scenes in the
    # paper) with train/ and test/ (or val/) sub-folders. Relative to root.
    negatives: str | None = None
    # vqa (cam_repro/data/vqa.py): root holds the VQA v2 question and annotation JSON files and
    # the image folders <subtype>/ (COCO_<subtype>_<12-digit id>.jpg).
    train_subtype: str = "train2014"  # the train split's data_subtype (file names)
    val_subtype: str = "val2014"  # the val split's
    answers: int = 1000  # the model's answers: the most frequent ones of the train split
    question_words: int = 0  # the bag-of-words: the most frequent train question words; 0: all
    # wsol (cam_repro/data/wsol.py): root is the images' root (the image ids are relative to it);
    # `metadata` wsolevaluation's metadata/ folder, holding <dataset>/<train|val|test>/ (relative
    # to root if relative)
    dataset: str = "ILSVRC"  # ILSVRC | CUB | OpenImages: the metadata/ sub-folder read
    metadata: str | None = None  # wsol: wsolevaluation's metadata/ folder (see dataset)
    # The wsolevaluation split that our val split reads: test (the reported one) | val (ImageNetV2,
    # CUBV2, OpenImages val: for choosing hyperparameters such as the CAM threshold). Our train
    # split reads their train.
    split: str = "test"
    mask_root: str | None = None  # OpenImages: the folder its mask paths start from; null = root
    image_size: int = 224  # side of the train crop and of the (square) eval image
    resize_size: int = 256  # scale_crop: the shorter side before the random crop
    train_augment: str = (
        "random_resized_crop"  # random_resized_crop | scale_crop | translate | none
    )
    crop_scale: list[float] = field(default_factory=lambda: [0.08, 1.0])  # random_resized_crop
    translate_px: int = 4  # translate: shift by up to this many pixels (reflect padding)
    hflip: bool = True  # random horizontal flips of the train images
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))  # RGB, pixels in 0-1
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))  # input = (x - mean) / std
    # An unreadable or corrupt image: error (stop, naming the file) | skip (leave it out, count it)
    bad_images: str = "error"
    # An image with more pixels than this (width x height, read from its header before decoding)
    # is an unreadable image, as above, instead of a decompression bomb decoded into RAM; null: no
    # limit. The default is PIL's own warning level (~89.5 megapixels).
    max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS
    # Loading (training and evaluation)
    batch_size: int = 64  # per process: torchrun with N processes trains on N x batch_size
    num_workers: int = 4  # DataLoader worker processes (0: load in the main process)
    pin_memory: bool = True  # page-locked batches for faster copies to a GPU (ignored on CPU)
    persistent_workers: bool = True  # keep workers alive between epochs
    prefetch_factor: int | None = None  # batches each worker loads ahead; null: PyTorch's (2)
    cache: str = "none"  # memory: decode every image once and keep it in RAM (small datasets)
    # Evaluation: val images left out of the localization errors (not of classification), as the
    # released evaluation leaves out the ILSVRC2014 blacklist (1,762 images). A text file with one
    # val index per line (1-based: 36 is ILSVRC2012_val_00000036) or one image id per line.
    blacklist: str | None = None


def data_config(cfg: DataConfig | Mapping[str, Any] | DictConfig) -> DataConfig:
    """Validate a data config (dict, DictConfig or DataConfig) into a DataConfig."""
    spec = to_schema(DataConfig, cfg, "data")
    _validate(spec)
    return spec


def _choice(value: str, key: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"data.{key} must be one of {', '.join(choices)}; got {value!r}")


def _validate(spec: DataConfig) -> None:
    _choice(spec.source, "source", SOURCES)
    _choice(spec.layout, "layout", LAYOUTS)
    _choice(spec.val_labels, "val_labels", VAL_LABELS)
    _choice(spec.train_augment, "train_augment", AUGMENTS)
    _choice(spec.bad_images, "bad_images", BAD_IMAGES)
    _choice(spec.cache, "cache", CACHES)
    if spec.source == "folder" and (spec.train_list is None) != (spec.val_list is None):
        given = "train_list" if spec.val_list is None else "val_list"
        other = "val_list" if given == "train_list" else "train_list"
        raise ConfigError(
            f"data.{given} is set but data.{other} is not: split files need both (neither: class "
            "folders train/<class>/, val/<class>/)"
        )
    if spec.source == "svt" and not spec.negatives:
        raise ConfigError(
            "data.source=svt needs data.negatives: a folder of images without text (with train/ "
            "and test/ sub-folders)"
        )
    _choice(spec.dataset, "dataset", WSOL_DATASETS)
    _choice(spec.split, "split", WSOL_SPLITS)
    if spec.source == "wsol" and not spec.metadata:
        raise ConfigError(
            "data.source=wsol needs data.metadata: wsolevaluation's metadata/ folder (holding "
            "ILSVRC/, CUB/, OpenImages/)"
        )
    if spec.answers < 2 or spec.question_words < 0:
        raise ConfigError(
            f"data.answers must be >= 2 and data.question_words >= 0, got {spec.answers} and "
            f"{spec.question_words}"
        )
    if spec.max_image_pixels is not None and spec.max_image_pixels < 1:
        raise ConfigError(
            f"data.max_image_pixels must be >= 1 or null (no limit), got {spec.max_image_pixels}"
        )
    if spec.batch_size < 1:
        raise ConfigError(f"data.batch_size must be >= 1, got {spec.batch_size}")
    if spec.num_workers < 0:
        raise ConfigError(f"data.num_workers must be >= 0, got {spec.num_workers}")
    if spec.prefetch_factor is not None and spec.prefetch_factor < 1:
        raise ConfigError(f"data.prefetch_factor must be >= 1, got {spec.prefetch_factor}")
    if spec.image_size < 8:
        raise ConfigError(f"data.image_size must be >= 8, got {spec.image_size}")
    if spec.resize_size < spec.image_size:
        raise ConfigError(
            f"data.resize_size ({spec.resize_size}) must be >= data.image_size ({spec.image_size})"
        )
    if len(spec.crop_scale) != 2 or not 0 < spec.crop_scale[0] <= spec.crop_scale[1] <= 1:
        raise ConfigError(
            f"data.crop_scale must be [min, max] with 0 < min <= max <= 1, got {spec.crop_scale}"
        )
    if spec.translate_px < 0:
        raise ConfigError(f"data.translate_px must be >= 0, got {spec.translate_px}")
    if len(spec.mean) != 3 or len(spec.std) != 3 or min(spec.std) <= 0:
        raise ConfigError("data.mean and data.std must be 3 numbers (RGB), std > 0")


@dataclass
class DataAppConfig:
    """`cam-data`: read a dataset's splits, check every annotation and image, and report."""

    data: DataConfig = field(default_factory=DataConfig)
    splits: list[str] = field(default_factory=lambda: ["train", "val"])  # the splits to check
    decode: bool = True  # decode every image fully (false: read the headers only, much faster)
    progress: bool = True  # a progress bar while the images are checked
