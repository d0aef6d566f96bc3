"""CUB-200-2011 reader: splits, class order, x/y/width/height boxes, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_fixtures import CUB, write_cub

from cam_repro.data import read_split
from cam_repro.runtime.errors import InputFileError, MissingFileError


def test_splits_labels_sizes_and_box_conversion(tmp_path: Path) -> None:
    root = write_cub(tmp_path / "CUB_200_2011")
    train = read_split({"source": "cub", "root": str(tmp_path)}, "train")  # the parent folder works
    val = read_split({"source": "cub", "root": str(root)}, "val")
    assert train.classes == ["001.Black_footed_Albatross", "002.Laysan_Albatross"]
    assert train.class_names == ["Black footed Albatross", "Laysan Albatross"]
    assert [(s.path.name, s.label) for s in train.samples] == [("a_1.jpg", 0), ("b_1.jpg", 1)]
    # x y w h -> x0 = x, x1 = x + w - 1 (0-based inclusive)
    assert [s.boxes.tolist() for s in train.samples] == [[[0, 0, 39, 29]], [[3, 4, 7, 9]]]
    assert [(s.size, s.boxes.tolist()) for s in val.samples] == [
        ((50, 40), [[10, 5, 29, 19]]),
        ((64, 48), [[60, 40, 63, 47]]),
    ]


def test_box_outside_the_image(tmp_path: Path) -> None:
    cub = dict(CUB)
    cub[4] = (*CUB[4][:3], "60.0 40.0 5.0 8.0", 0)  # x + w = 65 > width 64
    root = write_cub(tmp_path, cub)
    with pytest.raises(InputFileError, match=r"bounding_boxes.txt \(image 4\): box .*outside"):
        read_split({"source": "cub", "root": str(root)}, "val")


def test_missing_metadata_file(tmp_path: Path) -> None:
    root = write_cub(tmp_path)
    (root / "train_test_split.txt").unlink()
    with pytest.raises(MissingFileError, match=r"train_test_split.txt: missing"):
        read_split({"source": "cub", "root": str(root)}, "train")


def test_malformed_line(tmp_path: Path) -> None:
    root = write_cub(tmp_path)
    (root / "bounding_boxes.txt").write_text("1 0 0 40\n")
    with pytest.raises(InputFileError, match=r"bounding_boxes.txt line 1: expected"):
        read_split({"source": "cub", "root": str(root)}, "train")
