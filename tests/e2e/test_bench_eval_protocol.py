"""scripts/bench_eval_protocol.py: its set-up and one in-process round on a tiny setting print
the table with cam-eval's ratio to the bare loop."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_eval_protocol.py"


@pytest.mark.slow
def test_one_round_prints_the_ratios(tmp_path: Path) -> None:
    tiny = ["--size", "32", "--images", "16", "--batch", "8", "--model", "tiny_gap",
            "--width", "0.25", "--rounds", "1", "--parts", "inprocess",
            "--variants", "full", "pxap-off"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--work", str(tmp_path), *tiny],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "16 val images at 32 px" in out.stdout
    assert "target <= 1.10" in out.stdout
    assert re.search(r"^  this +bare +\d+\.\d\d \(", out.stdout, re.M)
    span = r"[\d.]+ \([\d.]+-[\d.]+\)"  # median (range)
    for variant in ("full", "pxap-off"):
        row = rf"^  this +{variant} +{span} +[\d.]+ +[\d.]+ +{span} (met|over) +{span}$"
        assert re.search(row, out.stdout, re.M), out.stdout
    assert (tmp_path / "bare_loop.py").exists()
