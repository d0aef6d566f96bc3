"""wsolevaluation's metadata reader (data.source=wsol): labels, sizes, boxes, masks, class names,
the val/test choice, and a one-line error naming the file for every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_fixtures import write_image
from wsol_fixtures import CUB_CLASSES, ILSVRC, OPEN, OPEN_MASKS, WNIDS, write_wsol

from cam_repro.apps import compose
from cam_repro.data import dataset_kind, read_split
from cam_repro.data.check import describe_split
from cam_repro.data.masks import read_masks
from cam_repro.runtime.errors import ConfigError, InputFileError, MissingFileError


def boxes_of(data) -> dict[str, list]:
    return {s.path.name: s.boxes.tolist() for s in data.samples}


# -- what the reader gives -------------------------------------------------------------------


def test_ilsvrc_labels_sizes_boxes_and_classes(tmp_path: Path) -> None:
    cfg = write_wsol(tmp_path, "ILSVRC")
    test = read_split(cfg, "val")
    assert test.split == "val"
    assert test.classes == list(WNIDS)  # named by the train split's folders, label order
    assert test.class_names == ["tench, Tinca tinca", "goldfish", "great white shark"]
    assert [(s.path.name, s.label, s.size) for s in test.samples] == [
        ("ILSVRC2012_val_00000001.JPEG", 1, (50, 40)),
        ("ILSVRC2012_val_00000002.JPEG", 0, (60, 30)),
        ("ILSVRC2012_val_00000003.JPEG", 2, (32, 48)),
    ]
    assert boxes_of(test) == {
        "ILSVRC2012_val_00000001.JPEG": [[0, 0, 49, 39]],
        "ILSVRC2012_val_00000002.JPEG": [[4, 5, 19, 24], [29, 1, 60, 30]],  # as given
        "ILSVRC2012_val_00000003.JPEG": [[0, 9, 15, 47]],
    }
    assert all(s.boxes.dtype == np.int64 for s in test.samples)
    assert [s.box_labels.tolist() for s in test.samples] == [[1], [0, 0], [2]]
    assert all(not s.masks and s.ignore_mask is None for s in test.samples)
    assert "boxes: 4 (1 images with more than one)" in describe_split(test)
    train = read_split(cfg, "train")  # their train has no localization.txt: no boxes
    assert train.classes == list(WNIDS)
    assert [(s.path.parent.name, s.label, s.size) for s in train.samples][:2] == [
        ("n01440764", 0, (20, 16)),
        ("n01440764", 0, (21, 16)),
    ]
    assert not any(len(s.boxes) for s in train.samples)


def test_val_split_reads_their_val_and_classes_without_train(tmp_path: Path) -> None:
    cfg = write_wsol(tmp_path, "ILSVRC")
    val = read_split({**cfg, "split": "val"}, "val")  # ImageNetV2: val2/<label>/
    assert [s.path.relative_to(cfg["root"]).as_posix() for s in val.samples] == list(ILSVRC["val"])
    assert boxes_of(val) == {"aaa.jpeg": [[1, 2, 30, 31]], "bbb.jpeg": [[0, 0, 29, 19]]}
    assert val.classes == list(WNIDS)
    # Without their train split: the folders of this split (val2/<label>/ are consistent), and
    # str(label) where a label has no images; test's flat val/ names nothing.
    meta = Path(cfg["metadata"]) / "ILSVRC"
    for name in ("image_ids.txt", "class_labels.txt", "image_sizes.txt"):
        (meta / "train" / name).unlink()
    assert read_split({**cfg, "split": "val"}, "val").classes == ["0", "1", "2"]
    test = read_split(cfg, "val")
    assert test.classes == ["0", "1", "2"]
    assert test.class_names == ["0", "1", "2"]  # not wnids: no synset mapping entry


def test_cub_class_folders_and_names(tmp_path: Path) -> None:
    cfg = write_wsol(tmp_path, "CUB")
    test = read_split(cfg, "val")
    assert test.classes == list(CUB_CLASSES)
    assert test.class_names == ["Black footed Albatross", "Laysan Albatross"]
    assert boxes_of(test) == {
        "Black_Footed_Albatross_0046_18.jpg": [[6, 2, 38, 28]],
        "Laysan_Albatross_0002_1027.jpg": [[14, 4, 47, 20]],
    }
    train = read_split(cfg, "train")  # their train has boxes too
    assert [s.boxes.tolist() for s in train.samples] == [[[1, 1, 10, 10]], [[2, 2, 29, 19]]]
    val = read_split({**cfg, "split": "val"}, "val")  # CUBV2: one class only, two from train
    assert val.classes == list(CUB_CLASSES)
    assert boxes_of(val) == {"Black_Footed_Albatross_0100_9.jpg": [[0, 0, 40, 30]]}  # x1 = W


def test_openimages_instance_masks_and_ignore(tmp_path: Path) -> None:
    cfg = write_wsol(tmp_path, "OpenImages")
    root = Path(cfg["root"])
    test = read_split(cfg, "val")
    assert test.classes == ["01226z", "0138tl"]  # train/<class>/
    assert test.class_names == test.classes
    first, second = test.samples
    assert first.masks == (
        root / "test/01226z/fdd5_m01226z_6554.png",
        root / "test/01226z/fdd5_m01226z_8856.png",
    )
    assert first.ignore_mask == root / "test/01226z/fdd5_ignore.png"
    assert second.masks == (root / "test/0138tl/4007_m0138tl_936a.png",)
    assert second.ignore_mask is None  # its only line leaves the ignore field empty
    assert all(s.size is None and not len(s.boxes) for s in test.samples)  # no image_sizes.txt
    assert "foreground masks: 2 images" in describe_split(test)
    fg, ignore = read_masks(test.samples, 8, "pil")
    want = np.zeros((2, 8, 8), dtype=bool)
    want[0, :, 0:2] = want[0, 6:8, :] = True  # the union of the two instances
    want[1, 2:4, 2:4] = True
    np.testing.assert_array_equal(fg, want)
    assert ignore is not None
    want_ignore = np.zeros((2, 8, 8), dtype=bool)
    want_ignore[0, 0:6, 2:4] = True  # columns 0-3 minus the foreground
    np.testing.assert_array_equal(ignore, want_ignore)
    val = read_split({**cfg, "split": "val"}, "val")
    assert val.samples[0].ignore_mask == root / "val/0138tl/e2f6_ignore.png"


def test_a_mask_of_another_view_is_refused(tmp_path: Path) -> None:
    """A mask and its image are each resized to the frame: a mask of another aspect ratio (another
    image's, a crop) would put its foreground over other pixels. A scaled copy is fine."""
    cfg = write_wsol(tmp_path, "OpenImages")
    test = read_split(cfg, "val")
    image = Path(cfg["root"]) / "test/0138tl/4007.jpg"
    write_image(image, (16, 12))  # its 8x8 mask no longer covers its view
    with pytest.raises(InputFileError) as err:
        read_masks(test.samples, 8, "pil")
    assert str(err.value) == (
        f"{test.samples[1].masks[0]}: a 8x8 mask for the 16x12 image {image} (another aspect "
        "ratio): both are resized to the evaluated frame, so its foreground would cover other "
        "pixels; use the mask made for this image, at its size or scaled with it"
    )
    write_image(image, (32, 31))  # within one mask pixel of 8x8's aspect: a scaled copy
    assert read_masks(test.samples, 8, "pil")[0].shape == (2, 8, 8)


def test_mask_root_and_relative_metadata(tmp_path: Path) -> None:
    cfg = write_wsol(tmp_path, "OpenImages")
    root = Path(cfg["root"])
    (tmp_path / "masks").mkdir()
    (root / "test").rename(tmp_path / "masks" / "test")  # masks and images both moved
    for image_id in OPEN["test"]:
        write_image(root / image_id, (16, 12))
    relative = {**cfg, "metadata": "../../metadata", "mask_root": str(tmp_path / "masks")}
    test = read_split(relative, "val")
    assert test.samples[0].masks[0] == tmp_path / "masks/test/01226z/fdd5_m01226z_6554.png"
    assert test.samples[0].ignore_mask == tmp_path / "masks/test/01226z/fdd5_ignore.png"


def test_missing_image_is_skipped_with_bad_images_skip(tmp_path: Path) -> None:
    cfg = write_wsol(tmp_path, "ILSVRC")
    missing = Path(cfg["root"]) / "val/ILSVRC2012_val_00000002.JPEG"
    missing.unlink()
    data = read_split({**cfg, "bad_images": "skip"}, "val")
    assert [s.path.name for s in data.samples] == [
        "ILSVRC2012_val_00000001.JPEG",
        "ILSVRC2012_val_00000003.JPEG",
    ]
    ids = Path(cfg["metadata"]) / "ILSVRC/test/image_ids.txt"
    assert data.skipped == [(missing, f"image file is missing (listed in {ids} line 2)")]


def test_preset_through_compose(tmp_path: Path) -> None:
    """As cam-eval reads it: the data=wsol preset with the root and metadata given."""
    cfg = write_wsol(tmp_path, "CUB")
    given = [f"data.root={cfg['root']}", f"data.metadata={cfg['metadata']}", "data.dataset=CUB"]
    data = compose("data", ["data=wsol", *given]).data
    assert (data.source, data.split, data.image_size, data.train_augment) == (
        "wsol",
        "test",
        224,
        "scale_crop",
    )
    assert len(read_split(data, "val")) == 2
    assert dataset_kind(data) == {
        "kind": "wsol",
        "task": "classes",
        "evidence": None,
        "name": "CUB test (wsolevaluation)",
        "wsol_dataset": "CUB",
        "wsol_split": "test",
    }
    val = compose("data", ["data=wsol", *given, "data.split=val"]).data
    assert len(read_split(val, "val")) == 1
    with pytest.raises(ConfigError, match=r"data.metadata"):
        read_split(compose("data", ["data=wsol", f"data.root={cfg['root']}"]).data, "val")


# -- bad input: one line naming the file -----------------------------------------------------


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines))


def _edit(name: str, change):
    def apply(meta: Path) -> None:
        path = meta / name
        _write(path, change(_lines(path)))

    return apply


TEST = "ILSVRC/test"
V1, V2 = "val/ILSVRC2012_val_00000001.JPEG", "val/ILSVRC2012_val_00000002.JPEG"
BAD = [
    ("label not in ids", _edit(f"{TEST}/class_labels.txt", lambda ls: [*ls, "val/x.JPEG,1"]),
     InputFileError, r"class_labels.txt line 4: image val/x.JPEG is not in .*image_ids.txt"),
    ("no label", _edit(f"{TEST}/class_labels.txt", lambda ls: ls[1:]),
     InputFileError, rf"class_labels.txt: no label for image {V1}"),
    ("no size", _edit(f"{TEST}/image_sizes.txt", lambda ls: ls[:2]),
     InputFileError, r"image_sizes.txt: no size for image val/ILSVRC2012_val_00000003.JPEG"),
    ("size not in ids", _edit(f"{TEST}/image_sizes.txt", lambda ls: [*ls, "val/y.JPEG,3,3"]),
     InputFileError, r"image_sizes.txt line 4: image val/y.JPEG is not in"),
    ("box not in ids", _edit(f"{TEST}/localization.txt", lambda ls: [*ls, "val/y.JPEG,0,0,1,1"]),
     InputFileError, r"localization.txt line 5: image val/y.JPEG is not in"),
    ("no box", _edit(f"{TEST}/localization.txt", lambda ls: ls[1:]),
     InputFileError, rf"localization.txt: no box for image {V1}"),
    ("field count", _edit(f"{TEST}/localization.txt", lambda ls: [ls[0] + ",3", *ls[1:]]),
     InputFileError, r"localization.txt line 1: expected '<image id>,<x0>,<y0>,<x1>,<y1>', got"),
    ("label count", _edit(f"{TEST}/class_labels.txt", lambda ls: [f"{V1}", *ls[1:]]),
     InputFileError, r"class_labels.txt line 1: expected '<image id>,<label>'"),
    ("non-integer label", _edit(f"{TEST}/class_labels.txt", lambda ls: [f"{V1},one", *ls[1:]]),
     InputFileError, rf"class_labels.txt line 1 \(image {V1}\): label 'one' is not an integer"),
    ("negative label", _edit(f"{TEST}/class_labels.txt", lambda ls: [f"{V1},-1", *ls[1:]]),
     InputFileError, r"class_labels.txt line 1 .*: label -1 is below 0"),
    ("non-integer size", _edit(f"{TEST}/image_sizes.txt", lambda ls: [f"{V1},50.5,40", *ls[1:]]),
     InputFileError, r"image_sizes.txt line 1 .*: width '50.5' is not an integer"),
    ("non-integer box", _edit(f"{TEST}/localization.txt", lambda ls: [f"{V1},0,0,4.5,9", *ls[1:]]),
     InputFileError, r"localization.txt line 1 .*: coordinate '4.5' is not an integer"),
    ("box past the width", _edit(f"{TEST}/localization.txt", lambda ls: [f"{V1},0,0,51,9"]),
     InputFileError, rf"localization.txt line 1 \(image {V1}\): box \(0, 0, 51, 9\) is not"),
    ("box x1 < x0", _edit(f"{TEST}/localization.txt", lambda ls: [f"{V1},9,0,8,9", *ls[1:]]),
     InputFileError, r"localization.txt line 1 .*: box \(9, 0, 8, 9\) is not 0 <= x0 <= x1"),
    ("duplicate id", _edit(f"{TEST}/image_ids.txt", lambda ls: [*ls, V2]),
     InputFileError, rf"image_ids.txt line 4: image {V2} is listed twice \(also line 2\)"),
    ("duplicate label", _edit(f"{TEST}/class_labels.txt", lambda ls: [*ls, f"{V2},0"]),
     InputFileError, rf"class_labels.txt line 4: image {V2} has a second label"),
    ("duplicate size", _edit(f"{TEST}/image_sizes.txt", lambda ls: [*ls, f"{V2},60,30"]),
     InputFileError, rf"image_sizes.txt line 4: image {V2} has a second size"),
    ("empty ids", _edit(f"{TEST}/image_ids.txt", lambda ls: []),
     InputFileError, r"image_ids.txt: no image ids"),
    ("missing labels file", lambda meta: (meta / TEST / "class_labels.txt").unlink(),
     MissingFileError, r"ILSVRC/test/class_labels.txt: missing"),
    ("missing sizes file", lambda meta: (meta / TEST / "image_sizes.txt").unlink(),
     MissingFileError, r"ILSVRC/test/image_sizes.txt: missing"),
    ("missing localization", lambda meta: (meta / TEST / "localization.txt").unlink(),
     MissingFileError, r"ILSVRC/test/localization.txt: missing"),
    ("missing split folder", lambda meta: (meta / "ILSVRC/test").rename(meta / "elsewhere"),
     MissingFileError, r"ILSVRC/test: missing"),
    ("missing dataset folder", lambda meta: (meta / "ILSVRC").rename(meta / "Other"),
     MissingFileError, r"metadata/ILSVRC: missing \(data.metadata must be"),
    ("bad train labels", _edit("ILSVRC/train/class_labels.txt", lambda ls: [*ls, "x"]),
     InputFileError, r"ILSVRC/train/class_labels.txt line 5: expected"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "change", "error", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_metadata(tmp_path: Path, what: str, change, error: type, message: str) -> None:
    cfg = write_wsol(tmp_path, "ILSVRC")
    change(Path(cfg["metadata"]))
    with pytest.raises(error, match=message) as err:
        read_split(cfg, "val")
    assert "\n" not in str(err.value)


def test_missing_image_and_metadata_folder(tmp_path: Path) -> None:
    cfg = write_wsol(tmp_path, "ILSVRC")
    (Path(cfg["root"]) / V2).unlink()
    with pytest.raises(MissingFileError, match=rf"image_ids.txt line 2: .*{V2}: image file is"):
        read_split(cfg, "val")
    with pytest.raises(MissingFileError, match=r"data.metadata .*nowhere does not exist"):
        read_split({**cfg, "metadata": str(tmp_path / "nowhere")}, "val")


OPEN_TEST = "OpenImages/test/localization.txt"


def _on_meta(change):
    """A change of OpenImages test's localization.txt lines, as BAD_MASKS' (root, meta) step."""
    return lambda root, meta: _edit(OPEN_TEST, change)(meta)


BAD_MASKS = [
    ("missing mask", lambda root, meta: (root / OPEN_MASKS["test"][1][1]).unlink(),
     MissingFileError, r"localization.txt line 2 \(image test/01226z/fdd5.jpg\): mask .* missing"),
    ("missing ignore", lambda root, meta: (root / OPEN_MASKS["test"][0][2]).unlink(),
     MissingFileError, r"localization.txt line 1 .*: ignore mask .*fdd5_ignore.png is missing"),
    ("second ignore", _on_meta(lambda ls: [ls[0], ls[1] + "x.png", ls[2]]),
     InputFileError, r"localization.txt line 2 .*: a second ignore mask"),
    ("no masks", _on_meta(lambda ls: ls[:2]),
     InputFileError, r"localization.txt: no mask for image test/0138tl/4007.jpg"),
    ("field count", _on_meta(lambda ls: [ls[0] + ",", *ls[1:]]),
     InputFileError, r"localization.txt line 1: expected '<image id>,<mask>,<ignore mask>'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "change", "error", "message"), BAD_MASKS, ids=[b[0] for b in BAD_MASKS]
)
def test_bad_masks(tmp_path: Path, what: str, change, error: type, message: str) -> None:
    cfg = write_wsol(tmp_path, "OpenImages")
    change(Path(cfg["root"]), Path(cfg["metadata"]))
    with pytest.raises(error, match=message) as err:
        read_split(cfg, "val")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"dataset": "ImageNet"}, r"data.dataset must be one of ILSVRC, CUB, OpenImages"),
        ({"split": "train"}, r"data.split must be one of test, val"),
        ({"metadata": None}, r"data.source=wsol needs data.metadata"),
    ],
)
def test_bad_keys(tmp_path: Path, keys: dict, message: str) -> None:
    cfg = write_wsol(tmp_path, "ILSVRC")
    with pytest.raises(ConfigError, match=message):
        read_split({**cfg, **keys}, "val")


def test_unknown_split(tmp_path: Path) -> None:
    cfg = write_wsol(tmp_path, "ILSVRC")
    with pytest.raises(ConfigError, match=r"unknown split 'test'; data.source=wsol has"):
        read_split(cfg, "test")
