"""scripts/bench_methods.py: one tiny round per method prints each method's step-time ratio to
CAM's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_methods.py"


def test_one_round_prints_every_methods_ratio() -> None:
    tiny = ["--rounds", "1", "--steps", "1", "--batch", "4", "--size", "32", "--classes", "3"]
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *tiny], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    rows = re.findall(r"^\| (\w+) \| (\d+\.\d\d) \[(\d+\.\d\d), (\d+\.\d\d)\] \|", out.stdout, re.M)
    assert [row[0] for row in rows] == ["has", "acol", "spg", "adl", "cutmix"]
    for _, median, low, high in rows:  # one round: the range is the median itself
        assert float(low) == float(median) == float(high) > 0
