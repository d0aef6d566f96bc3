"""cam-synth task=vqa: scenes of a few flat-coloured shapes with template questions whose answer
depends on one object, in VQA v2's on-disk format (read by cam_repro.data.vqa), for the paper's
Section 4.2 (the CAM of the predicted answer should fall on the object the question is about):

OUT/train2014/COCO_train2014_<12-digit image id>.jpg         image ids 1..train_images
OUT/val2014/COCO_val2014_<12-digit image id>.jpg             image ids 1000001.. (distinct)
OUT/v2_OpenEnded_mscoco_<subtype>_questions.json             VQA v2's keys; question ids are
OUT/v2_mscoco_<subtype>_annotations.json                     image_id * 1000 + k, as VQA's
OUT/targets_<subtype>.csv    ours, not VQA's: question_id,x0,y0,x1,y1, the box of the object the
                             answer depends on (0-based inclusive; empty cells: count questions)

A scene: `vqa.objects` (2-5) objects on SceneRenderer's noisy gradient background, each a shape
(circle, square, triangle, cross) in a named colour (COLOURS, 6 far apart in RGB; each object's
colour jittered by up to +-15 per channel), side `vqa.object_side` (0.18-0.32) of the image, their
boxes at least one pixel apart, so that no object hides another (a target box is the tight box of
all its pixels). Shape and colour are drawn uniformly per object; if the draw leaves fewer distinct
questions than `vqa.questions_per_image`, it is drawn again (up to 20 times), which keeps every
answer equally likely (the redraw rule does not prefer any colour or shape).

Questions (`vqa.question_types`): colour "What colour is the <shape>?" (asked only about an object
whose shape is unique in the image; answer its colour), shape "What shape is the <colour> object?"
(an object whose colour is unique; answer its shape), count "How many <shape>s are there?" (any of
the 4 shapes, answer "0".."12"; no target object: empty cells in targets_<subtype>.csv). Each
question picks its type uniformly among the types with a question left to ask, then its target
uniformly among the objects it can ask about; while some object that can be asked about has not
been, only such objects (and counts) are considered. No question is asked twice, so an image whose
objects allow fewer distinct questions gets fewer. Every annotation has 10 identical annotator
answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cam_repro.data.synth_config import SynthConfig
from cam_repro.data.synth_writer import Written, _draw, _jpeg
from cam_repro.data.synthetic import SceneRenderer, image_rng, tight_box
from cam_repro.data.vqa import (
    TARGETS_HEADER,
    Box,
    annotations_file,
    image_file,
    questions_file,
    targets_file,
)

# Well apart in RGB (>= 150 between any two), so that the jitter and noise never make one another.
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 90, 230),
    "yellow": (240, 210, 40),
    "white": (240, 240, 240),
    "black": (25, 25, 25),
}
SHAPES = ("circle", "square", "triangle", "cross")
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "cross": "crosses"}
TEMPLATES = {
    "colour": "What colour is the {shape}?",
    "shape": "What shape is the {colour} object?",
    "count": "How many {shapes} are there?",
}
SUBTYPES = {"train": "train2014", "val": "val2014"}
FIRST_VAL_IMAGE_ID = 1_000_001
COLOUR_JITTER = 15.0  # per channel, uniform
ANNOTATORS = 10
_PLACE_TRIES = 100  # per object; an object that finds no room is left out
_ATTRIBUTE_DRAWS = 20
_INFO = {
    "description": "cam-repro synthetic VQA (cam-synth task=vqa), in the format of VQA v2.0",
    "url": "https://visualqa.org",
    "version": "2.0",
}
_LICENSE = {"name": "generated data, no license restrictions", "url": ""}


@dataclass(eq=False)
class VQAObject:
    shape: str  # one of SHAPES
    colour: str  # a name of COLOURS
    mask: np.ndarray  # (H, W) bool: its pixels (objects never overlap, so all visible)
    box: Box  # tight box of `mask`, 0-based inclusive


@dataclass(frozen=True)
class VQAQuestion:
    text: str
    answer: str
    kind: str  # colour | shape | count
    target: int | None  # index of the object the answer depends on; count: None
    box: Box | None  # that object's box


@dataclass(eq=False)
class VQAScene:
    image: np.ndarray  # (H, W, 3) uint8
    objects: list[VQAObject]
    questions: list[VQAQuestion]


def render_vqa_scene(
    spec: SynthConfig, rng: np.random.Generator, renderer: SceneRenderer | None = None
) -> VQAScene:
    """One scene with its questions (see the module docstring). `renderer`: a SceneRenderer of
    `spec` to reuse (it holds the pixel grids); None: one is made."""
    renderer = renderer or SceneRenderer(spec)
    vqa = spec.vqa
    image = renderer._background(rng)  # (H, W, 3) float32
    places = _place(rng, spec.image_size, vqa.objects, vqa.object_side)
    kinds = list(dict.fromkeys(vqa.question_types))
    for _ in range(_ATTRIBUTE_DRAWS):
        shapes = [SHAPES[i] for i in rng.integers(len(SHAPES), size=len(places))]
        colours = [list(COLOURS)[i] for i in rng.integers(len(COLOURS), size=len(places))]
        if len(_askable(shapes, colours, kinds)) >= vqa.questions_per_image:
            break
    objects = []
    for (side, cx, cy), shape, colour in zip(places, shapes, colours, strict=True):
        mask = _shape_mask(renderer, rng, shape, side, cx, cy)
        rgb = np.array(COLOURS[colour]) + rng.uniform(-COLOUR_JITTER, COLOUR_JITTER, 3)
        image[mask] = np.clip(rgb, 0, 255).astype(np.float32)
        objects.append(VQAObject(shape, colour, mask, tight_box(mask)))
    image += rng.normal(0, spec.pixel_noise, image.shape).astype(np.float32)
    pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return VQAScene(pixels, objects, _ask(objects, kinds, vqa.questions_per_image, rng))


def _place(
    rng: np.random.Generator, size: int, count: list[int], side: list[float]
) -> list[tuple[float, float, float]]:
    """(side, cx, cy) of each object, in pixels: fully inside the image, and the pixel boxes that
    hold their shapes at least one pixel apart."""
    places: list[tuple[float, float, float]] = []
    boxes: list[Box] = []
    for _ in range(rng.integers(count[0], count[1] + 1)):
        for _ in range(_PLACE_TRIES):
            s = rng.uniform(*side) * size
            cx, cy = rng.uniform(s / 2, size - s / 2, 2)
            # every pixel whose centre lies in [c - s/2, c + s/2] (and the centre pixel)
            box = (
                int(np.floor(cx - s / 2)),
                int(np.floor(cy - s / 2)),
                int(np.ceil(cx + s / 2)) - 1,
                int(np.ceil(cy + s / 2)) - 1,
            )
            if all(_apart(box, other) for other in boxes):
                places.append((s, cx, cy))
                boxes.append(box)
                break
    return places


def _apart(a: Box, b: Box) -> bool:
    """Is there an empty row or column between the two boxes?"""
    return a[2] + 1 < b[0] or b[2] + 1 < a[0] or a[3] + 1 < b[1] or b[3] + 1 < a[1]


def _shape_mask(
    renderer: SceneRenderer, rng: np.random.Generator, shape: str, side: float, cx: float, cy: float
) -> np.ndarray:
    """(H, W) bool: `shape` of width and height `side` centred at (cx, cy)."""
    if shape in ("circle", "square"):
        kind = "ellipse" if shape == "circle" else "rectangle"
        mask = renderer._shape_mask(rng, kind, side, side, cx, cy)
    else:
        u = (renderer.centres_x - cx) / (side / 2)  # -1..1 across the box
        v = (renderer.centres_y - cy) / (side / 2)
        if shape == "triangle":  # apex at the top, base at the bottom
            mask = (np.abs(u) <= (v + 1) / 2) & (v <= 1)
        else:  # cross: two bars a third of the side wide
            au, av = np.abs(u), np.abs(v)
            mask = ((au <= 1 / 3) & (av <= 1)) | ((av <= 1 / 3) & (au <= 1))
    if not mask.any():  # a shape thinner than a pixel: its centre pixel
        mask[min(int(cy), renderer.size - 1), min(int(cx), renderer.size - 1)] = True
    return mask


def _askable(
    shapes: list[str], colours: list[str], kinds: list[str]
) -> list[tuple[str, int | str]]:
    """Every distinct question the objects allow: (kind, object index), or ("count", shape)."""
    out: list[tuple[str, int | str]] = []
    for kind in kinds:
        if kind == "colour":  # the object must be the only one of its shape
            out += [(kind, i) for i, s in enumerate(shapes) if shapes.count(s) == 1]
        elif kind == "shape":  # the only one of its colour
            out += [(kind, i) for i, c in enumerate(colours) if colours.count(c) == 1]
        else:
            out += [(kind, s) for s in SHAPES]
    return out


def _ask(
    objects: list[VQAObject], kinds: list[str], count: int, rng: np.random.Generator
) -> list[VQAQuestion]:
    """Up to `count` distinct questions, each about an object no earlier one was about while
    there is such an object to ask about: a type uniformly among those with a question left,
    then its target uniformly."""
    left = _askable([o.shape for o in objects], [o.colour for o in objects], kinds)
    asked_about: set[int | str] = set()
    questions = []
    while left and len(questions) < count:
        fresh = [(kind, key) for kind, key in left if key not in asked_about] or left
        open_kinds = list(dict.fromkeys(kind for kind, _ in fresh))
        kind = open_kinds[rng.integers(len(open_kinds))]
        keys = [key for k, key in fresh if k == kind]
        key = keys[rng.integers(len(keys))]
        left.remove((kind, key))
        if isinstance(key, str):  # count: how many of shape `key`
            n = sum(o.shape == key for o in objects)
            text = TEMPLATES[kind].format(shapes=PLURALS[key])
            questions.append(VQAQuestion(text, str(n), kind, None, None))
            continue
        obj = objects[key]
        asked_about.add(key)
        if kind == "colour":
            text, answer = TEMPLATES[kind].format(shape=obj.shape), obj.colour
        else:
            text, answer = TEMPLATES[kind].format(colour=obj.colour), obj.shape
        questions.append(VQAQuestion(text, answer, kind, key, obj.box))
    return questions


# -- on disk ---------------------------------------------------------------------------------

# One question as written: (split, question id, image id, text, answer, kind, box or None)
Row = tuple[str, int, int, str, str, str, Box | None]


def _write_vqa_chunk(
    spec: SynthConfig, root: str, split: str, jobs: list[tuple[int, int]]
) -> list[Row]:
    """Draw and write images [(index, image id), ...] of one split; return their questions."""
    renderer = SceneRenderer(spec)
    subtype = SUBTYPES[split]
    rows: list[Row] = []
    for index, image_id in jobs:
        scene = render_vqa_scene(spec, image_rng(spec.seed, split, index), renderer)
        Path(root, image_file(subtype, image_id)).write_bytes(_jpeg(scene.image, spec.jpeg_quality))
        for k, q in enumerate(scene.questions):
            rows.append((split, image_id * 1000 + k, image_id, q.text, q.answer, q.kind, q.box))
    return rows


def _questions_json(subtype: str, rows: list[Row]) -> dict:
    questions = [
        {"image_id": image, "question": text, "question_id": qid}
        for _, qid, image, text, *_ in rows
    ]
    return {
        "info": _INFO,
        "task_type": "Open-Ended",
        "data_type": "mscoco",
        "license": _LICENSE,
        "data_subtype": subtype,
        "questions": questions,
    }


def _annotations_json(subtype: str, rows: list[Row]) -> dict:
    annotations = [
        {
            "question_type": kind,
            "multiple_choice_answer": answer,
            "answers": [
                {"answer": answer, "answer_confidence": "yes", "answer_id": j}
                for j in range(1, ANNOTATORS + 1)
            ],
            "image_id": image,
            "answer_type": "number" if kind == "count" else "other",
            "question_id": qid,
        }
        for _, qid, image, _, answer, kind, _ in rows
    ]
    return {"info": _INFO, "license": _LICENSE, "data_subtype": subtype, "annotations": annotations}


def _targets_csv(rows: list[Row]) -> str:
    lines = [",".join(TARGETS_HEADER)]
    for _, qid, *_, box in rows:
        lines.append(f"{qid},{','.join(map(str, box)) if box is not None else ',,,'}")
    return "\n".join(lines) + "\n"


def write_vqa_set(spec: SynthConfig, tmp: Path) -> Written:
    """task=vqa under `tmp` (see the module docstring); val_objects: the val questions with a
    target box."""
    for subtype in SUBTYPES.values():
        (tmp / subtype).mkdir()
    train = [(i, i + 1) for i in range(spec.vqa.train_images)]  # (index, image id)
    val = [(i, FIRST_VAL_IMAGE_ID + i) for i in range(spec.vqa.val_images)]
    rows = sorted(_draw(spec, tmp, _write_vqa_chunk, train, val), key=lambda r: (r[0], r[1]))
    for split, subtype in SUBTYPES.items():
        mine = [r for r in rows if r[0] == split]
        for name, data in (
            (questions_file(subtype), _questions_json(subtype, mine)),
            (annotations_file(subtype), _annotations_json(subtype, mine)),
        ):
            (tmp / name).write_text(json.dumps(data))
        (tmp / targets_file(subtype)).write_text(_targets_csv(mine))
    info = {
        "colours": {name: list(rgb) for name, rgb in COLOURS.items()},
        "shapes": list(SHAPES),
        "question_templates": [TEMPLATES[kind] for kind in dict.fromkeys(spec.vqa.question_types)],
    }
    val_objects = sum(r[0] == "val" and r[6] is not None for r in rows)
    return Written(len(train), len(val), val_objects, info)
