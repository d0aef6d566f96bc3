"""Image-folder reader (data.source=folder): both layouts, XML and CSV boxes, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_fixtures import ilsvrc_xml, write_image

from cam_repro.apps import compose
from cam_repro.data import dataset_kind, read_split
from cam_repro.runtime.errors import ConfigError, InputFileError, MissingFileError

# Class folders: path under ROOT -> image size. train/ has bird, cat, dog (dog with a sub-folder,
# counted as ImageFolder does); .hidden/ and notes.txt are ignored; there is no val/, so test/ is
# the val split.
CLASS_TREE = {
    "train/cat/c1.jpg": (20, 16),
    "train/cat/c2.png": (30, 20),
    "train/bird/b1.jpg": (24, 24),
    "train/dog/d1.jpg": (25, 25),
    "train/dog/sub/d2.jpg": (26, 26),
    "train/.hidden/h.jpg": (8, 8),
    "test/cat/t1.jpg": (40, 30),
    "test/dog/t2.jpg": (50, 40),
}
# Split files (SUN397-like: a leading "/", two-level classes), under ROOT/images/.
LIST_TREE = {
    "a/abbey/sun_a.jpg": (20, 20),
    "a/abbey/sun_b.jpg": (30, 20),
    "a/airport/sun_d.jpg": (16, 16),
    "b/bakery/sun_c.jpg": (40, 30),
}
TRAIN_LIST = "# SUN397-style\n/a/abbey/sun_a.jpg\n\nb/bakery/sun_c.jpg\n/a/airport/sun_d.jpg\n"
VAL_LIST = "/a/abbey/sun_b.jpg\n"


def write_classes(root: Path) -> Path:
    for rel, size in CLASS_TREE.items():
        write_image(root / rel, size)
    (root / "train/cat/notes.txt").write_text("not an image")
    return root


def write_lists(root: Path, val_list: str = VAL_LIST) -> dict[str, str]:
    for rel, size in LIST_TREE.items():
        write_image(root / "images" / rel, size)
    (root / "train.txt").write_text(TRAIN_LIST)
    (root / "val.txt").write_text(val_list)
    return {
        "source": "folder",
        "root": str(root),
        "image_dir": "images",
        "train_list": "train.txt",
        "val_list": str(root / "val.txt"),  # absolute works too
    }


def folder(root: Path, **keys: object) -> dict[str, object]:
    return {"source": "folder", "root": str(root), **keys}


def listing(data) -> list[tuple[str, int]]:
    return [(s.path.relative_to(data.root).as_posix(), s.label) for s in data.samples]


# -- class folders per split -------------------------------------------------------------------


def test_class_folders_labels_and_order(tmp_path: Path) -> None:
    root = write_classes(tmp_path)
    train = read_split(folder(root), "train")
    assert train.classes == ["bird", "cat", "dog"]
    assert train.class_names == ["bird", "cat", "dog"]
    assert listing(train) == [
        ("train/bird/b1.jpg", 0),
        ("train/cat/c1.jpg", 1),
        ("train/cat/c2.png", 1),
        ("train/dog/d1.jpg", 2),
        ("train/dog/sub/d2.jpg", 2),
    ]
    assert all(s.size is None and s.boxes.shape == (0, 4) for s in train.samples)
    assert "class folders" in train.source and "no boxes" in train.source


@pytest.mark.parametrize("split", ["val", "test"])
def test_val_is_the_test_folder_when_there_is_no_val_folder(tmp_path: Path, split: str) -> None:
    root = write_classes(tmp_path)
    data = read_split(folder(root), split)
    assert data.classes == ["bird", "cat", "dog"]  # the train folders', though test/ has no bird
    assert listing(data) == [("test/cat/t1.jpg", 1), ("test/dog/t2.jpg", 2)]


def test_val_folder_wins_over_test(tmp_path: Path) -> None:
    root = write_classes(tmp_path)
    write_image(root / "val/bird/v1.jpg", (10, 10))
    assert listing(read_split(folder(root), "test")) == [("val/bird/v1.jpg", 0)]


def test_xml_boxes_beside_the_images(tmp_path: Path) -> None:
    root = write_classes(tmp_path)
    # names are not labels: both objects are boxes of t1's class (cat)
    xml = ilsvrc_xml((40, 30), [("n01440764", 1, 1, 40, 30), ("whatever", 5, 6, 20, 25)])
    (root / "test/cat/t1.xml").write_text(xml)
    data = read_split(folder(root), "val")
    t1, t2 = data.samples
    assert t1.size == (40, 30)
    assert t1.boxes.tolist() == [[0, 0, 39, 29], [4, 5, 19, 24]]  # 1-based -> 0-based
    assert t1.box_labels.tolist() == [1, 1]
    assert (t2.size, t2.boxes.shape, t2.box_labels.tolist()) == (None, (0, 4), [])
    assert "XML" in data.source


CSV = (
    "image,x0,y0,x1,y1\n"
    "dog/t2.jpg,0,0,49,39\n"
    "dog/t2.jpg,10,5,20,15\n"
    "cat/c1.jpg,2,3,10,12\n"  # a train image: ignored by the val split
)


def test_csv_boxes_several_per_image_and_sizes(tmp_path: Path) -> None:
    root = write_classes(tmp_path)
    (root / "boxes.csv").write_text(CSV)
    val = read_split(folder(root, boxes="boxes.csv"), "val")
    t1, t2 = val.samples
    assert (t1.size, t1.boxes.shape) == (None, (0, 4))
    assert t2.size == (50, 40)
    assert t2.boxes.tolist() == [[0, 0, 49, 39], [10, 5, 20, 15]]  # 0-based inclusive, as given
    assert t2.box_labels.tolist() == [2, 2]
    assert str(root / "boxes.csv") in val.source
    train = read_split(folder(root, boxes="boxes.csv"), "train")
    c1 = train.samples[1]
    assert (c1.path.name, c1.size, c1.boxes.tolist(), c1.box_labels.tolist()) == (
        "c1.jpg",
        (20, 16),
        [[2, 3, 10, 12]],
        [1],
    )


def test_csv_name_in_both_split_folders_needs_its_split(tmp_path: Path) -> None:
    root = write_classes(tmp_path)
    write_image(root / "test/cat/c1.jpg", (60, 60))  # the same name as train/cat/c1.jpg
    (root / "boxes.csv").write_text("image,x0,y0,x1,y1\ncat/c1.jpg,0,0,50,50\n")
    with pytest.raises(InputFileError, match=r"boxes.csv line 2: image cat/c1.jpg is in both"):
        read_split(folder(root, boxes="boxes.csv"), "val")
    (root / "boxes.csv").write_text("image,x0,y0,x1,y1\ntest/cat/c1.jpg,0,0,50,50\n")
    assert read_split(folder(root, boxes="boxes.csv"), "val").samples[0].boxes.tolist() == [
        [0, 0, 50, 50]
    ]
    assert read_split(folder(root, boxes="boxes.csv"), "train").samples[1].size is None


# -- split files -------------------------------------------------------------------------------


def test_split_files_classes_labels_and_order(tmp_path: Path) -> None:
    cfg = write_lists(tmp_path)
    train, val = read_split(cfg, "train"), read_split(cfg, "val")
    assert train.classes == val.classes == ["a/abbey", "a/airport", "b/bakery"]
    assert val.class_names == ["a/abbey", "a/airport", "b/bakery"]
    assert listing(train) == [
        ("images/a/abbey/sun_a.jpg", 0),
        ("images/b/bakery/sun_c.jpg", 2),
        ("images/a/airport/sun_d.jpg", 1),
    ]
    assert listing(val) == [("images/a/abbey/sun_b.jpg", 0)]
    assert str(tmp_path / "val.txt") in val.source


def test_split_files_with_csv_boxes_relative_to_image_dir(tmp_path: Path) -> None:
    cfg = write_lists(tmp_path)
    (tmp_path / "boxes.csv").write_text("image,x0,y0,x1,y1\n/a/abbey/sun_b.jpg,1,2,29,19\n")
    (sample,) = read_split({**cfg, "boxes": "boxes.csv"}, "val").samples
    assert (sample.size, sample.boxes.tolist(), sample.box_labels.tolist()) == (
        (30, 20),
        [[1, 2, 29, 19]],
        [0],
    )


def test_split_files_skip_a_missing_image(tmp_path: Path) -> None:
    cfg = write_lists(tmp_path, val_list="a/abbey/sun_b.jpg\na/abbey/sun_zzz.jpg\n")
    data = read_split({**cfg, "bad_images": "skip"}, "val")
    assert listing(data) == [("images/a/abbey/sun_b.jpg", 0)]
    assert [(p.name, why) for p, why in data.skipped] == [
        ("sun_zzz.jpg", f"image file is missing (listed in {tmp_path / 'val.txt'} line 2)")
    ]


# -- the preset and dataset_kind ---------------------------------------------------------------


def test_preset_through_read_split_and_dataset_kind(tmp_path: Path) -> None:
    root = write_classes(tmp_path / "flowers")
    cfg = compose("data", ["data=folder", f"data.root={root}"]).data
    assert (cfg.source, cfg.train_augment, cfg.resize_size) == ("folder", "scale_crop", 256)
    assert len(read_split(cfg, "train")) == 5
    assert dataset_kind(cfg) == {
        "kind": "folder",
        "task": "classes",
        "evidence": None,
        "name": "flowers",
    }
    named = compose("data", ["data=folder", f"data.root={root}", "data.name=Flowers-3"]).data
    assert dataset_kind(named)["name"] == "Flowers-3"
    assert dataset_kind({"source": "cub", "root": str(root)})["name"] == "CUB-200-2011"


SYNTH_NAMES = [
    ({"evidence": "parts"}, "synthetic (parts)", 0),
    ({"evidence": "uniform", "family": 2}, "synthetic (uniform, family 2)", 2),
    ({"evidence": "parts", "task": "text"}, "synthetic text", 0),
    ({"evidence": "parts", "task": "vqa"}, "synthetic VQA", 0),
]


@pytest.mark.parametrize(("design", "name", "family"), SYNTH_NAMES)
def test_dataset_kind_names_synthetic_data(
    tmp_path: Path, design: dict, name: str, family: int
) -> None:
    (tmp_path / "synth.json").write_text(json.dumps({"config": design}))
    task = design.get("task", "classes")
    assert dataset_kind({"root": str(tmp_path)}) == {
        "kind": "synthetic",
        "task": task,
        "evidence": design["evidence"] if task == "classes" else None,
        "family": family,
        "name": name,
    }


# -- bad input: one clear error naming the file ------------------------------------------------


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=r"data.root .*nowhere does not exist"):
        read_split(folder(tmp_path / "nowhere"), "train")


def test_missing_split_folders(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=r"split 'train' not found: .*train is missing"):
        read_split(folder(tmp_path), "train")
    write_image(tmp_path / "train/cat/c1.jpg", (8, 8))
    with pytest.raises(MissingFileError, match=r"split 'val' not found: neither .*val nor .*test"):
        read_split(folder(tmp_path), "val")


def test_class_folder_without_images(tmp_path: Path) -> None:
    root = write_classes(tmp_path)
    (root / "train/emu").mkdir()
    (root / "train/emu/notes.txt").write_text("x")
    with pytest.raises(InputFileError, match=r"train/emu: class folder has no images"):
        read_split(folder(root), "train")


def test_unknown_val_class_folder(tmp_path: Path) -> None:
    root = write_classes(tmp_path)
    write_image(root / "test/fish/f.jpg", (8, 8))
    with pytest.raises(InputFileError, match=r"test/fish: class folder fish is not a class"):
        read_split(folder(root), "val")


def test_images_outside_the_class_folders(tmp_path: Path) -> None:
    root = write_classes(tmp_path)
    write_image(root / "test/loose.jpg", (8, 8))
    with pytest.raises(InputFileError, match=r"test: 1 image\(s\) outside the class folders"):
        read_split(folder(root), "val")


def test_list_line_to_a_missing_file(tmp_path: Path) -> None:
    cfg = write_lists(tmp_path, val_list="# val\na/abbey/sun_b.jpg\na/abbey/sun_zzz.jpg\n")
    with pytest.raises(
        MissingFileError,
        match=r"val.txt line 3: .*images/a/abbey/sun_zzz.jpg: image file is missing",
    ):
        read_split(cfg, "val")


def test_unknown_class_in_the_val_list(tmp_path: Path) -> None:
    cfg = write_lists(tmp_path, val_list="a/abbey/sun_b.jpg\n/c/castle/x.jpg\n")
    with pytest.raises(InputFileError, match=r"val.txt line 2: class c/castle is not a class"):
        read_split(cfg, "val")


@pytest.mark.parametrize(
    ("given", "other"), [("train_list", "val_list"), ("val_list", "train_list")]
)
def test_only_one_split_file(tmp_path: Path, given: str, other: str) -> None:
    with pytest.raises(ConfigError, match=f"data.{given} is set but data.{other} is not"):
        read_split(folder(tmp_path, **{given: "x.txt"}), "train")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("dog/t2.jpg,0,0,49", r"line 3: expected 5 fields"),
        ("dog/t2.jpg,0,0,x,39", r"line 3: x1 'x' is not an integer"),
        ("dog/t2.jpg,20,0,10,39", r"line 3: box has x1 < x0"),
        ("dog/t2.jpg,-1,0,10,39", r"line 3: box \(-1, 0, 10, 39\) has a negative coordinate"),
        ("dog/t2.jpg,0,0,50,39", r"line 3: box \(0, 0, 50, 39\) .*outside the bounds of the 50x40"),
        ("fish/f.jpg,0,0,5,5", r"line 3: image fish/f.jpg not found"),
    ],
)
def test_bad_csv_rows(tmp_path: Path, row: str, message: str) -> None:
    root = write_classes(tmp_path)
    (root / "boxes.csv").write_text(f"image,x0,y0,x1,y1\ndog/t2.jpg,0,0,49,39\n{row}\n")
    with pytest.raises(InputFileError, match=r"boxes.csv " + message):
        read_split(folder(root, boxes="boxes.csv"), "val")


def test_bad_csv_header(tmp_path: Path) -> None:
    root = write_classes(tmp_path)
    (root / "boxes.csv").write_text("path,xmin,ymin,xmax,ymax\n")
    with pytest.raises(InputFileError, match=r"boxes.csv: the header must be 'image,x0,y0,x1,y1'"):
        read_split(folder(root, boxes="boxes.csv"), "val")
