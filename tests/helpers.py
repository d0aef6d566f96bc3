"""Plain helpers shared by the test folders: configs composed as the command line does (through
`cam_repro.apps.compose`), the small dataset's settings, the installed commands run in a
subprocess, a run's metrics.json, CSV rows. Importable from every test
folder as `from helpers import ...` because pytest puts tests/ on sys.path (tests/conftest.py)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import DictConfig

from cam_repro.apps import compose

# The installed console scripts (cam-train, cam-eval, ...) beside this Python.
BIN = Path(sys.executable).parent

# A network command on the CPU without progress bars (the keys of `runtime`, RuntimeConfig).
CPU = ["runtime.device=cpu", "runtime.progress=false"]

# 3 classes of 32 px images, 64 train and 16 val each: 6 batches of 32 per epoch, ~0.3 s an epoch.
SMALL = {
    "num_classes": 3,
    "train_per_class": 64,
    "val_per_class": 16,
    "image_size": 32,
    "evidence": "uniform",
}
SMALL_TRAIN = [
    "data.image_size=32",
    "data.resize_size=32",
    "data.batch_size=32",
    *CPU,
]


def cpu_cfg(app: str, *overrides: str) -> DictConfig:
    """`app`'s config (cam-eval's, cam-train's, ...) on the CPU, as its command line composes it."""
    return compose(app, [*CPU, *overrides])


def eval_cfg(*overrides: str) -> DictConfig:
    """configs/eval.yaml on the CPU, as `cam-eval` composes it."""
    return cpu_cfg("eval", *overrides)


def train_cfg(root: Path, *overrides: str) -> DictConfig:
    """configs/train.yaml composed as the command line does, on the small dataset at `root`."""
    return compose("train", [f"data.root={root}", *SMALL_TRAIN, *overrides])


def read_csv(path: Path) -> list[dict[str, str]]:
    """A CSV file's rows, keyed by its header."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_command(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """An installed command (args[0], from BIN) run in `cwd` as a user runs it; its output kept."""
    exe = BIN / args[0]
    if not exe.exists():
        pytest.fail(f"{exe} is not installed: run `pip install -e .` first")
    return subprocess.run(
        [str(exe), *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def run_metrics(run_dir: Path) -> dict:
    """A run folder's metrics.json as a dict."""
    return json.loads((run_dir / "metrics.json").read_text())
