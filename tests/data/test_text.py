"""The text / no-text set (cam_repro/data/synth_text.py): determinism, word boxes and masks from the
generator's own description, clutter in both classes, the round trip through the ILSVRC reader
(negatives without <object> in val/<wnid>/); the SVT reader (cam_repro/data/svt.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import ilsvrc_xml, write_image, write_kaggle
from helpers import cpu_cfg
from PIL import Image

from cam_repro.data import read_split
from cam_repro.data.config import data_config
from cam_repro.data.svt import read_svt, read_svt_xml
from cam_repro.data.synth_config import synth_config
from cam_repro.data.synth_text import (
    CLASSES,
    NO_TEXT,
    TEXT,
    TextSceneRenderer,
    render_text_scene,
)
from cam_repro.data.synth_writer import generate
from cam_repro.data.synthetic import image_rng
from cam_repro.runtime.errors import ConfigError, InputFileError, MissingFileError

TINY = {"task": "text", "train_per_class": 4, "val_per_class": 6, "image_size": 48, "workers": 1}
LUMA = np.array([0.299, 0.587, 0.114])


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("text") / "tiny"
    generate({**TINY, "out": str(out), "seed": 3})
    return out


def _scenes(n: int = 30, **more: object) -> list:
    spec = synth_config({**TINY, "image_size": 64, **more})
    renderer = TextSceneRenderer(spec)
    return [
        (renderer.render(i % 2, image_rng(0, "train", i)), i % 2, i, renderer) for i in range(n)
    ]


@pytest.mark.parametrize("more", [{}, {"occluders": [2, 2]}])
def test_word_boxes_are_tight_around_the_drawn_pixels(more: dict) -> None:
    for scene, label, i, renderer in _scenes(**more):
        plain = renderer.render(label, image_rng(0, "train", i), draw_words=False)
        changed = (scene.image != plain.image).any(-1)  # only the words' paint differs
        assert not (changed & ~scene.mask).any()
        if label == NO_TEXT:
            assert scene.words == [] and scene.boxes.shape == (0, 4) and not scene.mask.any()
            assert np.array_equal(scene.image, plain.image)
            continue
        assert 1 <= len(scene.words) <= 3
        assert scene.masks.sum(0).max() == 1  # no pixel in two words
        for word, box in zip(scene.words, scene.boxes.tolist(), strict=True):
            ys, xs = np.nonzero(word.mask)
            assert box == [xs.min(), ys.min(), xs.max(), ys.max()] == list(word.box)
            assert 0 <= box[0] <= box[2] < 64 and 0 <= box[1] <= box[3] < 64
            assert 3 <= len(word.text) <= 7 and word.text.isalnum()
            assert -15 <= word.angle <= 15
            assert changed[word.mask].mean() > 0.8  # the word was drawn where its mask says
            gap = np.abs((scene.image[word.mask] - plain.image[word.mask].astype(float)) @ LUMA)
            assert gap.mean() > 8  # contrast [20, 70] at >= 1/4 coverage, mostly full


def test_occluders_hide_parts_of_words_but_never_most() -> None:
    # The words are placed before the occluders: the scene without occluders has them whole.
    whole = TextSceneRenderer(synth_config({**TINY, "image_size": 64, "occluders": [0, 0]}))
    hidden = 0
    for scene, label, i, _ in _scenes(40, occluders=[3, 3]):
        if label == NO_TEXT:
            continue
        free = whole.render(TEXT, image_rng(0, "train", i)).words
        assert scene.texts == [w.text for w in free]
        for word, full in zip(scene.words, free, strict=True):
            assert (word.mask <= full.mask).all() and word.mask.sum() >= 0.5 * full.mask.sum()
            hidden += int(word.mask.sum() < full.mask.sum())
    assert hidden > 0


def test_both_classes_hold_clutter_of_both_kinds() -> None:
    kinds = {NO_TEXT: set(), TEXT: set()}
    for scene, label, *_ in _scenes(40):
        assert 1 <= len(scene.clutter) <= 3
        assert all(c.mask.any() for c in scene.clutter)
        kinds[label] |= {c.kind for c in scene.clutter}
    assert kinds == {NO_TEXT: {"stripes", "dots"}, TEXT: {"stripes", "dots"}}


def test_render_text_scene_is_pure() -> None:
    spec = synth_config({**TINY, "image_size": 64})
    one, two = (render_text_scene(spec, TEXT, image_rng(0, "val", 1)) for _ in range(2))
    assert np.array_equal(one.image, two.image) and one.texts == two.texts


def test_bitmap_font_without_freetype() -> None:
    spec = synth_config({**TINY, "image_size": 64})
    renderer = TextSceneRenderer(spec, freetype=False)
    for i in range(6):
        scene = renderer.render(TEXT, image_rng(0, "val", i))
        assert scene.words
        for word in scene.words:
            ys, xs = np.nonzero(word.mask)
            assert word.box == (xs.min(), ys.min(), xs.max(), ys.max())


def test_round_trip_through_the_imagenet_reader(tiny_text: Path) -> None:
    spec = synth_config({**TINY, "seed": 3})
    cfg = {"source": "imagenet", "root": str(tiny_text), "layout": "kaggle"}
    train, val = read_split(cfg, "train"), read_split(cfg, "val")
    assert train.classes == val.classes == [w for w, _ in CLASSES] == ["n90100000", "n90100001"]
    assert val.class_names == ["no text", "text"]
    assert [s.label for s in train.samples] == [0] * 4 + [1] * 4
    assert all(len(s.boxes) == 0 for s in train.samples)
    assert sorted(s.label for s in val.samples) == [0] * 6 + [1] * 6
    renderer = TextSceneRenderer(spec)
    for sample in val.samples:
        index = int(sample.image_id.removeprefix("ILSVRC2012_val_"))
        scene = renderer.render(sample.label, image_rng(3, "val", index))
        assert sample.size == (48, 48)
        assert np.array_equal(sample.boxes, scene.boxes)
        assert (len(sample.boxes) > 0) == (sample.label == TEXT)
        assert sample.box_labels.tolist() == [TEXT] * len(scene.words)
        assert np.array_equal(np.asarray(Image.open(sample.masks[0])) > 0, scene.mask)
        xml = (tiny_text / "ILSVRC/Annotations/CLS-LOC/val" / f"{sample.image_id}.xml").read_text()
        assert xml.count("<object>") == len(scene.words)
    assert not (tiny_text / "LOC_val_solution.csv").exists()
    # the synthetic preset reads it too
    assert len(read_split({**cfg, "image_size": 64, "resize_size": 64}, "val")) == 12


def test_text_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"text.words must be \[min, max\]"):
        synth_config({"task": "text", "text": {"words": [3, 1]}})


# -- the ILSVRC reader: an image without <object> ---------------------------------------------


def test_val_image_without_objects_is_labelled_by_its_folder(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path, csv=False)
    xml = root / "ILSVRC/Annotations/CLS-LOC/val/ILSVRC2012_val_00000002.xml"
    xml.write_text(ilsvrc_xml((60, 30), []))
    with pytest.raises(InputFileError, match=r"val_00000002.xml: no <object>, so no label"):
        read_split({"root": str(root)}, "val")  # flat val/: nothing else labels it
    val = root / "ILSVRC/Data/CLS-LOC/val"
    (val / "n01484850").mkdir()
    (val / "ILSVRC2012_val_00000002.JPEG").rename(val / "n01484850/ILSVRC2012_val_00000002.JPEG")
    two = next(s for s in read_split({"root": str(root)}, "val").samples if s.image_id[-1] == "2")
    assert (two.label, two.size, two.boxes.shape, two.box_labels.tolist()) == (
        2,
        (60, 30),
        (0, 4),
        [],
    )


# -- SVT -------------------------------------------------------------------------------------------

SVT_TRAIN = """<?xml version="1.0" encoding="utf-8"?>
<tagset>
  <image>
    <imageName>img/14_03.jpg</imageName>
    <address>341 Southwest 10th Avenue Portland OR</address>
    <lex>LIVING,ROOM,THEATERS, KENNY</lex>
    <Resolution x="80" y="60"/>
    <taggedRectangles>
      <taggedRectangle height="10" width="20" x="5" y="7"><tag>LIVING</tag></taggedRectangle>
      <taggedRectangle height="12" width="30" x="-3" y="55"><tag>ROOM</tag></taggedRectangle>
    </taggedRectangles>
  </image>
  <image>
    <imageName>img/00_01.jpg</imageName>
    <Resolution x="40" y="30"/>
    <taggedRectangles>
      <taggedRectangle height="30" width="40" x="0" y="0"><tag>ALL</tag></taggedRectangle>
    </taggedRectangles>
  </image>
</tagset>
"""


def _svt(root: Path) -> Path:
    (root / "SVT").mkdir(parents=True)
    (root / "SVT/train.xml").write_text(SVT_TRAIN)
    # no image in both splits: read_svt refuses a test on training images
    test_xml = SVT_TRAIN.replace("00_01", "99_09").replace("14_03", "14_04")
    (root / "SVT/test.xml").write_text(test_xml)
    images = (("14_03", (80, 60)), ("14_04", (80, 60)), ("00_01", (40, 30)), ("99_09", (40, 30)))
    for name, size in images:
        write_image(root / f"SVT/img/{name}.jpg", size)
    write_image(root / "sun/train/a/abbey/sun_b.jpg", (30, 20))
    write_image(root / "sun/train/sun_a.png", (30, 20))
    (root / "sun/train/notes.txt").write_text("not an image")
    write_image(root / "sun/test/sun_c.jpg", (30, 20))
    return root / "SVT"


def test_svt_xml_boxes_are_converted_and_clipped(tmp_path: Path) -> None:
    images = read_svt_xml(_svt(tmp_path) / "train.xml")
    first, second = images
    assert (first.name, first.size, first.tags) == ("img/14_03.jpg", (80, 60), ["LIVING", "ROOM"])
    assert first.lexicon == ["LIVING", "ROOM", "THEATERS", "KENNY"]
    # x, y, width, height -> x, y, x + width - 1, y + height - 1; ROOM clipped to the 80x60 image
    assert first.boxes.tolist() == [[5, 7, 24, 16], [0, 55, 26, 59]]
    assert first.boxes.dtype == np.int64
    assert second.boxes.tolist() == [[0, 0, 39, 29]] and second.lexicon == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<tagset><image>", r"train.xml: XML does not parse"),
        ("<annotation/>", r"train.xml: not an SVT file: the root element is <annotation>"),
        (
            SVT_TRAIN.replace("<imageName>img/00_01.jpg</imageName>", ""),
            r"train.xml: image 2 has no <imageName>",
        ),
        (
            SVT_TRAIN.replace('width="20"', 'width="2O"'),
            r"train.xml: image img/14_03.jpg rectangle 1 \(LIVING\): width '2O' is not an integer",
        ),
        (
            SVT_TRAIN.replace('x="5" y="7"', 'x="85" y="7"'),
            r"train.xml: image img/14_03.jpg rectangle 1 \(LIVING\): box x=85 y=7 width=20 "
            r"height=10 lies outside the 80x60 image",
        ),
        (
            SVT_TRAIN.replace('height="10"', 'height="0"'),
            r"rectangle 1 \(LIVING\): width and height must be positive, got 20x0",
        ),
        (SVT_TRAIN.replace('<Resolution x="40" y="30"/>', ""), r"img/00_01.jpg has no <Resolution"),
        (SVT_TRAIN.replace("00_01", "14_03"), r"train.xml: image img/14_03.jpg appears twice"),
    ],
)
def test_svt_xml_errors_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "train.xml"
    path.write_text(text)
    with pytest.raises(InputFileError, match=message) as err:
        read_svt_xml(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_read_svt_with_negatives(tmp_path: Path) -> None:
    svt = _svt(tmp_path)
    cfg = data_config({"source": "svt", "root": str(svt), "negatives": str(tmp_path / "sun")})
    train = read_svt(cfg, "train")
    relative = dataclasses.replace(cfg, negatives="../sun")  # relative to data.root
    assert [s.path.name for s in read_svt(relative, "train").samples] == [
        s.path.name for s in train.samples
    ]
    assert train.classes == ["no_text", "text"] and train.class_names == ["no text", "text"]
    got = [(s.path.relative_to(tmp_path).as_posix(), s.label, len(s.boxes)) for s in train.samples]
    assert got == [
        ("sun/train/a/abbey/sun_b.jpg", 0, 0),
        ("sun/train/sun_a.png", 0, 0),
        ("SVT/img/00_01.jpg", 1, 1),
        ("SVT/img/14_03.jpg", 1, 2),
    ]
    text = train.samples[3]
    assert text.size == (80, 60) and text.box_labels.tolist() == [1, 1]
    assert train.samples[0].size is None
    for split in ("val", "test"):
        data = read_svt(cfg, split)
        assert [s.image_id for s in data.samples] == ["sun_c", "14_04", "99_09"]
        assert "test.xml" in data.source
    (tmp_path / "sun/test").rename(tmp_path / "sun/val")
    assert read_svt(cfg, "val").samples[0].image_id == "sun_c"


def test_read_svt_missing_files(tmp_path: Path) -> None:
    svt = _svt(tmp_path)
    cfg = data_config({"source": "svt", "root": str(svt), "negatives": str(tmp_path / "none")})
    with pytest.raises(MissingFileError, match=r"data.negatives .*none does not exist"):
        read_svt(cfg, "train")
    cfg = data_config({"source": "svt", "root": str(svt), "negatives": "../sun"})
    (tmp_path / "sun/test").rename(tmp_path / "sun/elsewhere")
    with pytest.raises(MissingFileError, match=r"sun/val: missing \(data.negatives needs test/"):
        read_svt(cfg, "val")
    (svt / "img/00_01.jpg").unlink()
    with pytest.raises(MissingFileError, match=r"train.xml: image img/00_01.jpg: .*is missing"):
        read_svt(cfg, "train")
    skipping = dataclasses.replace(cfg, bad_images="skip")
    data = read_svt(skipping, "train")
    assert [s.image_id for s in data.samples if s.label == 1] == ["14_03"]
    assert len(data.skipped) == 1
    write_image(svt / "img/00_01.jpg", (41, 30))
    resolution = r"train.xml: image img/00_01.jpg: <Resolution>: states 40x30 for .*, but the image"
    with pytest.raises(InputFileError, match=resolution + r" is 41x30"):
        read_svt(cfg, "train")
    (svt / "train.xml").unlink()
    with pytest.raises(MissingFileError, match=r"train.xml: missing"):
        read_svt(cfg, "train")


# -- the text detector end to end (paper Section 4.2) -------------------------------------------


@pytest.fixture(scope="module")
def text_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("text") / "data"
    # larger words and less clutter than the default: a set that 6 epochs learn (17-24% error
    # over seeds 0-2), to test the pipeline, not the benchmark
    generate({"out": str(out), "task": "text", "image_size": 48, "train_per_class": 300,
              "val_per_class": 40, "workers": 1,
              "text": {"font_size": [0.25, 0.4], "clutter": [0, 1]}})  # fmt: skip
    return out


@pytest.mark.slow
def test_text_detector_trained_as_a_cam_network(text_data: Path, tmp_path: Path) -> None:
    """cam-train on text / no text, then cam-eval: localization is scored on the text images
    only (their word boxes), with the pointing game beside it."""
    from cam_repro.evaluate.loop import evaluate_run
    from cam_repro.train.trainer import train

    size = ["data.image_size=48", "data.resize_size=48", "data.batch_size=32"]
    train(cpu_cfg("train", f"data.root={text_data}", *size, "trainer.epochs=6",
                   "trainer.tensorboard=false"), tmp_path / "train")  # fmt: skip
    best = tmp_path / "train/checkpoints/best.pt"
    metrics = evaluate_run(cpu_cfg("eval", f"checkpoint={best}"), tmp_path / "eval")
    assert metrics["num_images"] == 80 and metrics["num_loc_images"] == 40
    assert metrics["num_without_boxes"] == 40  # the no-text images
    assert metrics["cls_top1_err"] < 35  # well above chance (50%)
    assert 0 <= metrics["pointing_game"] <= 100 and metrics["data"]["task"] == "text"


def test_text_detector_the_papers_way(text_data: Path, trained: Path, tmp_path: Path) -> None:
    """A linear SVM on the GAP features of a network trained on other classes (the benchmark),
    and the CAM of `text` from the SVM's weights, scored against the word boxes."""
    from cam_repro.features.run import features_run

    metrics = features_run(
        cpu_cfg("features", f"checkpoint={trained}", f"data.root={text_data}"), tmp_path / "f"
    )
    assert metrics["num_classes"] == 2 and metrics["accuracy"] > 50  # above chance
    loc = metrics["localization"]
    assert loc["num_images"] == 40  # the text images of the test split
    assert 0 <= loc["gt_known_loc_acc"] <= 100 and 0 <= loc["pointing_game"] <= 100


def test_the_papers_text_detector_on_svt_layout_data(trained: Path, tmp_path: Path) -> None:
    """cam-features on SVT's layout (data.source=svt: word boxes from test.xml, negatives from a
    folder): the real-data path end to end, on files the test writes."""
    from cam_repro.features.run import features_run

    root = _svt(tmp_path)
    metrics = features_run(
        cpu_cfg("features", f"checkpoint={trained}", "data.source=svt", f"data.root={root}",
                 f"data.negatives={tmp_path / 'sun'}"),
        tmp_path / "f",
    )  # fmt: skip
    assert (metrics["num_train"], metrics["num_test"], metrics["num_classes"]) == (4, 3, 2)
    assert metrics["data"]["task"] == "text" and metrics["data"]["kind"] == "svt"
    loc = metrics["localization"]
    assert loc["num_images"] == 2  # the SVT test images; the negative has no word box
