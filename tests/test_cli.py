"""The installed console scripts, run as a user runs them: from another folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    exe = BIN / args[0]
    if not exe.exists():
        pytest.fail(f"{exe} is not installed: run `pip install -e .` first")
    return subprocess.run(
        [str(exe), *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_cam_models_one_variant_from_any_folder(tmp_path: Path) -> None:
    result = run(tmp_path, "cam-models", "model=alexnet_star_gap", "model.width_mult=0.25")
    assert result.returncode == 0, result.stderr
    assert "| alexnet_star_gap | AlexNet*-GAP |" in result.stdout
    assert "256 x 11x11" in result.stdout
    assert list(tmp_path.iterdir()) == []  # nothing written to the working directory


def test_cam_models_lists_the_zoo_with_overrides(tmp_path: Path) -> None:
    result = run(tmp_path, "cam-models", "model.width_mult=0.125", "input_size=112")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 15
    table = result.stdout
    assert "last conv map at 112 px" in table
    # 1024 * 0.125 = 128 units; at 112 px the maps are half the 224 px sizes (7, 7, 4 ...).
    assert "| vgg16_gap | VGGnet-GAP |" in table and "128 x 7x7" in table
    assert "| googlenet | GoogLeNet |" in table and "128 x 4x4" in table
    assert rows[0].startswith("| alexnet | AlexNet |")  # the paper's order, originals first


def test_cam_models_typo_in_override_fails_at_start(tmp_path: Path) -> None:
    result = run(tmp_path, "cam-models", "model=vgg16_gap", "model.widht_mult=0.5")
    assert result.returncode != 0
    assert "widht_mult" in result.stderr


def test_cam_models_unknown_variant_lists_the_choices(tmp_path: Path) -> None:
    result = run(tmp_path, "cam-models", "model=vgg19")
    assert result.returncode != 0
    assert "vgg19" in result.stderr and "vgg16_gap" in result.stderr


def test_cam_models_bad_value_is_one_line_error(tmp_path: Path) -> None:
    result = run(tmp_path, "cam-models", "model=vgg16_gap", "model.width_mult=-1")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: model.width_mult must be a finite number > 0, got -1.0"


def test_cam_synth_then_cam_data_reads_it(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    args = ["num_classes=3", "train_per_class=4", "val_per_class=2", "image_size=32", "workers=1"]
    result = run(tmp_path, "cam-synth", f"out={out}", *args)
    assert result.returncode == 0, result.stderr
    assert "wrote 12 train and 6 val images" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth"]  # only `out` is written
    result = run(tmp_path, "cam-data", "data=synthetic", f"data.root={out}")
    assert result.returncode == 0, result.stderr
    assert "train: 12 images of 3 classes" in result.stdout
    assert "val: 6 images of 3 classes" in result.stdout
    assert "foreground masks: 6" in result.stdout
    assert "classes: 3: n90000000 (synthetic class 0: body hstripes4+vstripes4" in result.stdout


def test_cam_data_bad_input_is_one_line_error(tmp_path: Path) -> None:
    result = run(tmp_path, "cam-data", f"data.root={tmp_path / 'missing'}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: data.root {tmp_path / 'missing'} does not exist or is not a folder"
    ]
    result = run(tmp_path, "cam-synth", "out=x", "evidence=stripes")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: evidence must be 'parts' or 'uniform', got 'stripes'"
