"""The synthetic benchmark: round trips through the ILSVRC and CUB readers, determinism, the
designs (parts, uniform, fine), the class families."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_fixtures import tree_digest
from PIL import Image

from cam_repro.data import dataset_kind, read_split
from cam_repro.data.synth_config import synth_config
from cam_repro.data.synth_writer import cub_folder, generate
from cam_repro.data.synthetic import SceneRenderer, class_designs, image_rng
from cam_repro.runtime.errors import ConfigError, InputFileError

TINY = {"num_classes": 4, "train_per_class": 3, "val_per_class": 5, "image_size": 48, "workers": 1}


@pytest.fixture(scope="module")
def tiny_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "tiny"
    generate({**TINY, "out": str(out), "seed": 3})
    return out


def test_round_trip_through_the_imagenet_reader(tiny_classes: Path) -> None:
    spec = synth_config({**TINY, "seed": 3})
    renderer = SceneRenderer(spec)
    designs = class_designs(spec)
    val = read_split({"root": str(tiny_classes)}, "val")
    train = read_split({"root": str(tiny_classes)}, "train")
    assert val.classes == train.classes == [d.wnid for d in designs]
    assert val.class_names == [d.name for d in designs]
    assert len(train) == 12 and len(val) == 20
    assert sorted(s.label for s in val.samples) == [c for c in range(4) for _ in range(5)]
    for index, sample in enumerate(val.samples, start=1):
        scene = renderer.render(sample.label, image_rng(3, "val", index))
        assert sample.image_id == f"ILSVRC2012_val_{index:08d}"
        assert sample.size == (48, 48)
        assert np.array_equal(sample.boxes, scene.boxes)
        assert sample.box_labels.tolist() == [sample.label] * len(scene.objects)
        mask = np.asarray(Image.open(sample.masks[0])) > 0
        assert np.array_equal(mask, scene.mask)
        pixels = np.asarray(Image.open(sample.path).convert("RGB"), dtype=np.int16)
        other = renderer.render(sample.label, image_rng(3, "val", index + 100))
        own_error = np.abs(pixels - scene.image).mean()  # the JPEG of the drawn scene: noise lost
        assert own_error < 10 and own_error < np.abs(pixels - other.image).mean() / 3
    # the CSV says the same as the XML files
    csv = read_split({"root": str(tiny_classes), "val_labels": "csv"}, "val")
    assert [s.boxes.tolist() for s in csv.samples] == [s.boxes.tolist() for s in val.samples]


def test_boxes_are_tight_around_the_masks(tiny_classes: Path) -> None:
    for sample in read_split({"root": str(tiny_classes)}, "val").samples:
        ys, xs = np.nonzero(np.asarray(Image.open(sample.masks[0])))
        union = sample.boxes[:, :2].min(0).tolist() + sample.boxes[:, 2:].max(0).tolist()
        assert union == [xs.min(), ys.min(), xs.max(), ys.max()]


TASKS = {  # every task's generator, tiny
    "classes": TINY,
    "text": {"task": "text", "train_per_class": 4, "val_per_class": 6, "image_size": 48},
    "vqa": {"task": "vqa", "image_size": 48, "vqa": {"train_images": 6, "val_images": 4}},
}


@pytest.mark.parametrize("task", TASKS)
def test_same_config_gives_byte_identical_files(task: str, tmp_path: Path) -> None:
    """Every task: the same config writes the same bytes whatever the workers; another seed
    draws other images (every image file differs)."""
    config = {**TASKS[task], "seed": 3}
    digests = []
    for name, more in (("one", {"workers": 1}), ("two", {"workers": 2}), ("other", {"seed": 4})):
        generate({**config, **more, "out": str(tmp_path / name)})
        digests.append(tree_digest(tmp_path / name))
    one, two, other = digests
    assert one == two
    # (text: the val images' class folders follow the seed's labels, so compare common names)
    images = [k for k in one if k.lower().endswith((".jpeg", ".jpg")) and k in other]
    assert len(images) >= 8 and all(other[k] != one[k] for k in images)


def test_refuses_to_overwrite_unless_asked(tiny_classes: Path, tmp_path: Path) -> None:
    out = tmp_path / "keep"
    out.mkdir()
    (out / "mine.txt").write_text("work")
    with pytest.raises(InputFileError, match=r"keep exists and is not empty; pass overwrite=true"):
        generate({**TINY, "out": str(out)})
    assert (out / "mine.txt").read_text() == "work"
    generate({**TINY, "out": str(out), "seed": 3, "overwrite": True})
    assert tree_digest(out) == tree_digest(tiny_classes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]  # no temporary folders left


def _scenes(evidence: str, n: int = 40, **more: object) -> list:
    spec = synth_config({**TINY, "image_size": 64, "evidence": evidence, **more})
    renderer = SceneRenderer(spec)
    return [renderer.render(i % 4, image_rng(0, "train", i)) for i in range(n)]


def test_parts_design_spreads_shared_textures_plus_one_class_key_part() -> None:
    designs = class_designs(synth_config(TINY))
    body = set(range(5))
    for scene in _scenes("parts"):
        design = designs[scene.label]
        others = {d.key_texture for d in designs if d is not design}
        for obj in scene.objects:
            assert len(obj.body_textures) > 1 and set(obj.body_textures) <= body
            assert obj.key_part is not None and obj.key_part.texture == design.key_texture
            assert obj.key_part.texture not in body | others  # unique to the class
            assert design.key_texture in obj.textures
            assert (obj.key_part.mask <= obj.mask).all() and obj.key_part.mask.any()
            assert obj.key_part.mask.sum() < 0.5 * obj.mask.sum()
            assert set(np.unique(obj.cell_textures)) <= body


def test_parts_cells_follow_the_class_pair() -> None:
    counts = np.zeros((4, 5))
    for scene in _scenes("parts", 200):
        for obj in scene.objects:
            counts[scene.label] += np.bincount(obj.cell_textures.ravel(), minlength=5)
    share = counts / counts.sum(1, keepdims=True)
    for label, design in enumerate(class_designs(synth_config(TINY))):
        assert np.argsort(share[label])[-2:].tolist() == sorted(
            design.body_pair, key=lambda t: share[label, t]
        )
        assert share[label].max() < 0.5  # no texture alone makes up the class


def test_uniform_design_has_one_class_texture_and_no_parts() -> None:
    designs = class_designs(synth_config(TINY))
    for scene in _scenes("uniform"):
        for obj in scene.objects:
            assert obj.textures == obj.body_textures == (designs[scene.label].key_texture,)
            assert obj.key_part is None and obj.cell_textures is None


def test_scenes_vary_as_configured() -> None:
    scenes = _scenes("parts", 200)
    sides = [max(o.box[2] - o.box[0], o.box[3] - o.box[1]) + 1 for s in scenes for o in s.objects]
    assert min(sides) < 0.55 * 64 and max(sides) > 0.9 * 64
    two = sum(len(s.objects) == 2 for s in scenes) / len(scenes)
    assert 0.05 < two < 0.25
    assert {o.shape for s in scenes for o in s.objects} == {"ellipse", "rectangle", "blob"}


def test_fine_design_shares_the_body_and_differs_in_the_key_part() -> None:
    designs = class_designs(synth_config({**TINY, "evidence": "fine"}))
    assert all(d.cell_probs == (0.2,) * 5 and d.body_pair == () for d in designs)
    assert [d.key_texture for d in designs] == [5, 6, 7, 8]  # as parts: one key texture each
    assert designs[0].name == "synthetic class 0: shared body, key part antidiagonal4"
    body = set(range(5))
    counts = np.zeros((4, 5))
    # key_part_size 0.1 of sqrt(box area) <= 0.1 x 64: a key part <= 2 x floor(3.2) + 1 = 7 px
    for scene in _scenes("fine", 200, key_part_size=[0.1, 0.1]):
        for obj in scene.objects:
            key = obj.key_part
            assert key is not None and key.texture == designs[scene.label].key_texture
            assert set(obj.body_textures) <= body and key.texture not in body
            assert max(key.box[2] - key.box[0], key.box[3] - key.box[1]) + 1 <= 7
            counts[scene.label] += np.bincount(obj.cell_textures.ravel(), minlength=5)
    share = counts / counts.sum(1, keepdims=True)
    assert np.abs(share - 0.2).max() < 0.05  # every class: each body texture alike
    # no body pairs to run out of: only the 15 key textures limit the classes
    assert len(class_designs(synth_config({"evidence": "fine", "num_classes": 15}))) == 15


def test_family_0_is_the_benchmarks_classes() -> None:
    designs = class_designs(synth_config({}))
    first, last = designs[0], designs[9]
    assert (first.wnid, first.body_pair, first.key_texture) == ("n90000000", (0, 1), 5)
    assert first.name == "synthetic class 0: body hstripes4+vstripes4, key part antidiagonal4"
    assert (last.wnid, last.body_pair, last.key_texture) == ("n90000009", (3, 4), 14)
    assert cub_folder(first, 0) == "001.synthetic_class_0"


@pytest.mark.parametrize("family", [1, 2, 14])
def test_other_families_recombine_the_same_textures(family: int) -> None:
    old = class_designs(synth_config({}))
    new = class_designs(synth_config({"family": family}))
    assert {(d.body_pair, d.key_texture) for d in new}.isdisjoint(
        {(d.body_pair, d.key_texture) for d in old}
    )
    key_of_pair = {d.body_pair: d.key_texture for d in old}
    assert all(d.key_texture != key_of_pair[d.body_pair] for d in new)  # not an old class
    assert {d.body_pair for d in new} == {d.body_pair for d in old}
    keys = [d.key_texture for d in new]
    assert len(set(keys)) == 10 and set(keys) <= set(range(5, 20))  # the same vocabulary
    assert {d.wnid for d in new}.isdisjoint({d.wnid for d in old})
    assert all(f"family {family} class" in d.name for d in new)


def test_family_1_by_hand() -> None:
    designs = class_designs(synth_config({"family": 1}))
    first, last = designs[0], designs[9]
    assert (first.wnid, first.body_pair, first.key_texture) == ("n90001000", (0, 1), 6)
    assert first.name == "synthetic family 1 class 0: body hstripes4+vstripes4, key part hstripes2"
    assert (last.wnid, last.key_texture) == ("n90001009", 15)  # a key texture family 0 leaves
    assert cub_folder(first, 0) == "001.synthetic_family_1_class_0"


CUB_TINY = {
    "num_classes": 3,
    "train_per_class": 3,
    "val_per_class": 2,
    "image_size": 32,
    "evidence": "fine",
    "layout": "cub",
    "two_object_prob": 0.0,
    "workers": 1,
}


@pytest.fixture(scope="module")
def cub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "cub"
    generate({**CUB_TINY, "out": str(out), "seed": 5})
    return out


def test_cub_layout_round_trip_through_the_cub_reader(cub: Path) -> None:
    renderer = SceneRenderer(synth_config(CUB_TINY))
    train = read_split({"source": "cub", "root": str(cub)}, "train")
    val = read_split({"source": "cub", "root": str(cub)}, "val")
    folders = ["001.synthetic_class_0", "002.synthetic_class_1", "003.synthetic_class_2"]
    assert train.classes == val.classes == folders
    assert train.class_names == ["synthetic class 0", "synthetic class 1", "synthetic class 2"]
    assert [s.label for s in train.samples] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [s.label for s in val.samples] == [0, 0, 1, 1, 2, 2]
    # train_<i> is the ILSVRC layout's <wnid>_<i>, val_<k> its ILSVRC2012_val_<k>: same scenes
    drawn = [("train", s, 3 * s.label + int(s.image_id[6:])) for s in train.samples]
    drawn += [("val", s, int(s.image_id[4:])) for s in val.samples]
    assert sorted(index for split, _, index in drawn if split == "val") == [1, 2, 3, 4, 5, 6]
    for split, sample, index in drawn:
        assert sample.path.parent.name == folders[sample.label] and sample.size == (32, 32)
        scene = renderer.render(sample.label, image_rng(5, split, index))
        assert len(scene.objects) == 1 and np.array_equal(sample.boxes, scene.boxes)
        assert sample.box_labels.tolist() == [sample.label]
    assert (cub / "images.txt").read_text().splitlines()[0] == (
        "1 001.synthetic_class_0/train_0000.jpg"
    )
    assert dataset_kind({"source": "cub", "root": str(cub)})["evidence"] == "fine"


def test_cub_layout_is_deterministic_and_draws_the_ilsvrc_layouts_scenes(
    cub: Path, tmp_path: Path
) -> None:
    again = tmp_path / "again"
    generate({**CUB_TINY, "out": str(again), "seed": 5, "workers": 2})
    assert tree_digest(again) == tree_digest(cub)
    ilsvrc = tmp_path / "ilsvrc"
    generate({**CUB_TINY, "out": str(ilsvrc), "seed": 5, "layout": "ilsvrc"})
    data = ilsvrc / "ILSVRC/Data/CLS-LOC"
    train = (cub / "images/002.synthetic_class_1/train_0002.jpg").read_bytes()
    assert train == (data / "train/n90000001/n90000001_2.JPEG").read_bytes()
    val = sorted(cub.rglob("val_*.jpg"))
    assert len(val) == 6
    for path in val:
        assert path.read_bytes() == (data / f"val/ILSVRC2012_{path.stem}.JPEG").read_bytes()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"evidence": "stripes"}, "evidence must be"),
        ({"num_classes": 11}, r"num_classes must be 2..10"),
        ({"evidence": "fine", "num_classes": 16}, r"num_classes must be 2..15 with evidence=fine"),
        ({"family": 15}, r"family must be 0..14"),
        ({"layout": "voc"}, "layout must be one of ilsvrc, cub"),
        ({"layout": "cub"}, r"two_object_prob must be 0 with layout=cub \(CUB has one box"),
        ({"object_side": [0.8, 0.4]}, "object_side"),
        ({"pair_prob": 0.1}, "pair_prob"),
        ({"colour": 1}, "colour"),
    ],
)
def test_config_errors(override: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        synth_config(override)
