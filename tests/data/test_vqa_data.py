"""The VQA data: cam-synth task=vqa (scenes, questions, the VQA v2 files) and the VQA v2 reader
(vocabularies, tokens, target boxes, VQA accuracy, one-line errors)."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cam_repro.data.config import data_config
from cam_repro.data.synth_config import synth_config
from cam_repro.data.synth_vqa import COLOURS, SHAPES, render_vqa_scene
from cam_repro.data.synth_writer import generate
from cam_repro.data.synthetic import SceneRenderer, image_rng
from cam_repro.data.vqa import (
    answer_vocab,
    normalize_answer,
    question_vocab,
    read_vqa,
    read_vqa_split,
    tokenize,
    vqa_accuracy,
)
from cam_repro.runtime.errors import ConfigError, InputFileError, MissingFileError

TINY = {
    "task": "vqa",
    "image_size": 48,
    "workers": 1,
    "vqa": {"train_images": 12, "val_images": 5, "question_types": ["colour", "shape", "count"]},
}
PLURAL = {"circles": "circle", "squares": "square", "triangles": "triangle", "crosses": "cross"}


@pytest.fixture(scope="module")
def tiny_vqa_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vqa") / "tiny"
    summary = generate({**TINY, "out": str(out), "seed": 3})
    assert (summary.train_images, summary.val_images) == (12, 5)
    assert summary.read_with == f"data=synthetic_vqa data.root={out}"
    spec = synth_config({**TINY, "seed": 3})
    scenes = [render_vqa_scene(spec, image_rng(3, "val", k)) for k in range(5)]
    assert summary.val_objects == sum(q.box is not None for s in scenes for q in s.questions)
    return out


def _tight(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


# -- the scenes ------------------------------------------------------------------------------


def test_scenes_and_their_answers_agree_with_the_description() -> None:
    spec = synth_config({"task": "vqa", "vqa": {"question_types": ["colour", "shape", "count"]}})
    renderer = SceneRenderer(spec)
    answers: Counter[str] = Counter()
    for i in range(100):
        scene = render_vqa_scene(spec, image_rng(0, "train", i), renderer)
        objects = scene.objects
        assert 2 <= len(objects) <= 5 and scene.image.shape == (64, 64, 3)
        assert np.logical_or.reduce([o.mask for o in objects]).sum() == sum(
            o.mask.sum() for o in objects
        )  # no two objects share a pixel
        for o in objects:
            assert o.box == _tight(o.mask)
            x0, y0, x1, y1 = o.box
            assert 0 <= x0 <= x1 < 64 and 0 <= y0 <= y1 < 64
            assert 0.18 * 64 - 2 <= max(x1 - x0, y1 - y0) + 1 <= 0.32 * 64 + 2
            mean = scene.image[o.mask].mean(0)  # flat colour, jitter 15 and noise 8
            assert np.abs(mean - COLOURS[o.colour]).max() < 25
        texts = [q.text for q in scene.questions]
        assert len(texts) == 3 and len(set(texts)) == 3
        for q in scene.questions:
            answers[q.answer] += 1
            if m := re.fullmatch(r"What colour is the (\w+)\?", q.text):
                same = [k for k, o in enumerate(objects) if o.shape == m[1]]
                assert (q.kind, same, q.answer) == ("colour", [q.target], objects[same[0]].colour)
            elif m := re.fullmatch(r"What shape is the (\w+) object\?", q.text):
                same = [k for k, o in enumerate(objects) if o.colour == m[1]]
                assert (q.kind, same, q.answer) == ("shape", [q.target], objects[same[0]].shape)
            else:
                m = re.fullmatch(r"How many (\w+) are there\?", q.text)
                assert m is not None and q.kind == "count" and q.target is None and q.box is None
                assert q.answer == str(sum(o.shape == PLURAL[m[1]] for o in objects))
                continue
            assert q.box == objects[q.target].box
        # a question is about an object asked about before only when every object that can be
        # asked about (the only one of its shape, or of its colour) has been
        shapes, colours = [o.shape for o in objects], [o.colour for o in objects]
        askable = {k for k in range(len(objects)) if shapes.count(shapes[k]) == 1}
        askable |= {k for k in range(len(objects)) if colours.count(colours[k]) == 1}
        targets = [q.target for q in scene.questions if q.target is not None]
        for j, target in enumerate(targets):
            if target in targets[:j]:
                assert askable <= set(targets[:j])
    assert set(answers) == set(COLOURS) | set(SHAPES) | {"0", "1", "2", "3"}


def test_answers_have_no_favourite() -> None:
    spec = synth_config({"task": "vqa"})
    renderer = SceneRenderer(spec)
    answers = Counter(
        q.answer
        for i in range(500)
        for q in render_vqa_scene(spec, image_rng(1, "val", i), renderer).questions
    )
    for names in (list(COLOURS), list(SHAPES)):  # ~110 answers per colour, ~210 per shape
        counts = [answers[n] for n in names]
        assert max(counts) < 1.5 * min(counts)  # other seeds: up to 1.44


def test_an_image_gets_fewer_questions_only_when_no_more_can_be_asked() -> None:
    # one object: one colour question and one shape question are all there is
    spec = synth_config({"task": "vqa", "vqa": {"objects": [1, 1], "questions_per_image": 5}})
    for i in range(10):
        scene = render_vqa_scene(spec, image_rng(0, "val", i))
        assert sorted(q.kind for q in scene.questions) == ["colour", "shape"]
        assert {q.target for q in scene.questions} == {0}


@pytest.mark.parametrize(
    ("vqa", "message"),
    [
        ({"question_types": ["color"]}, r"vqa.question_types must be one of colour, shape, count"),
        ({"question_types": []}, r"vqa.question_types must name at least one"),
        ({"train_images": 1_000_001}, r"vqa.train_images must be <= 1000000"),
        ({"objects": [3, 2]}, r"vqa.objects must be \[min, max\]"),
    ],
)
def test_config_errors(vqa: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        synth_config({"task": "vqa", "vqa": vqa})


# -- on disk ---------------------------------------------------------------------------------


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_files_follow_vqa_v2(tiny_vqa_data: Path) -> None:
    spec = synth_config({**TINY, "seed": 3})
    renderer = SceneRenderer(spec)
    synth = _json(tiny_vqa_data / "synth.json")
    assert synth["shapes"] == list(SHAPES)
    assert synth["colours"] == {name: list(rgb) for name, rgb in COLOURS.items()}
    for split, subtype, first in (("train", "train2014", 1), ("val", "val2014", 1_000_001)):
        questions = _json(tiny_vqa_data / f"v2_OpenEnded_mscoco_{subtype}_questions.json")
        annotations = _json(tiny_vqa_data / f"v2_mscoco_{subtype}_annotations.json")
        assert questions.keys() == {
            "info",
            "task_type",
            "data_type",
            "license",
            "data_subtype",
            "questions",
        }
        assert (questions["task_type"], questions["data_type"]) == ("Open-Ended", "mscoco")
        assert questions["data_subtype"] == annotations["data_subtype"] == subtype
        assert annotations.keys() == {"info", "license", "data_subtype", "annotations"}
        with (tiny_vqa_data / f"targets_{subtype}.csv").open(newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0] == ["question_id", "x0", "y0", "x1", "y1"]
        n = 12 if split == "train" else 5
        assert len(questions["questions"]) == len(annotations["annotations"]) == len(rows) - 1
        for k in range(n):
            image_id = first + k
            path = tiny_vqa_data / subtype / f"COCO_{subtype}_{image_id:012d}.jpg"
            assert Image.open(path).size == (48, 48)
            scene = render_vqa_scene(spec, image_rng(3, split, k), renderer)
            mine = [q for q in questions["questions"] if q["image_id"] == image_id]
            assert [q["question_id"] for q in mine] == [image_id * 1000 + j for j in range(3)]
            assert [q["question"] for q in mine] == [q.text for q in scene.questions]
            for q in scene.questions:
                qid = image_id * 1000 + scene.questions.index(q)
                ann = next(a for a in annotations["annotations"] if a["question_id"] == qid)
                assert ann["multiple_choice_answer"] == q.answer and ann["image_id"] == image_id
                assert ann["question_type"] == q.kind
                assert ann["answer_type"] == ("number" if q.kind == "count" else "other")
                assert ann["answers"] == [
                    {"answer": q.answer, "answer_confidence": "yes", "answer_id": j}
                    for j in range(1, 11)
                ]
                row = next(r for r in rows if r[0] == str(qid))
                assert row[1:] == ([str(v) for v in q.box] if q.box else ["", "", "", ""])


def test_read_back_with_the_reader(tiny_vqa_data: Path) -> None:
    spec = synth_config({**TINY, "seed": 3})
    renderer = SceneRenderer(spec)
    cfg = data_config({"source": "vqa", "root": str(tiny_vqa_data)})
    train, read = read_vqa(cfg, "train"), read_vqa_split(cfg, "val")
    val = read.data
    # the answers are the train split's: a val count may have an answer train never gave
    assert len(train) == 36 and len(val) + len(read.unanswerable) == read.questions == 15
    assert f"{len(read.unanswerable)} of 15 questions left out" in val.source
    assert set(train.classes) <= set(COLOURS) | set(SHAPES) | {str(n) for n in range(6)}
    assert val.classes == train.classes and val.class_names == train.classes
    assert val.questions is not None and train.questions is not None
    assert val.questions.vocab == train.questions.vocab
    assert {"what", "colour", "shape", "how", "many"} <= set(train.questions.vocab)
    expected = {
        (1_000_001 + k) * 1000 + j: q
        for k in range(5)
        for j, q in enumerate(render_vqa_scene(spec, image_rng(3, "val", k), renderer).questions)
    }
    assert sorted(val.questions.ids + read.unanswerable) == sorted(expected)
    assert all(expected[qid].answer not in train.classes for qid in read.unanswerable)
    with_box = 0
    for i, (qid, sample) in enumerate(zip(val.questions.ids, val.samples, strict=True)):
        q = expected[qid]
        assert sample.path.name == f"COCO_val2014_{qid // 1000:012d}.jpg"
        assert val.classes[sample.label] == q.answer and val.questions.kinds[i] == q.kind
        assert val.questions.answers[i] == [q.answer] * 10
        words = [val.questions.vocab[t] for t in val.questions.tokens[i] if t >= 0]
        assert words == [w for w in tokenize(q.text) if w in val.questions.vocab]
        if q.box is None:
            assert sample.boxes.shape == (0, 4) and sample.size is None
        else:
            with_box += 1
            assert sample.boxes.tolist() == [list(q.box)] and sample.size == (48, 48)
            assert sample.box_labels.tolist() == [sample.label]
    assert with_box > 0


# -- the reader on hand-written files --------------------------------------------------------


def _answers(*counts: tuple[str, int]) -> list[dict]:
    given = [a for a, n in counts for _ in range(n)]
    return [
        {"answer": a, "answer_confidence": "yes", "answer_id": j + 1} for j, a in enumerate(given)
    ]


def _write_vqa(root: Path) -> None:
    """2 images, 4 train questions (one answer is left out with data.answers=2); val in VQA v1's
    file names."""
    (root / "train2014").mkdir(parents=True)
    (root / "val2014").mkdir()
    for image_id, size in ((9, (40, 30)), (458752, (20, 24))):
        Image.new("RGB", size).save(root / f"train2014/COCO_train2014_{image_id:012d}.jpg")
    Image.new("RGB", (16, 16)).save(root / "val2014/COCO_val2014_000000000042.jpg")
    questions = [
        (9000, 9, "What color is the bus?", "Red.", [("red", 7), ("dark red", 3)], "what color"),
        (9001, 9, "Is the bus red?", "yes", [("yes", 10)], "is the"),
        (458752000, 458752, "Is there a dog?", "yes", [("yes", 9), ("no", 1)], "is there a"),
        (458752001, 458752, "What color is the dog?", "blue", [("Blue", 10)], "what color"),
    ]
    _dump(root / "v2_OpenEnded_mscoco_train2014_questions.json", questions)
    _dump(root / "v2_mscoco_train2014_annotations.json", questions, annotations=True)
    (root / "targets_train2014.csv").write_text(
        "question_id,x0,y0,x1,y1\n9000,2,3,39,29\n9001,,,,\n458752001,0,0,19,23\n"
    )
    val = [(42000, 42, "Is it blue?", "yes", [("no", 3), ("yes", 7)], "is it")]
    _dump(root / "OpenEnded_mscoco_val2014_questions.json", val)
    _dump(root / "mscoco_val2014_annotations.json", val, annotations=True)


def _dump(path: Path, questions: list[tuple], annotations: bool = False) -> None:
    if annotations:
        data = {
            "annotations": [
                {
                    "question_type": kind,
                    "multiple_choice_answer": mca,
                    "answers": _answers(*given),
                    "image_id": image,
                    "answer_type": "other",
                    "question_id": qid,
                }
                for qid, image, _, mca, given, kind in questions
            ]
        }
    else:
        data = {
            "questions": [
                {"image_id": image, "question": text, "question_id": qid}
                for qid, image, text, *_ in questions
            ]
        }
    path.write_text(json.dumps(data))


@pytest.fixture
def real(tmp_path: Path) -> Path:
    _write_vqa(tmp_path / "vqa")
    return tmp_path / "vqa"


def _cfg(root: Path, **more: object) -> object:
    return data_config({"source": "vqa", "root": str(root), "answers": 2, **more})


def test_reader_on_a_hand_written_vqa(real: Path) -> None:
    read = read_vqa_split(_cfg(real, question_words=3), "train")
    data, questions = read.data, read.data.questions
    assert questions is not None
    # yes x2, then blue and red once each: alphabetical, so red is left out
    assert data.classes == data.class_names == ["yes", "blue"]
    assert read.unanswerable == [9000] and read.questions == 4
    assert "1 of 4 questions left out" in data.source
    assert questions.ids == [9001, 458752000, 458752001]
    assert [s.label for s in data.samples] == [0, 0, 1]
    assert [s.path.name for s in data.samples] == [
        "COCO_train2014_000000000009.jpg",
        "COCO_train2014_000000458752.jpg",
        "COCO_train2014_000000458752.jpg",
    ]
    # words: is 4, the 3, then bus, color, dog, what 2 each: the 3 most frequent
    assert questions.vocab == ["is", "the", "bus"]
    # "Is the bus red?", "Is there a dog?", "What color is the dog?"
    assert questions.tokens.tolist() == [[0, 1, 2], [0, -1, -1], [0, 1, -1]]
    assert questions.answers[2] == ["blue"] * 10 and questions.kinds[0] == "is the"
    assert [s.boxes.tolist() for s in data.samples] == [[], [], [[0, 0, 19, 23]]]
    assert [s.size for s in data.samples] == [None, None, (20, 24)]
    # val (VQA v1's file names) with the train split's vocabularies
    val = read_vqa(_cfg(real, question_words=3), "val")
    assert val.classes == ["yes", "blue"] and val.questions is not None
    assert val.questions.vocab == ["is", "the", "bus"] and val.questions.tokens.tolist() == [[0]]
    assert [s.label for s in val.samples] == [0] and val.split == "val"
    assert val.questions.answers == [["no"] * 3 + ["yes"] * 7]
    assert val.samples[0].path == real / "val2014/COCO_val2014_000000000042.jpg"


def test_given_vocabularies_are_used_as_they_are(real: Path) -> None:
    data = read_vqa(_cfg(real), "train", vocab=["dog", "what"], answers=["red", "blue", "no"])
    assert data.classes == ["red", "blue", "no"] and data.questions is not None
    assert data.questions.ids == [9000, 458752001]
    assert data.questions.tokens.tolist() == [[1, -1], [1, 0]]
    assert data.samples[0].boxes.tolist() == [[2, 3, 39, 29]] and data.samples[0].size == (40, 30)


def test_text_and_answer_normalisation() -> None:
    assert tokenize("What colour is the circle?") == ["what", "colour", "is", "the", "circle"]
    assert tokenize("What's on the 2nd shelf--left?") == [
        "what's",
        "on",
        "the",
        "2nd",
        "shelf",
        "left",
    ]
    assert tokenize("  ?! ") == []
    assert normalize_answer("  Dark   Red. ") == "dark red"
    assert normalize_answer("Yes!?") == "yes" and normalize_answer("3.5") == "3.5"
    assert question_vocab(["b a", "a c?", "C"], 2) == ["a", "c"]
    assert question_vocab(["b a", "a c?", "C"]) == ["a", "c", "b"]
    assert answer_vocab(["x", "y", "y", "z", "x", "w"], 3) == ["x", "y", "w"]


def test_vqa_accuracy_by_hand() -> None:
    def given(n: int) -> list[str]:
        return ["red"] * n + ["blue"] * (10 - n)

    assert vqa_accuracy("red", given(10)) == 1.0
    assert vqa_accuracy("red", given(4)) == 1.0  # every 9 of them hold >= 3
    # 3 of 10: leaving out one of the 3 (3 ways) leaves 2/3; one of the 7 others leaves 3/3
    assert vqa_accuracy("red", given(3)) == pytest.approx((3 * 2 / 3 + 7 * 1) / 10)  # 0.9
    assert vqa_accuracy("Red.", given(2)) == pytest.approx((2 * 1 / 3 + 8 * 2 / 3) / 10)  # 0.6
    assert vqa_accuracy("red", given(1)) == pytest.approx(9 * (1 / 3) / 10)  # 0.3
    assert vqa_accuracy("green", given(5)) == 0.0
    assert vqa_accuracy("red", ["red", "red", "blue"]) == pytest.approx(2 / 3)  # < 10: plain
    assert vqa_accuracy("red", []) == 0.0


# -- bad input -------------------------------------------------------------------------------


def _edit(path: Path, change: Callable[[dict], object]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


QFILE = "v2_OpenEnded_mscoco_train2014_questions.json"
AFILE = "v2_mscoco_train2014_annotations.json"


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        (QFILE, None, rf"{QFILE}: missing \(nor VQA v1's OpenEnded_mscoco_train2014"),
        (QFILE, "{not json", rf"{QFILE}: not a JSON file"),
        (AFILE, lambda d: d.pop("annotations"), rf'{AFILE}: no "annotations" key'),
        (QFILE, lambda d: d["questions"].pop(), rf"{AFILE}: question 458752001: no such question"),
        (AFILE, lambda d: d["annotations"].pop(0), rf"{QFILE}: question 9000 has no annotation"),
        (
            QFILE,
            lambda d: d["questions"].append(d["questions"][0]),
            rf"{QFILE}: question 9000: appears twice",
        ),
        (
            QFILE,
            lambda d: d["questions"][1].update(image_id="9"),
            rf"{QFILE}: question 9001: image_id must be an integer, got '9'",
        ),
        (
            AFILE,
            lambda d: d["annotations"][1].update(image_id=458752),
            rf"{AFILE}: question 9001: image_id 458752, but 9 in {QFILE}",
        ),
        ("targets_train2014.csv", "question_id,x0,y0,x1,y1\n9000,2,3,a,4\n", r"2: x1 'a' is not"),
        ("targets_train2014.csv", "question_id,x0,y0,x1,y1\n9000,5,3,4,4\n", r"csv line 2: box"),
        ("targets_train2014.csv", "question_id,x0,y0,x1,y1\n7,1,1,2,2\n", r"line 2: question 7 "),
        (
            "targets_train2014.csv",
            "question_id,x0,y0,x1,y1\n458752001,0,0,19,24\n",
            r"csv line 2: box \(0, 0, 19, 24\) \(0-based inclusive\) lies outside the bounds of "
            r"the 20x24 image",
        ),
        ("targets_train2014.csv", "qid,x0,y0,x1,y1\n", r"csv: the header must be"),
    ],
)
def test_bad_input_is_one_line_naming_the_file(
    real: Path, file: str, change: object, message: str
) -> None:
    path = real / file
    if change is None:
        path.unlink()
    elif isinstance(change, str):
        path.write_text(change)
    else:
        _edit(path, change)
    with pytest.raises((InputFileError, MissingFileError)) as err:
        read_vqa(_cfg(real), "train")
    assert re.search(message, str(err.value)) and "\n" not in str(err.value)


def test_a_missing_image_is_an_error_or_skipped(real: Path) -> None:
    gone = real / "train2014/COCO_train2014_000000458752.jpg"
    gone.unlink()
    with pytest.raises(
        MissingFileError, match=re.escape(f"{gone}: image file is missing (asked about")
    ):
        read_vqa(_cfg(real), "train")
    data = read_vqa(_cfg(real, bad_images="skip"), "train")
    assert data.questions is not None and data.questions.ids == [9001]
    assert [p for p, _ in data.skipped] == [gone]


def test_unknown_split_and_root() -> None:
    with pytest.raises(ConfigError, match="unknown split 'dev'"):
        read_vqa(_cfg(Path("/nonexistent")), "dev")
    with pytest.raises(MissingFileError, match=r"data.root /nonexistent does not exist"):
        read_vqa(_cfg(Path("/nonexistent")), "val")
