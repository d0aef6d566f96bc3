"""The embedded synthetic localization benchmark: scenes drawn in numpy, one class per image.

Design and reasons: docs/synthetic.md (from measurements in the project's design notes).
`evidence="parts"` (default): a class-neutral shape (ellipse, rectangle, blob) tiled in cells, each
cell drawing one of a few body textures shared by every class; a class is a pair of them that
together dominate (`pair_prob` each), so no single cell decides the class, plus one small key part
(disc or square) with a texture unique to the class. `evidence="uniform"`: the same scenes with the
class's own texture over the whole object and no key part. `evidence="fine"` (fine-grained, the
CUB-like design): every class has the same body (each cell draws any body texture alike), so only
the key part tells the classes apart. All: random colours per instance, objects of widely varying
size, some images with two objects of the class, class-neutral distractors (behind) and occluders
(in front) on a noisy gradient. `family` picks the class definitions: family 0 is the benchmark's,
family f > 0 re-combines the same textures into new classes (a transfer test, not a domain shift).
Everything here is pure: `SceneRenderer(spec).render(label, rng)` returns pixels plus the
generator's own description of every object; `synth_writer` puts scenes on disk; the config's
schema and checks are `data.synth_config`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from cam_repro.data.synth_config import SynthConfig
from cam_repro.data.textures import MAX_PHASE, TEXTURE_NAMES, texture_bank

SHAPES = ("ellipse", "rectangle", "blob")
# Synthetic wnids n90000000, n90000001, ... (real ones start at n0...); class c of family f is
# WNID_BASE + 1000 f + c (family 1: n90001000, n90001001, ...).
WNID_BASE = 90000000


@dataclass(frozen=True)
class ClassDesign:
    """What makes a class: its wnid, its body texture pair and its key texture."""

    wnid: str
    name: str
    body_pair: tuple[int, ...]  # two indices into TEXTURE_NAMES; fine: () (a shared body)
    key_texture: int
    cell_probs: tuple[float, ...]  # per body texture, the chance a cell draws it


@dataclass(eq=False)
class KeyPart:
    shape: str  # disc | square
    texture: int
    box: tuple[int, int, int, int]  # 0-based inclusive
    mask: np.ndarray  # (H, W) bool


@dataclass(eq=False)
class SynthObject:
    """One drawn object, as the generator made it. `mask` is its visible pixels."""

    shape: str
    mask: np.ndarray  # (H, W) bool, after the objects and occluders drawn over it
    box: tuple[int, int, int, int]  # tight box of `mask`, 0-based inclusive
    textures: tuple[int, ...]  # every texture on its visible pixels (body and key part)
    body_textures: tuple[int, ...]  # the textures of its visible body (outside the key part)
    cell_textures: np.ndarray | None  # parts, fine: (rows, cols) texture per cell; uniform: None
    key_part: KeyPart | None  # parts, fine: the class key part; uniform: None
    colours: tuple[tuple[int, int, int], tuple[int, int, int]]


@dataclass(eq=False)
class Scene:
    image: np.ndarray  # (H, W, 3) uint8
    label: int
    objects: list[SynthObject]

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: the pixels of the class's objects (the foreground)."""
        return np.logical_or.reduce([o.mask for o in self.objects])

    @property
    def boxes(self) -> np.ndarray:
        return np.array([o.box for o in self.objects], dtype=np.int64).reshape(-1, 4)


def class_designs(spec: SynthConfig) -> list[ClassDesign]:
    """Class c of family f: the c-th pair of body textures (in `itertools.combinations` order) and
    key texture body_textures + (c + f) mod K, of the K textures after the body's. Family f > 0
    thus keeps family 0's body pairs and gives each one another key texture: no class of it has
    the (body pair, key texture) of a family-0 class, nor the key texture of the family-0 class
    with its body pair. With evidence=fine every class has the same body (each cell draws every
    body texture alike) and differs only in its key texture; there, as with uniform, family f's
    classes are family 0's key textures shifted by f (a relabelling more than new classes)."""
    n = spec.body_textures
    keys = len(TEXTURE_NAMES) - n
    other = (1.0 - 2 * spec.pair_prob) / (n - 2)
    pairs = itertools.combinations(range(n), 2)
    family = f"family {spec.family} class" if spec.family else "class"
    designs = []
    for c in range(spec.num_classes):
        key = n + (c + spec.family) % keys
        if spec.evidence == "fine":
            pair, probs, body = (), (1.0 / n,) * n, "shared body"
        else:
            pair = next(pairs)
            probs = tuple(spec.pair_prob if t in pair else other for t in range(n))
            body = f"body {TEXTURE_NAMES[pair[0]]}+{TEXTURE_NAMES[pair[1]]}"
        name = f"synthetic {family} {c}: {body}, key part {TEXTURE_NAMES[key]}"
        wnid = f"n{WNID_BASE + 1000 * spec.family + c:08d}"
        designs.append(ClassDesign(wnid, name, pair, key, probs))
    return designs


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one image: independent of every other, so images can be drawn in any order
    or process and still come out identical."""
    return np.random.default_rng([seed, {"train": 0, "val": 1}[split], index])


class SceneRenderer:
    """Draws scenes of one config (holds the texture bank and pixel grids)."""

    def __init__(self, spec: SynthConfig) -> None:
        self.spec = spec
        self.size = spec.image_size
        self.bank = texture_bank(self.size)  # (T, S + MAX_PHASE, S + MAX_PHASE)
        self.designs = class_designs(spec)
        self.yy, self.xx = np.mgrid[0 : self.size, 0 : self.size]
        self.centres_y, self.centres_x = self.yy + 0.5, self.xx + 0.5

    # -- shapes -----------------------------------------------------------------------------
    def _sides(self, rng: np.random.Generator, lo_hi: list[float]) -> tuple[float, float]:
        lo, hi = lo_hi
        return rng.uniform(lo, hi) * self.size, rng.uniform(lo, hi) * self.size

    def _shape_mask(
        self, rng: np.random.Generator, shape: str, w: float, h: float, cx: float, cy: float
    ) -> np.ndarray:
        u = (self.centres_x - cx) / (w / 2)
        v = (self.centres_y - cy) / (h / 2)
        if shape == "rectangle":
            return (np.abs(u) <= 1) & (np.abs(v) <= 1)
        if shape == "ellipse":
            return u * u + v * v <= 1
        # blob: a wobbly ellipse, radius 1 + sum_k a_k cos(k theta + phi_k), scaled to fit the box
        amps, phases = rng.uniform(0.0, 0.12, 3), rng.uniform(0, 2 * np.pi, 3)
        theta = np.arctan2(v, u)
        k = np.arange(2, 5)[:, None, None]
        radius = 1 + (amps[:, None, None] * np.cos(k * theta + phases[:, None, None])).sum(0)
        return np.sqrt(u * u + v * v) <= radius / (1 + amps.sum())

    def _placed_mask(
        self, rng: np.random.Generator, lo_hi: list[float], shapes: tuple[str, ...] = SHAPES
    ) -> tuple[str, np.ndarray]:
        """A shape of random sides (fractions lo_hi of the image), fully inside the image."""
        w, h = self._sides(rng, lo_hi)
        cx, cy = rng.uniform(w / 2, self.size - w / 2), rng.uniform(h / 2, self.size - h / 2)
        shape = shapes[rng.integers(len(shapes))]
        mask = self._shape_mask(rng, shape, w, h, cx, cy)
        if not mask.any():  # a shape thinner than a pixel: keep its centre pixel
            mask[min(int(cy), self.size - 1), min(int(cx), self.size - 1)] = True
        return shape, mask

    # -- paint --------------------------------------------------------------------------------
    def _colours(self, rng: np.random.Generator) -> np.ndarray:
        """Two random colours whose luminance differs by an amount in `contrast`."""
        luma = np.array([0.299, 0.587, 0.114])
        lo, hi = self.spec.contrast
        for _ in range(100):
            first = rng.uniform(0, 255, 3)
            step = rng.normal(0, 1, 3)
            step *= rng.uniform(lo, hi) / max(abs(float(step @ luma)), 1e-3)
            second = np.clip(first + step, 0, 255)
            if lo <= abs(float((second - first) @ luma)) <= hi:
                break
        return np.stack([first, second]).astype(np.float32)

    def _paint(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        texture_map: np.ndarray,
        colours: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        """Paint the pixels of `mask` with per-pixel textures `texture_map` in two colours."""
        py, px = rng.integers(0, MAX_PHASE, 2)
        ys, xs = np.nonzero(mask)
        pattern = self.bank[texture_map[ys, xs], ys + py, xs + px][:, None]  # (n, 1) 0/1
        image[ys, xs] = colours[0] + pattern * (colours[1] - colours[0])

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        a, b = rng.uniform(0, 255, (2, 3)).astype(np.float32)
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * self.centres_x + np.sin(angle) * self.centres_y) / self.size
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        image = a + t[..., None].astype(np.float32) * (b - a)
        return image + rng.normal(0, self.spec.background_noise, image.shape).astype(np.float32)

    # -- objects ------------------------------------------------------------------------------
    def _object_textures(
        self, rng: np.random.Generator, design: ClassDesign, mask: np.ndarray, shape: str
    ) -> tuple[np.ndarray, np.ndarray | None, KeyPart | None]:
        """Per-pixel texture ids of an object, its cell grid and its key part (parts, fine)."""
        spec = self.spec
        if spec.evidence == "uniform":
            return np.full(mask.shape, design.key_texture), None, None
        ys, xs = np.nonzero(mask)
        oy, ox = ys.min(), xs.min()
        cell = spec.cell_size
        rows, cols = (ys.max() - oy) // cell + 1, (xs.max() - ox) // cell + 1
        cells = rng.choice(spec.body_textures, size=(rows, cols), p=design.cell_probs)
        texture_map = np.full(mask.shape, -1)
        texture_map[ys, xs] = cells[(ys - oy) // cell, (xs - ox) // cell]
        # The key part: a disc or square, diameter key_part_size * sqrt(box area), inside the body.
        side = math.sqrt(float(xs.max() - xs.min() + 1) * float(ys.max() - ys.min() + 1))
        diameter = rng.uniform(*spec.key_part_size) * side
        depth = ndimage.distance_transform_edt(mask)
        inside = np.flatnonzero(depth >= diameter / 2)
        where = inside[rng.integers(len(inside))] if len(inside) else int(np.argmax(depth))
        cy, cx = divmod(where, self.size)
        key_shape = ("disc", "square")[rng.integers(2)]
        dy, dx = self.centres_y - (cy + 0.5), self.centres_x - (cx + 0.5)
        if key_shape == "disc":
            key = dy * dy + dx * dx <= (diameter / 2) ** 2
        else:
            key = (np.abs(dy) <= diameter / 2) & (np.abs(dx) <= diameter / 2)
        key &= mask
        key[cy, cx] = True
        texture_map[key] = design.key_texture
        return texture_map, cells, KeyPart(key_shape, design.key_texture, tight_box(key), key)

    def render(self, label: int, rng: np.random.Generator) -> Scene:
        """One scene of class `label`."""
        spec, design = self.spec, self.designs[label]
        image = self._background(rng)
        for _ in range(rng.integers(spec.distractors[0], spec.distractors[1] + 1)):
            _, mask = self._placed_mask(rng, spec.distractor_side)
            texture = np.full(mask.shape, rng.integers(spec.body_textures))
            self._paint(image, mask, texture, self._colours(rng), rng)
        drawn: list[dict[str, Any]] = []
        count = 2 if rng.uniform() < spec.two_object_prob else 1
        lo, hi = spec.object_side
        sides = [lo, (lo + hi) / 2] if count == 2 else [lo, hi]
        for _ in range(count):
            shape, mask, ok = self._free_place(rng, sides, drawn)
            if not ok:
                break
            texture_map, cells, key = self._object_textures(rng, design, mask, shape)
            colours = self._colours(rng)
            self._paint(image, mask, texture_map, colours, rng)
            for prev in drawn:
                prev["visible"] &= ~mask
            drawn.append(
                dict(
                    shape=shape,
                    full=mask,
                    visible=mask.copy(),
                    textures=texture_map,
                    cells=cells,
                    key=key,
                    colours=colours,
                )
            )
        for _ in range(rng.integers(spec.occluders[0], spec.occluders[1] + 1)):
            self._occlude(rng, image, drawn)
        image += rng.normal(0, spec.pixel_noise, image.shape).astype(np.float32)
        pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        return Scene(pixels, label, [_describe(d) for d in drawn])

    def _free_place(
        self, rng: np.random.Generator, sides: list[float], drawn: list[dict[str, Any]]
    ) -> tuple[str, np.ndarray, bool]:
        """Place a new object so that each earlier one keeps half its pixels and its key part."""
        for _ in range(30):
            shape, mask = self._placed_mask(rng, sides)
            if all(_keeps(d, mask) for d in drawn):
                return shape, mask, True
        return shape, mask, False

    def _occlude(
        self, rng: np.random.Generator, image: np.ndarray, drawn: list[dict[str, Any]]
    ) -> None:
        """A plain noisy shape over part of an object, never over its key part or most of it."""
        target = drawn[rng.integers(len(drawn))]
        ys, xs = np.nonzero(target["visible"])
        for _ in range(10):
            w, h = self._sides(rng, self.spec.occluder_side)
            i = rng.integers(len(ys))
            mask = self._shape_mask(
                rng,
                "ellipse" if rng.uniform() < 0.5 else "rectangle",
                w,
                h,
                xs[i] + 0.5,
                ys[i] + 0.5,
            )
            if all(_keeps(d, mask) for d in drawn):
                break
        else:
            return
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        noise = rng.normal(0, self.spec.background_noise, (int(mask.sum()), 3))
        image[mask] = colour + noise.astype(np.float32)
        for d in drawn:
            d["visible"] &= ~mask


def _keeps(drawn: dict[str, Any], cover: np.ndarray) -> bool:
    """Would `drawn` keep its key part and at least half of its pixels under `cover`?"""
    key = drawn["key"]
    if key is not None and (key.mask & cover).any():
        return False
    return (drawn["visible"] & ~cover).sum() >= 0.5 * drawn["full"].sum()


def tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The 0-based inclusive box (x0, y0, x1, y1) of a mask's pixels (the mask is not empty)."""
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def _describe(d: dict[str, Any]) -> SynthObject:
    visible, textures, key = d["visible"], d["textures"], d["key"]
    body = visible & ~key.mask if key is not None else visible
    return SynthObject(
        shape=d["shape"],
        mask=visible,
        box=tight_box(visible),
        textures=tuple(sorted({int(t) for t in np.unique(textures[visible])})),
        body_textures=tuple(sorted({int(t) for t in np.unique(textures[body])})),
        cell_textures=d["cells"],
        key_part=key,
        colours=tuple(tuple(int(c) for c in col) for col in d["colours"]),  # type: ignore[arg-type]
    )
