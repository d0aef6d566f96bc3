"""A WSOL method's run through the installed commands, as a user runs them: cam-train refuses a
method that does not apply in one line; an ACoL checkpoint is evaluated, drawn and tabulated
beside CAM's with nothing new to learn (its fused maps, its name in every table)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import CPU, run_command, train_cfg


def test_cam_train_refuses_a_method_that_does_not_apply_in_one_line(tmp_path: Path) -> None:
    result = run_command(tmp_path, "cam-train", "model=vgg16", "method=acol", *CPU)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: method=acol needs a CAM head, and the original vgg16 ends in fully connected "
        "layers; use its -GAP variant (model=vgg16_gap)"
    )


@pytest.mark.slow
def test_an_acol_run_is_evaluated_drawn_and_tabulated_beside_cam(
    small_data: Path, tmp_path: Path
) -> None:
    from cam_repro.train import train

    checkpoints = {}
    for method in ("cam", "acol"):
        run = tmp_path / "train" / method
        train(train_cfg(small_data, f"method={method}", "trainer.epochs=1"), run)
        checkpoints[method] = run / "checkpoints" / "last.pt"
    evals = {}
    for method, checkpoint in checkpoints.items():
        evals[method] = tmp_path / "eval" / method
        result = run_command(tmp_path, "cam-eval", f"checkpoint={checkpoint}",
                             f"hydra.run.dir={evals[method]}", *CPU)  # fmt: skip
        assert result.returncode == 0, result.stderr
    metrics = json.loads((evals["acol"] / "metrics.json").read_text())
    assert (metrics["method"], metrics["paper_name"]) == ("acol", "Tiny-GAP (ACoL)")
    assert json.loads((evals["cam"] / "metrics.json").read_text())["method"] == "cam"

    drawn = tmp_path / "drawn"
    result = run_command(tmp_path, "cam-visualize", f"checkpoint={checkpoints['acol']}",
                         "num_images=1", f"hydra.run.dir={drawn}", *CPU)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert list(drawn.glob("cam_*.png"))

    report = tmp_path / "report"
    runs = f"runs=[{evals['cam']},{evals['acol']}]"
    result = run_command(tmp_path, "cam-report", runs, f"out={report}")
    assert result.returncode == 0, result.stderr
    ours, published = (report / "table_methods.md").read_text().split("## Published")
    rows = [line for line in ours.splitlines() if line.startswith(("| CAM |", "| ACoL |"))]
    assert [row.split(" | ")[0] for row in rows] == ["| CAM", "| ACoL"]
    assert "| ACoL - CAM |" in ours
    assert "Evaluating Weakly Supervised Object Localization Methods Right" in published
    table2 = (report / "table2.md").read_text()
    assert "| Tiny-GAP (ACoL) |" in table2 and "| Tiny-GAP |" in table2  # never one row
