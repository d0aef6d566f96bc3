"""The embedded weakly supervised text-detection set (`cam-synth task=text`), after the paper's
Section 4.2: a linear classifier on GAP features separates images with text (350 SVT street-view
images) from images without (SUN scenes), and the CAM of `text` then highlights the words, though
no box was used in training.

Two classes, `no_text` (label 0, wnid n90100000) and `text` (label 1, wnid n90100001). Every scene
is drawn as the localization benchmark draws its own (`SceneRenderer`: the noisy gradient
background, class-neutral distractor shapes behind, plain noisy occluders in front), then:

- clutter, in both classes: `text.clutter` rows of parallel bars (`stripes`) or of dots (`dots`),
  each the size, length, slant and colour contrast of a word, anti-aliased like the font, so that
  small high-contrast edge patterns do not tell the classes apart: the letters' shapes do;
- words, in `text` images only: `text.words` random strings (`text.word_length` characters:
  capitals and digits, capitalised, lower case, or mixed) in Pillow's built-in scalable font
  (Aileron Regular, `ImageFont.load_default(size)`; `text.font_size` of the image side; a third of
  them bold, by a 1-px stroke) rotated by an angle in `text.rotation`, each in a random colour
  whose luminance differs from the scene under it by an amount in `contrast`. Without FreeType,
  Pillow's bitmap font drawn at its 11-px size and scaled with nearest neighbour (bold: drawn
  twice, 1 px apart). Every word lies fully inside the image (one too long for it at its drawn
  size is drawn smaller, down to 4 px, then shortened), and words neither touch nor overlap each
  other's box by more than a quarter (a word that finds no such place in 30 tries is left out; the
  first always has one, so every `text` image has a word).

Occluders fall on words and clutter (an occluder covers part of one of them, chosen at random,
and leaves every one at least half its pixels; with neither in the image, anywhere), so a word
may be partly hidden: its mask is its visible pixels and its box their tight box. A pixel of a
word or of clutter is drawn where its coverage (after the rotation) is at least a quarter, so the
mask is exactly the pixels it changes.

`render_text_scene(spec, label, rng)` is pure: pixels plus the generator's description of every
word and clutter patch. `write_text_set` writes the ILSVRC Kaggle layout with val in class
folders, so the negatives, which have no box, still have a label:

OUT/ILSVRC/Data/CLS-LOC/train/<wnid>/<wnid>_<i>.JPEG
OUT/ILSVRC/Data/CLS-LOC/val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG
OUT/ILSVRC/Annotations/CLS-LOC/val/ILSVRC2012_val_<8 digits>.xml   (an <object> per word; none
                                                                   for no_text images)
OUT/ILSVRC/Masks/CLS-LOC/val/ILSVRC2012_val_<8 digits>.png   (the words' pixels, 0/255)
OUT/LOC_synset_mapping.txt

and no LOC_val_solution.csv (a row cannot hold an image without boxes). Read it back with
`data=synthetic data.root=OUT` (cam_repro.data.imagenet).
"""

from __future__ import annotations

import functools
import math
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont, features
from scipy import ndimage

from cam_repro.data.annotations import voc_xml
from cam_repro.data.synth_config import SynthConfig
from cam_repro.data.synth_writer import Written, _draw, _jpeg
from cam_repro.data.synthetic import SceneRenderer, image_rng, tight_box

NO_TEXT, TEXT = 0, 1
# (wnid, name) by label; n901... stays clear of the classes task's n9000xxxx (family < 100)
CLASSES = (("n90100000", "no text"), ("n90100001", "text"))
CLUTTER_KINDS = ("stripes", "dots")
FREETYPE = features.check("freetype2")
LUMA = np.array([0.299, 0.587, 0.114])
_DRAWN = 64  # coverage (0-255) from which a pixel is drawn: a word's mask is what it changes
_SUPERSAMPLE = 4  # clutter is drawn 4x larger and reduced: anti-aliased edges, as the font's
_MIN_FONT_PX = 4
_PLACE_TRIES = 30
_BITMAP_PX = 11  # the line height of Pillow's bitmap default font
_ALPHABETS = (  # capitals and digits (signs), Capitalised, lower case, mixed
    (string.ascii_uppercase + string.digits,) * 2,
    (string.ascii_uppercase, string.ascii_lowercase),
    (string.ascii_lowercase,) * 2,
    (string.ascii_letters + string.digits,) * 2,
)


@dataclass(eq=False)
class Word:
    """One drawn word, as the generator made it."""

    text: str
    mask: np.ndarray  # (H, W) bool: its visible pixels (drawn, minus the occluders over it)
    box: tuple[int, int, int, int]  # tight box of `mask`, 0-based inclusive
    font_px: int  # the font size it was drawn at
    bold: bool
    angle: float  # degrees, counter-clockwise
    colour: tuple[int, int, int]


@dataclass(eq=False)
class Clutter:
    """One text-like patch that is not text."""

    kind: str  # stripes | dots
    mask: np.ndarray  # (H, W) bool: its visible pixels


@dataclass(eq=False)
class TextScene:
    image: np.ndarray  # (H, W, 3) uint8
    label: int  # NO_TEXT | TEXT
    words: list[Word]  # empty for NO_TEXT
    clutter: list[Clutter]

    @property
    def boxes(self) -> np.ndarray:
        """(k, 4) int64: the words' boxes, 0-based inclusive."""
        return np.array([w.box for w in self.words], dtype=np.int64).reshape(-1, 4)

    @property
    def texts(self) -> list[str]:
        return [w.text for w in self.words]

    @property
    def masks(self) -> np.ndarray:
        """(k, H, W) bool: each word's visible pixels."""
        side = self.image.shape[:2]
        return np.array([w.mask for w in self.words], dtype=bool).reshape(-1, *side)

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: the pixels of every word."""
        return self.masks.any(0)


# -- glyphs: coverage arrays (0-255) cropped to their drawn pixels -------------------------------


@functools.cache
def _font(px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=px)


@functools.cache
def _bitmap_font() -> ImageFont.ImageFont:
    return ImageFont.load_default_imagefont()


def font_description(freetype: bool = FREETYPE) -> str:
    """The fonts the words are drawn in on this machine (synth.json's "text")."""
    if freetype:
        return (
            "Pillow's built-in scalable font, Aileron Regular (FreeType "
            f"{features.version('freetype2')}), at text.font_size; bold: a 1-px stroke"
        )
    return (
        "Pillow's bitmap default font (no FreeType), drawn at 11 px and scaled to text.font_size "
        "with nearest neighbour; bold: drawn twice, 1 px apart"
    )


def _rotated(canvas: Image.Image, angle: float) -> np.ndarray:
    """The coverage of `canvas` ("L") rotated by `angle` degrees, below _DRAWN set to 0, cropped
    to the pixels left: (h, w) uint8, (0, 0) if none."""
    alpha = np.asarray(canvas.rotate(angle, resample=Image.BILINEAR, expand=True))
    alpha = np.where(alpha >= _DRAWN, alpha, 0).astype(np.uint8)
    ys, xs = np.nonzero(alpha)
    if not len(ys):
        return alpha[:0, :0]
    return alpha[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def word_coverage(text: str, px: int, bold: bool, angle: float, freetype: bool) -> np.ndarray:
    """(h, w) uint8: a word drawn at font size `px`, rotated, cropped to its drawn pixels."""
    if freetype:
        font, stroke = _font(px), int(bold)
        left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
        canvas = Image.new("L", (right - left + 2, bottom - top + 2))
        ImageDraw.Draw(canvas).text(
            (1 - left, 1 - top), text, fill=255, font=font, stroke_width=stroke, stroke_fill=255
        )
        return _rotated(canvas, angle)
    font = _bitmap_font()
    left, top, right, bottom = font.getbbox(text)
    canvas = Image.new("L", (right - left + 3, bottom - top + 2))
    draw = ImageDraw.Draw(canvas)
    for dx in (0, 1) if bold else (0,):
        draw.text((1 + dx - left, 1 - top), text, fill=255, font=font)
    scale = px / _BITMAP_PX
    size = (max(1, round(canvas.width * scale)), max(1, round(canvas.height * scale)))
    return _rotated(canvas.resize(size, Image.NEAREST), angle)


def clutter_coverage(
    rng: np.random.Generator, kind: str, px: int, length: int, angle: float
) -> np.ndarray:
    """(h, w) uint8: a row of bars or dots as tall and as long as a word of `length` characters
    at font size `px`, rotated, cropped to its drawn pixels."""
    k = _SUPERSAMPLE
    height = px * rng.uniform(0.6, 0.9)  # a capital's height is ~0.7 of the font size
    span = length * px * rng.uniform(0.45, 0.65)  # Aileron's advance is ~0.55 of the size
    canvas = Image.new("L", (math.ceil(span * k) + 2 * k, math.ceil(height * k) + 2 * k))
    draw = ImageDraw.Draw(canvas)
    if kind == "stripes":  # ~1-2 strokes per character, a stroke's width (~0.1 of the size)
        bars = max(2, round(length * rng.uniform(1.0, 2.0)))
        pitch, width = span / bars, max(1.0, px * rng.uniform(0.08, 0.14))
        for i in range(bars):
            x0, top = k + i * pitch * k, k + height * rng.uniform(0.0, 0.3) * k
            draw.rectangle([x0, top, x0 + width * k - 1, k + height * k - 1], fill=255)
    else:
        dots = max(2, length)
        pitch = span / dots
        diameter = min(height, pitch * rng.uniform(0.4, 0.8))
        y0 = k + (height - diameter) / 2 * k
        for i in range(dots):
            x0 = k + (i * pitch + (pitch - diameter) / 2) * k
            draw.ellipse([x0, y0, x0 + diameter * k - 1, y0 + diameter * k - 1], fill=255)
    return _rotated(canvas.reduce(k), angle)


def _random_text(rng: np.random.Generator, length: int) -> str:
    first, rest = _ALPHABETS[rng.integers(len(_ALPHABETS))]
    chars = [first[rng.integers(len(first))]]
    chars += [rest[i] for i in rng.integers(len(rest), size=length - 1)]
    return "".join(chars)


def _ink(rng: np.random.Generator, under: np.ndarray, contrast: list[float]) -> np.ndarray:
    """A random colour whose luminance differs from `under`'s (3,) by an amount in `contrast`:
    darker or lighter, whichever the 0-255 range allows (either when both do)."""
    lo, hi = contrast
    base = float(under @ LUMA)
    for _ in range(100):
        gap = rng.uniform(lo, hi)
        signs = [s for s in (-1.0, 1.0) if 0 <= base + s * gap <= 255]
        if not signs:
            continue
        target = base + signs[rng.integers(len(signs))] * gap
        colour = rng.uniform(0, 255, 3)
        colour = np.clip(colour + (target - float(colour @ LUMA)), 0, 255)  # luma weights sum 1
        if lo <= abs(float(colour @ LUMA) - base) <= hi:
            return colour.astype(np.float32)
    return np.full(3, 0.0 if base > 127.5 else 255.0, dtype=np.float32)  # the farthest grey


def _apart(mask: np.ndarray, box: tuple[int, ...], other: dict[str, Any]) -> bool:
    """Does a word at `mask` keep off `other`: no pixel touching, boxes overlapping by at most a
    quarter of the smaller one?"""
    if (ndimage.binary_dilation(mask) & other["full"]).any():
        return False
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = box, other["box"]
    w, h = min(ax1, bx1) - max(ax0, bx0) + 1, min(ay1, by1) - max(ay0, by0) + 1
    smaller = min((ax1 - ax0 + 1) * (ay1 - ay0 + 1), (bx1 - bx0 + 1) * (by1 - by0 + 1))
    return w <= 0 or h <= 0 or w * h <= 0.25 * smaller


# -- scenes --------------------------------------------------------------------------------------


class TextSceneRenderer:
    """Draws the text task's scenes of one config (holds the benchmark's renderer)."""

    def __init__(self, spec: SynthConfig, freetype: bool = FREETYPE) -> None:
        self.spec = spec
        self.size = spec.image_size
        self.freetype = freetype
        self.scenes = SceneRenderer(spec)  # background, distractors, occluders

    def _font_px(self, rng: np.random.Generator) -> int:
        return max(_MIN_FONT_PX, round(rng.uniform(*self.spec.text.font_size) * self.size))

    def _length(self, rng: np.random.Generator) -> int:
        lo, hi = self.spec.text.word_length
        return int(rng.integers(lo, hi + 1))

    def _word(self, rng: np.random.Generator) -> tuple[str, int, bool, float, np.ndarray]:
        """A random word and its coverage, made to fit the image: drawn smaller, then shorter."""
        text = _random_text(rng, self._length(rng))
        px, bold = self._font_px(rng), bool(rng.uniform() < 1 / 3)
        angle = float(rng.uniform(*self.spec.text.rotation))
        alpha = word_coverage(text, px, bold, angle, self.freetype)
        while max(alpha.shape) > self.size:
            if px > _MIN_FONT_PX:
                px = max(_MIN_FONT_PX, min(px - 1, math.floor(px * self.size / max(alpha.shape))))
            else:
                text = text[:-1]
            alpha = word_coverage(text, px, bold, angle, self.freetype)
        return text, px, bold, angle, alpha

    def _clutter(self, rng: np.random.Generator) -> tuple[str, np.ndarray]:
        """A random clutter patch and its coverage, made to fit the image as a word is."""
        kind = CLUTTER_KINDS[rng.integers(len(CLUTTER_KINDS))]
        px, length = self._font_px(rng), self._length(rng)
        angle = float(rng.uniform(*self.spec.text.rotation))
        alpha = clutter_coverage(rng, kind, px, length, angle)
        while max(alpha.shape) > self.size and (px > _MIN_FONT_PX or length > 1):
            if px > _MIN_FONT_PX:
                px = max(_MIN_FONT_PX, min(px - 1, math.floor(px * self.size / max(alpha.shape))))
            else:
                length -= 1
            alpha = clutter_coverage(rng, kind, px, length, angle)
        return kind, alpha

    def _at(self, rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
        """`alpha` (h, w) at a random place fully inside the image: (H, W) float32 in 0..1."""
        h, w = alpha.shape
        y, x = rng.integers(0, self.size - h + 1), rng.integers(0, self.size - w + 1)
        cover = np.zeros((self.size, self.size), dtype=np.float32)
        cover[y : y + h, x : x + w] = alpha / 255.0
        return cover

    def _colour(self, rng: np.random.Generator, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return _ink(rng, image[mask].mean(0), self.spec.contrast)

    def _words(self, rng: np.random.Generator, image: np.ndarray) -> list[dict[str, Any]]:
        """The words of a text image, placed and coloured (not drawn yet)."""
        lo, hi = self.spec.text.words
        words: list[dict[str, Any]] = []
        for _ in range(rng.integers(lo, hi + 1)):
            text, px, bold, angle, alpha = self._word(rng)
            if not alpha.size:
                continue
            for _ in range(_PLACE_TRIES):
                cover = self._at(rng, alpha)
                mask = cover > 0
                box = tight_box(mask)
                if all(_apart(mask, box, w) for w in words):
                    break
            else:
                continue
            colour = self._colour(rng, image, mask)
            words.append(
                dict(
                    text=text,
                    px=px,
                    bold=bold,
                    angle=angle,
                    cover=cover,
                    colour=colour,
                    full=mask,
                    visible=mask.copy(),
                    box=box,
                    key=None,
                )
            )
        return words

    def render(self, label: int, rng: np.random.Generator, draw_words: bool = True) -> TextScene:
        """One scene of class `label`. `draw_words=False`: the same scene (every random draw
        alike) with its words left unpainted: what the words cover."""
        spec, scenes = self.spec, self.scenes
        image = scenes._background(rng)
        for _ in range(rng.integers(spec.distractors[0], spec.distractors[1] + 1)):
            _, mask = scenes._placed_mask(rng, spec.distractor_side)
            texture = np.full(mask.shape, rng.integers(spec.body_textures))
            scenes._paint(image, mask, texture, scenes._colours(rng), rng)
        clutter = []
        for _ in range(rng.integers(spec.text.clutter[0], spec.text.clutter[1] + 1)):
            kind, alpha = self._clutter(rng)
            if not alpha.size:  # too small to leave a drawn pixel
                continue
            cover = self._at(rng, alpha)
            mask = cover > 0
            _blend(image, cover, self._colour(rng, image, mask))
            clutter.append(dict(kind=kind, visible=mask, key=None))
        # Every word's colour is against the scene before any word: drawn or not, the same draws.
        words = self._words(rng, image) if label == TEXT else []
        for word in words:
            if draw_words:
                _blend(image, word["cover"], word["colour"])
            for patch in clutter:
                patch["visible"] &= ~word["full"]
        for patch in clutter:
            patch["full"] = patch["visible"].copy()
        targets = [d for d in words + clutter if d["visible"].any()]
        if not targets:  # nothing to hide: an occluder anywhere
            everywhere = np.ones((self.size, self.size), dtype=bool)
            targets = [dict(visible=everywhere, full=everywhere, key=None)]
        for _ in range(rng.integers(spec.occluders[0], spec.occluders[1] + 1)):
            scenes._occlude(rng, image, targets)
        image += rng.normal(0, spec.pixel_noise, image.shape).astype(np.float32)
        pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        return TextScene(
            pixels,
            label,
            [_described(w) for w in words],
            [Clutter(c["kind"], c["visible"]) for c in clutter],
        )


def _described(word: dict[str, Any]) -> Word:
    visible, colour = word["visible"], np.rint(word["colour"]).astype(int).tolist()
    return Word(
        word["text"],
        visible,
        tight_box(visible),
        word["px"],
        word["bold"],
        word["angle"],
        tuple(colour),  # type: ignore[arg-type]
    )


def _blend(image: np.ndarray, cover: np.ndarray, colour: np.ndarray) -> None:
    """Paint `colour` over `image` (H, W, 3) float32 with coverage `cover` (H, W) in 0..1."""
    a = cover[..., None]
    image *= 1 - a
    image += a * colour


def render_text_scene(
    spec: SynthConfig, label: int, rng: np.random.Generator, draw_words: bool = True
) -> TextScene:
    """One scene of class `label` (NO_TEXT or TEXT); see the module docstring."""
    return TextSceneRenderer(spec).render(label, rng, draw_words)


# -- on disk -------------------------------------------------------------------------------------


def _write_text_chunk(
    spec: SynthConfig, root: str, split: str, jobs: list[tuple[int, int]]
) -> list[int]:
    """Draw and write images [(index, label), ...] of one split; val returns their word counts."""
    renderer = TextSceneRenderer(spec)
    base = Path(root, "ILSVRC")
    counts = []
    for index, label in jobs:
        scene = renderer.render(label, image_rng(spec.seed, split, index))
        wnid = CLASSES[label][0]
        jpeg = _jpeg(scene.image, spec.jpeg_quality)
        if split == "train":
            name = f"{wnid}_{index % spec.train_per_class}.JPEG"
            (base / "Data/CLS-LOC/train" / wnid / name).write_bytes(jpeg)
            continue
        image_id = f"ILSVRC2012_val_{index:08d}"
        (base / "Data/CLS-LOC/val" / wnid / f"{image_id}.JPEG").write_bytes(jpeg)
        size = (spec.image_size, spec.image_size)
        wnids = [CLASSES[TEXT][0]] * len(scene.words)
        xml = voc_xml(image_id, "val", size, wnids, scene.boxes)
        (base / "Annotations/CLS-LOC/val" / f"{image_id}.xml").write_text(xml)
        mask = Image.fromarray(scene.mask.astype(np.uint8) * 255)
        mask.save(base / "Masks/CLS-LOC/val" / f"{image_id}.png", optimize=False)
        counts.append(len(scene.words))
    return counts


def write_text_set(spec: SynthConfig, tmp: Path) -> Written:
    """task=text: the text / no-text set under `tmp` (see the module docstring)."""
    base = tmp / "ILSVRC"
    for wnid, _ in CLASSES:
        (base / "Data/CLS-LOC/train" / wnid).mkdir(parents=True)
        (base / "Data/CLS-LOC/val" / wnid).mkdir(parents=True)
    for sub in ("Annotations/CLS-LOC/val", "Masks/CLS-LOC/val"):
        (base / sub).mkdir(parents=True)
    # (index, label): the image's generator is image_rng(seed, split, index)
    train = [
        (label * spec.train_per_class + i, label)
        for label in range(len(CLASSES))
        for i in range(spec.train_per_class)
    ]
    labels = np.repeat(np.arange(len(CLASSES)), spec.val_per_class)
    shuffled = np.random.default_rng([spec.seed, 2]).permutation(labels)
    val = [(i + 1, int(label)) for i, label in enumerate(shuffled)]
    counts = _draw(spec, tmp, _write_text_chunk, train, val)
    (tmp / "LOC_synset_mapping.txt").write_text("".join(f"{w} {n}\n" for w, n in CLASSES))
    info = {
        "classes": [{"wnid": w, "name": n} for w, n in CLASSES],
        "text": font_description(),
    }
    return Written(len(train), len(val), sum(counts), info)
