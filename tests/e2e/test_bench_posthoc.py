"""scripts/bench_posthoc.py: one tiny round per method prints the wrapper's time ratio to torch-cam
called directly, with the same maps, and the memory table with no hooks left."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_posthoc.py"


def test_one_round_prints_each_methods_ratio_and_memory(tmp_path: Path) -> None:
    tiny = ["--methods", "CAM", "ScoreCAM", "--rounds", "1", "--steps", "1", "--batch", "2",
            "--size", "32", "--classes", "3", "--memory-methods", "GradCAM", "--memory-batches",
            "2", "--memory-at", "1", "--json", str(tmp_path / "out.json")]  # fmt: skip
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *tiny], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    ratio = r"(\d+\.\d{3}) \[(\d+\.\d{3}), (\d+\.\d{3})\]"
    row = rf"^\| (\w+) \| {ratio} \| (yes|NO) \| {ratio} \| .* \| 2 x 1 \| (\S+) \|$"
    rows = re.findall(row, out.stdout, re.M)
    assert [row[0] for row in rows] == ["CAM", "ScoreCAM"]
    for _, median, low, high, ok, cpu, cpu_low, cpu_high, diff in rows:
        # one round: the range is the median itself, of wall time and of CPU time
        assert float(low) == float(median) == float(high) > 0
        assert float(cpu_low) == float(cpu) == float(cpu_high) > 0
        assert ok == ("yes" if float(median) <= 1.05 else "NO")
        assert float(diff) == 0  # the wrapper's maps are torch-cam's, bit for bit
    mib = r"(\d+\.\d) \| (\d+\.\d) \| ([+-]\d+\.\d\d) \| [\d.]+"
    memory = re.findall(rf"^\| GradCAM \| {mib} \| (\d+) \|$", out.stdout, re.M)
    assert len(memory) == 1
    first, last, growth, hooks = memory[0]
    assert float(first) > 0 and float(last) > 0 and hooks == "0"
    # RSS printed to within 0.05 each, the growth to within 0.005
    assert abs(float(last) - float(first) - float(growth)) <= 0.11
    result = json.loads((tmp_path / "out.json").read_text())
    assert [r["method"] for r in result["timing"]] == ["CAM", "ScoreCAM"]
    for r in result["timing"]:  # one round: its ratio is its two times' (float64 division)
        assert r["ratios"] == [r["ratio_median"]]
        assert abs(r["ratio_median"] - r["wrapper_ms"] / r["torchcam_ms"]) <= 1e-9
    # CAM: no extra pass; Score-CAM: one per channel of the layer and one unmasked (48 + 1)
    assert [r["passes_per_map"] for r in result["timing"]] == [[0, 0], [49, 0]]
    assert result["layer"] == "head" and result["memory"][0]["hooks_left"] == 0
