"""ILSVRC readers on folders the tests write: both layouts, both annotation sources, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_fixtures import VAL, WNIDS, csv_rows, ilsvrc_xml, write_classic, write_image, write_kaggle

from cam_repro.data import (
    LocalizationDataset,
    collate_skipping,
    data_config,
    eval_transform,
    read_split,
)
from cam_repro.runtime.errors import InputFileError, MissingFileError

# VAL's boxes after the documented conversion (1-based inclusive -> 0-based inclusive, 0 -> 0).
EXPECTED = {
    "ILSVRC2012_val_00000001": (1, (50, 40), [[0, 0, 49, 39]]),
    "ILSVRC2012_val_00000002": (0, (60, 30), [[4, 5, 19, 24], [29, 1, 59, 29]]),
    "ILSVRC2012_val_00000003": (2, (32, 48), [[0, 9, 15, 47]]),
}


def check_val(data) -> None:
    assert data.classes == list(WNIDS)
    assert data.class_names[2] == "great white shark, white shark"
    got = {s.image_id: (s.label, s.size, s.boxes.tolist()) for s in data.samples}
    assert got == {k: (lbl, size, boxes) for k, (lbl, size, boxes) in EXPECTED.items()}
    two = next(s for s in data.samples if s.image_id.endswith("2"))
    assert two.box_labels.tolist() == [0, 0]


@pytest.mark.parametrize("val_labels", ["xml", "csv", "auto"])
def test_kaggle_layout_val_from_xml_or_csv(tmp_path: Path, val_labels: str) -> None:
    root = write_kaggle(tmp_path)
    data = read_split({"root": str(root), "val_labels": val_labels}, "val")
    check_val(data)
    assert ("LOC_val_solution.csv" in data.source) == (val_labels == "csv")


def test_kaggle_train_split_is_sorted_wnid_folders(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path)
    data = read_split({"root": str(root)}, "train")
    assert [s.label for s in data.samples] == [0, 0, 1, 2, 2, 2]
    assert [s.path.parent.name for s in data.samples][:2] == ["n01440764"] * 2
    assert all(len(s.boxes) == 0 for s in data.samples)


def test_csv_only_reads_sizes_from_the_images(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path, xml=False)
    check_val(read_split({"root": str(root)}, "val"))


@pytest.mark.parametrize("boxes_dir", ["ILSVRC2012_bbox_val_v3/val", "bbox_val", "val"])
def test_classic_layout_finds_the_val_xml(tmp_path: Path, boxes_dir: str) -> None:
    root = write_classic(tmp_path, boxes_dir)
    data = read_split({"root": str(root)}, "val")
    check_val(data)
    assert "classic" in data.source


def test_classic_layout_with_val_class_folders_and_given_csv(tmp_path: Path) -> None:
    root = write_classic(tmp_path, "elsewhere")
    for image_id, (_, objects) in VAL.items():  # move val images into val/<wnid>/
        src = root / "val" / f"{image_id}.JPEG"
        dst = root / "val" / objects[0][0] / src.name
        dst.parent.mkdir(exist_ok=True)
        src.rename(dst)
    (tmp_path / "solution.csv").write_text(csv_rows())
    data = read_split({"root": str(root), "val_annotations": str(tmp_path / "solution.csv")}, "val")
    check_val(data)


def test_eval_only_copy_takes_classes_from_the_synset_mapping(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path)
    for p in sorted((root / "ILSVRC/Data/CLS-LOC/train").rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    (root / "ILSVRC/Data/CLS-LOC/train").rmdir()
    check_val(read_split({"root": str(root)}, "val"))
    with pytest.raises(MissingFileError, match="split 'train' not found"):
        read_split({"root": str(root)}, "train")


def test_layout_forced_in_config(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path)
    with pytest.raises(MissingFileError, match="split 'val' not found"):
        read_split({"root": str(root), "layout": "classic"}, "val")


# -- bad input: one clear error naming the file ------------------------------------------------


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=r"data.root .*nowhere does not exist"):
        read_split({"root": str(tmp_path / "nowhere")}, "val")


def test_not_an_ilsvrc_folder(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="not an ILSVRC folder"):
        read_split({"root": str(tmp_path)}, "val")


def test_class_folder_without_images(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path)
    (root / "ILSVRC/Data/CLS-LOC/train/n09999999").mkdir()
    (root / "ILSVRC/Data/CLS-LOC/train/n09999999/notes.txt").write_text("x")
    with pytest.raises(InputFileError, match=r"n09999999: class folder has no images"):
        read_split({"root": str(root)}, "train")


def _xml(root: Path, image_id: str = "ILSVRC2012_val_00000002") -> Path:
    return root / "ILSVRC/Annotations/CLS-LOC/val" / f"{image_id}.xml"


def test_xml_that_does_not_parse(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path)
    _xml(root).write_text("<annotation><size><width>60</width>")
    with pytest.raises(InputFileError, match=r"ILSVRC2012_val_00000002.xml: XML does not parse"):
        read_split({"root": str(root)}, "val")


def test_xml_entities_are_never_resolved(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("n01440764")
    text = ilsvrc_xml((60, 30), [("&x;", 1, 1, 5, 5)])
    _xml(root).write_text(f'<!DOCTYPE a [<!ENTITY x SYSTEM "file://{secret}">]>{text}')
    with pytest.raises(InputFileError, match="declares a DTD or entities"):
        read_split({"root": str(root)}, "val")


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ((20, 5, 10, 25), "x1 < x0"),
        ((5, 25, 20, 6), "y1 < y0"),
        ((5, 6, 61, 25), "outside the bounds of the 60x30 image"),
        ((5, 6, 20, 31), "outside the bounds"),
    ],
)
def test_bad_boxes_in_xml(tmp_path: Path, box: tuple, message: str) -> None:
    root = write_kaggle(tmp_path)
    _xml(root).write_text(ilsvrc_xml((60, 30), [("n01440764", *box)]))
    with pytest.raises(
        InputFileError, match=rf"val_00000002.xml: object 1 \(n01440764\).*{message}"
    ):
        read_split({"root": str(root)}, "val")


def test_bad_box_in_csv_checked_against_the_image(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path, xml=False)
    rows = csv_rows().replace("n01443537 1 1 50 40", "n01443537 1 1 51 40")
    (root / "LOC_val_solution.csv").write_text(rows)
    with pytest.raises(InputFileError, match=r"LOC_val_solution.csv, image .*00000001.*outside"):
        read_split({"root": str(root)}, "val")


def test_wnid_that_is_not_a_training_class(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path)
    _xml(root).write_text(ilsvrc_xml((60, 30), [("n09999999", 1, 1, 5, 5)]))
    with pytest.raises(
        InputFileError, match=r"00000002.xml: wnid n09999999 is not a training class"
    ):
        read_split({"root": str(root)}, "val")


@pytest.mark.parametrize(
    "prediction", ["n01443537 1 1 50", "n01443537 1 one 50 40", "", "n01443537 1 1 50 40 n0144"]
)
def test_malformed_prediction_string(tmp_path: Path, prediction: str) -> None:
    root = write_kaggle(tmp_path, xml=False)
    rows = csv_rows().replace("n01443537 1 1 50 40 ", prediction)
    (root / "LOC_val_solution.csv").write_text(rows)
    with pytest.raises(
        InputFileError, match=r"LOC_val_solution.csv line 2: malformed PredictionString"
    ):
        read_split({"root": str(root)}, "val")


def test_missing_xml_for_a_val_image(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path)
    _xml(root).unlink()
    with pytest.raises(MissingFileError, match=r"ILSVRC2012_val_00000002.xml: missing"):
        read_split({"root": str(root)}, "val")


def test_corrupt_image_is_an_error_or_skipped_with_a_count(tmp_path: Path, caplog) -> None:
    root = write_kaggle(tmp_path, xml=False)
    bad = root / "ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_00000003.JPEG"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(
        InputFileError, match=r"ILSVRC2012_val_00000003.JPEG: unreadable or corrupt"
    ):
        read_split({"root": str(root)}, "val")
    data = read_split({"root": str(root), "bad_images": "skip"}, "val")
    assert [s.image_id for s in data.samples] == [
        "ILSVRC2012_val_00000001",
        "ILSVRC2012_val_00000002",
    ]
    assert [p for p, _ in data.skipped] == [bad]
    assert "skipped 1 unreadable image" in caplog.text


def test_truncated_image_fails_when_loaded(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path)
    path = write_image(root / "ILSVRC/Data/CLS-LOC/train/n01440764/n01440764_0.JPEG", (300, 200))
    path.write_bytes(path.read_bytes()[:400])  # header intact, pixels cut off
    data = read_split({"root": str(root)}, "train")
    transform = eval_transform(
        data_config({"root": str(root), "image_size": 16, "resize_size": 16})
    )
    with pytest.raises(InputFileError, match=r"n01440764_0.JPEG: unreadable or corrupt"):
        LocalizationDataset(data, transform)[0]
    skipping = LocalizationDataset(data, transform, bad_images="skip")
    batch = collate_skipping([skipping[i] for i in range(3)])
    assert [index for index, _ in batch[3]] == [0]  # the skipped image, reported with the batch
    assert batch[0].shape == (2, 3, 16, 16)
    assert batch[2].tolist() == [1, 2] and np.array_equal(batch[1], [0, 1])
