"""`cam-synth`'s config: the typed schema of configs/synth.yaml (`SynthConfig`, with its task=text
and task=vqa options) and its validation (`synth_config`), loaded without numpy's drawing code
(`apps.register("synth")`). What the keys draw: `data.synthetic` and docs/synthetic.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig

from cam_repro.data.textures import TEXTURE_NAMES
from cam_repro.runtime.config import check_choice, to_schema
from cam_repro.runtime.errors import ConfigError

TASKS = ("classes", "text", "vqa")
EVIDENCE = ("parts", "uniform", "fine")
LAYOUTS = ("ilsvrc", "cub")


@dataclass
class TextSynthConfig:
    """task=text (cam_repro/data/synth_text.py): scenes with rendered words (class `text`) and
    without (class `no_text`); both classes hold text-like clutter that is not text. Fractions are
    of the image side."""

    words: list[int] = field(default_factory=lambda: [1, 3])  # words per text image, min and max
    word_length: list[int] = field(default_factory=lambda: [3, 7])  # characters per word
    font_size: list[float] = field(default_factory=lambda: [0.14, 0.25])  # text height
    rotation: list[float] = field(default_factory=lambda: [-15.0, 15.0])  # degrees
    clutter: list[int] = field(default_factory=lambda: [1, 3])  # stripes / dot rows per image


@dataclass
class VQASynthConfig:
    """task=vqa (cam_repro/data/synth_vqa.py): scenes of a few objects (shape x colour), each with
    template questions whose answer depends on one object, in the VQA v2 JSON format."""

    train_images: int = 1500  # scenes in the train split
    val_images: int = 300  # scenes in the val split
    objects: list[int] = field(default_factory=lambda: [2, 5])  # objects per image, min and max
    object_side: list[float] = field(default_factory=lambda: [0.18, 0.32])  # min and max
    questions_per_image: int = 3  # questions asked of each scene
    # colour ("what colour is the circle?") | shape ("what shape is the red object?") | count
    question_types: list[str] = field(default_factory=lambda: ["colour", "shape"])


@dataclass
class SynthConfig:
    """`cam-synth` (configs/synth.yaml). Fractions are of the image side."""

    out: str = "data/synthetic"  # the dataset folder to write, in `layout`
    # classes: the localization benchmark | text: text / no text scenes, word boxes (ILSVRC layout)
    # | vqa: scenes with questions and answers (VQA v2 format)
    task: str = "classes"
    layout: str = "ilsvrc"  # ilsvrc (Kaggle ILSVRC layout) | cub (CUB-200-2011's; one box each)
    seed: int = 0  # the same seed and keys write the same images
    num_classes: int = 10  # 2 up to what evidence and body_textures allow
    train_per_class: int = 300  # train images per class (cub: is_training_image 1)
    val_per_class: int = 50  # val images per class (cub: the test images, is_training_image 0)
    image_size: int = 64  # px, square
    evidence: str = "parts"  # parts | uniform | fine
    family: int = 0  # class definitions: 0 the benchmark's; f > 0 the same textures re-combined
    object_side: list[float] = field(default_factory=lambda: [0.4, 1.0])  # box width and height
    two_object_prob: float = 0.15  # images with two objects of the class (sides up to the mean)
    distractors: list[int] = field(default_factory=lambda: [2, 6])  # how many, min and max
    distractor_side: list[float] = field(default_factory=lambda: [0.1, 0.25])  # their sides
    occluders: list[int] = field(default_factory=lambda: [0, 2])  # shapes in front: min and max
    occluder_side: list[float] = field(default_factory=lambda: [0.1, 0.25])  # their sides
    cell_size: int = 8  # px; parts, fine: the body's texture cells
    body_textures: int = 5  # parts, fine: shared body textures; parts: classes are pairs of them
    pair_prob: float = 0.45  # parts: chance of each of the class's two body textures per cell
    # parts, fine: the key part's diameter / sqrt(box area)
    key_part_size: list[float] = field(default_factory=lambda: [0.25, 0.40])
    contrast: list[float] = field(default_factory=lambda: [20.0, 70.0])  # luminance gap, 0-255
    background_noise: float = 12.0  # std of the background's (and occluders') pixel noise, 0-255
    pixel_noise: float = 8.0  # std of the noise over the whole image, 0-255
    jpeg_quality: int = 90  # of the written JPEG images, 1-100
    text: TextSynthConfig = field(default_factory=TextSynthConfig)  # task=text
    vqa: VQASynthConfig = field(default_factory=VQASynthConfig)  # task=vqa
    workers: int = 0  # processes writing images; 0 = one per CPU core
    overwrite: bool = (
        False  # replace an existing `out` (else an existing, non-empty out is an error)
    )


def synth_config(cfg: SynthConfig | Mapping[str, Any] | DictConfig) -> SynthConfig:
    """Validate a generator config (dict, DictConfig or SynthConfig) into a SynthConfig."""
    spec = to_schema(SynthConfig, cfg)
    _validate(spec)
    return spec


def _range(values: list, key: str, lo: float, hi: float) -> None:
    if len(values) != 2 or not lo <= values[0] <= values[1] <= hi:
        raise ConfigError(f"{key} must be [min, max] with {lo} <= min <= max <= {hi}, got {values}")


def _validate(spec: SynthConfig) -> None:
    check_choice(spec.task, "task", TASKS)
    check_choice(spec.evidence, "evidence", EVIDENCE)
    check_choice(spec.layout, "layout", LAYOUTS)
    if spec.image_size < 16:
        raise ConfigError(f"image_size must be >= 16, got {spec.image_size}")
    if spec.train_per_class < 0 or spec.val_per_class < 1:
        raise ConfigError("train_per_class must be >= 0 and val_per_class >= 1")
    pairs = math.comb(spec.body_textures, 2)
    keys = len(TEXTURE_NAMES) - spec.body_textures
    if spec.body_textures < 3:
        raise ConfigError(f"body_textures must be >= 3, got {spec.body_textures}")
    fine = spec.evidence == "fine"  # no body pairs: only the key textures limit the classes
    most = keys if fine else min(pairs, keys)
    if not 2 <= spec.num_classes <= most:
        pairs_left = "" if fine else f"{pairs} body pairs, "
        raise ConfigError(
            f"num_classes must be 2..{most} with evidence={spec.evidence} and "
            f"body_textures={spec.body_textures} ({pairs_left}{keys} key textures left); "
            f"got {spec.num_classes}"
        )
    if not 0 <= spec.family < keys:
        raise ConfigError(
            f"family must be 0..{keys - 1} (family f shifts the {keys} key textures by f), "
            f"got {spec.family}"
        )
    if not 1 / spec.body_textures < spec.pair_prob <= 0.5:
        raise ConfigError(f"pair_prob must be in (1/body_textures, 0.5], got {spec.pair_prob}")
    _range(spec.object_side, "object_side", 0.05, 1.0)
    _range(spec.distractor_side, "distractor_side", 0.0, 1.0)
    _range(spec.occluder_side, "occluder_side", 0.0, 1.0)
    _range(spec.key_part_size, "key_part_size", 0.05, 1.0)
    _range(spec.contrast, "contrast", 1.0, 255.0)
    _range(spec.distractors, "distractors", 0, 50)
    _range(spec.occluders, "occluders", 0, 10)
    if not 0 <= spec.two_object_prob <= 1:
        raise ConfigError(f"two_object_prob must be in [0, 1], got {spec.two_object_prob}")
    if spec.layout == "cub" and spec.two_object_prob != 0:
        raise ConfigError(
            f"two_object_prob must be 0 with layout=cub (CUB has one box per image), "
            f"got {spec.two_object_prob}"
        )
    if spec.cell_size < 2:
        raise ConfigError(f"cell_size must be >= 2, got {spec.cell_size}")
    if not 1 <= spec.jpeg_quality <= 100:
        raise ConfigError(f"jpeg_quality must be 1..100, got {spec.jpeg_quality}")
    if spec.background_noise < 0 or spec.pixel_noise < 0 or spec.workers < 0:
        raise ConfigError("background_noise, pixel_noise and workers must be >= 0")
    if spec.task == "text":
        _validate_text(spec.text)
    elif spec.task == "vqa":
        _validate_vqa(spec.vqa)


QUESTION_TYPES = ("colour", "shape", "count")


def _validate_text(text: TextSynthConfig) -> None:
    _range(text.words, "text.words", 1, 20)
    _range(text.word_length, "text.word_length", 1, 20)
    _range(text.font_size, "text.font_size", 0.03, 1.0)
    _range(text.rotation, "text.rotation", -90.0, 90.0)
    _range(text.clutter, "text.clutter", 0, 20)


def _validate_vqa(vqa: VQASynthConfig) -> None:
    if vqa.train_images < 1 or vqa.val_images < 1 or vqa.questions_per_image < 1:
        raise ConfigError(
            "vqa.train_images, vqa.val_images and vqa.questions_per_image must be >= 1"
        )
    # image ids: train 1..train_images, val from 1_000_001; question ids image_id * 1000 + k
    if vqa.train_images > 1_000_000 or vqa.questions_per_image > 1000:
        raise ConfigError(
            "vqa.train_images must be <= 1000000 (val image ids start at 1000001) and "
            "vqa.questions_per_image <= 1000 (question ids are image_id * 1000 + k)"
        )
    _range(vqa.objects, "vqa.objects", 1, 12)
    _range(vqa.object_side, "vqa.object_side", 0.05, 1.0)
    if not vqa.question_types:
        raise ConfigError(f"vqa.question_types must name at least one of {QUESTION_TYPES}")
    for kind in vqa.question_types:
        check_choice(kind, "vqa.question_types", QUESTION_TYPES)
