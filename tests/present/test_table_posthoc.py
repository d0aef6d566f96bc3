"""table_posthoc.md / .csv: torch-cam's maps beside our CAM on the same checkpoints, mean +- std
over seeds, each minus CAM paired by seed with its t interval, the whole runs' speed ratio and the
passes per map."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import read_csv
from metrics_records import eval_json, write_record
from scipy.stats import t

from cam_repro.present.report import write_report
from cam_repro.present.runs import collect_runs
from cam_repro.present.table_posthoc import (
    CAM_LABEL,
    passes_text,
    posthoc_markdown,
    posthoc_rows,
    posthoc_sections,
)

PROTOCOL = "threshold from val of ILSVRC"  # eval_json(heldout=True)'s threshold source
TITLES = {"cam": "", "gradcam": "Grad-CAM on ", "ScoreCAM": "Score-CAM on ",
          "GradCAM": "Grad-CAM (torch-cam) on "}  # fmt: skip
# (forward, backward) passes per map: Score-CAM scores 48 masked images and the unmasked one
COST = {"ScoreCAM": (49, 0), "GradCAM": (0, 1)}


def posthoc_run(root: Path, name: str, how: str, seed: int, values: tuple, *, digest: str,
                seconds: float, layer: str | None = None) -> None:  # fmt: skip
    """A cam-eval run folder of checkpoint `digest` with localizer `how` (cam, gradcam, or a
    torch-cam method's class name), 500 images in `seconds`; `values`: top-1 loc err, GT-known
    err, MaxBoxAccV2 held-out, oracle, PxAP."""
    loc, gtk, held, box, pxap = (float(v) for v in values)  # as cam-eval writes them
    localizer = how if how in ("cam", "gradcam") else "torchcam"
    torchcam = {"method": how, "layer": layer} if localizer == "torchcam" else None
    cost = None
    if torchcam is not None:
        forward, backward = COST[how]
        cost = {
            "layer": layer or "features.10",
            "channels": 48,
            "forward_passes_per_map": forward,
            "backward_passes_per_map": backward,
        }
    write_record(
        root / name, "eval", seed=seed, paper_name=f"{TITLES[how]}Tiny-GAP",
        checkpoint=f"/ckpt/{digest}.pt", checkpoint_sha256=digest * 64, undefined={},
        thresholds=eval_json(heldout=True)["thresholds"], posthoc_cost=cost, seconds=seconds,
        num_images=500, loc_top1_err=loc, gt_known_loc_err=gtk, maxboxacc_v2_heldout=held,
        maxboxacc_v2=box, pxap=pxap, cls_top5_err=1.0,
        protocol={"localizer": localizer, "torchcam": torchcam, "threshold": 0.25,
                  "threshold_from": "/runs/heldout"},
    )  # fmt: skip


CAM = [(30, 20, 65, 70, 60), (34, 24, 61, 66, 58)]
SCORE = [(28, 18, 68, 72, 63), (30, 21, 66, 70, 62)]
GRAD = [(33, 22, 60, 64, 55), (35, 26, 58, 62, 57)]


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """2 seeds x {our CAM, torch-cam's Score-CAM, torch-cam's Grad-CAM} on one checkpoint per
    seed; our Grad-CAM on seed 0; Score-CAM of seed 0 evaluated again (other numbers, the same
    checkpoint), and once at another layer."""
    root = tmp_path / "runs"
    for seed, digest in enumerate("ab"):
        # 500 images: CAM 125 and 100 images/s; Score-CAM 12.5 and 20 (ratios 0.1, 0.2);
        # Grad-CAM (torch-cam) 62.5 and 50 (0.5, 0.5)
        posthoc_run(root, f"cam{seed}", "cam", seed, CAM[seed], digest=digest,
                    seconds=(4.0, 5.0)[seed])  # fmt: skip
        posthoc_run(root, f"score{seed}", "ScoreCAM", seed, SCORE[seed], digest=digest,
                    seconds=(40.0, 25.0)[seed])  # fmt: skip
        posthoc_run(root, f"grad{seed}", "GradCAM", seed, GRAD[seed], digest=digest,
                    seconds=(8.0, 10.0)[seed])  # fmt: skip
    posthoc_run(root, "score0b", "ScoreCAM", 0, (90, 90, 1, 1, 1), digest="a", seconds=1.0)
    posthoc_run(root, "ours_grad0", "gradcam", 0, (31, 21, 62, 67, 59), digest="a", seconds=6.0)
    posthoc_run(root, "score0_l8", "ScoreCAM", 0, (29, 19, 67, 71, 61), digest="a",
                seconds=20.0, layer="features.8")  # fmt: skip
    return root


def _half(sd: float, n: int) -> float:
    """The 95% t interval's half-width over n seeds."""
    return float(t.ppf(0.975, n - 1)) * sd / n**0.5


def test_rows_means_paired_differences_speed_and_passes(runs: Path) -> None:
    (section,) = posthoc_sections(posthoc_rows(collect_runs([runs])))
    assert (section.data, section.network, section.protocol) == (
        "synthetic (parts)", "Tiny-GAP", PROTOCOL)  # fmt: skip
    assert list(section.groups) == [CAM_LABEL, "Grad-CAM (ours)", "Grad-CAM (torch-cam)",
                                    "Score-CAM", "Score-CAM (layer features.8)"]  # fmt: skip
    score = section.groups["Score-CAM"]
    assert score.seeds == [0, 1]  # score0b folded into score0: the same checkpoint
    assert [r["run"].rsplit("/", 1)[1] for r in score.rows] == ["score0", "score1"]
    # GT-known: 18, 21 -> mean 19.5, sample sd |18 - 21| / sqrt(2) = 2.1213
    stat = score.stat("gt_known_loc_err")
    assert (stat.mean, stat.std) == pytest.approx((19.5, 3 / 2**0.5), abs=1e-12)
    assert score.stat("pxap").mean == pytest.approx(62.5, abs=1e-12)
    diff = section.diff("Score-CAM")
    assert diff.seeds == [0, 1] and not diff.ambiguous
    # held-out MaxBoxAccV2, Score-CAM - CAM per seed: 68 - 65 = 3, 66 - 61 = 5: mean 4, sd
    # sqrt(2), half-width t_{0.975,1} * sqrt(2) / sqrt(2) = 12.7062
    assert diff.diffs["maxboxacc_v2_heldout"] == [3.0, 5.0]
    held = diff.stat("maxboxacc_v2_heldout")
    half = _half(2**0.5, 2)
    assert half == pytest.approx(12.7062, abs=1e-4)
    assert (held.mean, held.ci_low, held.ci_high) == pytest.approx((4, 4 - half, 4 + half))
    assert held.text() == "+4.00 [-8.71, +16.71], 2/2 > 0"
    # GT-known: -2, -3: mean -2.5, sd sqrt(0.5), half 12.7062 * 0.5 = 6.3531
    assert diff.stat("gt_known_loc_err").text() == "-2.50 [-8.85, +3.85], 2/2 < 0"
    assert diff.stat("pxap").text() == "+3.50 [-2.85, +9.85], 2/2 > 0"  # 3, 4
    # speed: Score-CAM's images/s over CAM's per seed: 12.5 / 125 = 0.1, 20 / 100 = 0.2
    assert section.speed("Score-CAM") == pytest.approx([0.1, 0.2], rel=1e-12)
    assert section.speed_cell("Score-CAM") == "0.15 [0.1, 0.2]"
    assert section.speed_cell("Grad-CAM (torch-cam)") == "0.5 [0.5, 0.5]"
    assert section.speed_cell("Score-CAM (layer features.8)") == "0.2"  # 25 / 125, one seed
    assert section.speed_cell(CAM_LABEL) == "1 (baseline)"
    text = posthoc_markdown([section])
    assert f"## synthetic (parts): Tiny-GAP, {PROTOCOL}" in text
    rows = {line.split(" | ")[0][2:]: line for line in text.splitlines() if line.startswith("| ")}
    # seeds 2 marked with the fold's note; loc 29 +- 1.41; GT-known 19.50 +- 2.12; held-out
    # 67 +- 1.41; oracle 71 +- 1.41; PxAP 62.50 +- 0.71; speed; 49 forward passes per map
    assert rows["Score-CAM"].startswith("| Score-CAM | 2 [")
    assert ("| 29.00 +- 1.41 | 19.50 +- 2.12 | 67.00 +- 1.41 | 71.00 +- 1.41 | 62.50 +- 0.71 "
            "| 0.15 [0.1, 0.2] | 49 fwd | [") in rows["Score-CAM"]  # fmt: skip
    assert "| 1 bwd | [" in rows["Grad-CAM (torch-cam)"] and "| — | [" in rows[CAM_LABEL]
    assert rows["Score-CAM (layer features.8)"].startswith("| Score-CAM (layer features.8) | 1 |")
    assert f"checkpoint {'a' * 12} evaluated 2 times" in text
    assert "| Score-CAM - CAM | 0 1 | -2.50 [-8.85, +3.85], 2/2 < 0 | +4.00 [-8.71, +16.71]" in text
    assert "each the best GT-known accuracy on val of ILSVRC (held out)" in text  # provenance
    assert "torch-cam ScoreCAM, layer asked features.8, hooked features.8 (48 channels)" in text
    assert "- Score-CAM: Wang et al., CVPR-W 2020" in text and "- Grad-CAM (torch-cam): " in text
    assert "scripts/bench_posthoc.py" in text and "normalized=False" in text


def test_passes_text() -> None:
    assert [passes_text(*p) for p in ((49, 0), (0, 1), (4, 4), (0, 0))] == [
        "49 fwd", "1 bwd", "4 fwd + 4 bwd", "0"]  # fmt: skip


def test_the_report_writes_the_posthoc_table_only_with_torchcam_runs(
    runs: Path, tmp_path: Path
) -> None:
    only_cam = tmp_path / "only_cam"
    for seed, digest in enumerate("ab"):
        posthoc_run(only_cam, f"cam{seed}", "cam", seed, CAM[seed], digest=digest, seconds=4.0)
    done = write_report([only_cam], tmp_path / "out_cam")
    assert done["posthoc"] == 0 and not (tmp_path / "out_cam" / "table_posthoc.md").exists()
    done = write_report([runs], tmp_path / "out")
    assert done["posthoc"] == 1 and "table_posthoc.md" in done["files"]
    assert done["methods"] == 0  # no WSOL method: torch-cam's maps are not one
    rows = {r["label"]: r for r in read_csv(tmp_path / "out" / "table_posthoc.csv")}
    assert list(rows) == [CAM_LABEL, "Grad-CAM (ours)", "Grad-CAM (torch-cam)", "Score-CAM",
                          "Score-CAM (layer features.8)"]  # fmt: skip
    score = rows["Score-CAM"]
    assert (score["localizer"], score["method"], score["seeds"], score["n"]) == (
        "torchcam", "ScoreCAM", "0 1", "2")  # fmt: skip
    assert (score["forward_passes_per_map"], score["backward_passes_per_map"]) == ("49", "0")
    assert score["maxboxacc_v2_heldout_mean"] == "67.0000"
    assert score["maxboxacc_v2_heldout_minus_cam_mean"] == "4.0000"
    assert score["maxboxacc_v2_heldout_minus_cam_ci_low"] == f"{4 - _half(2**0.5, 2):.4f}"
    assert (score["speed_vs_cam_median"], score["speed_vs_cam_n"]) == ("0.1500", "2")
    assert rows["Score-CAM (layer features.8)"]["layer"] == "features.8"
    assert "evaluated 2 times" in score["runs_note"]
    assert rows[CAM_LABEL]["speed_vs_cam_median"] == ""  # CAM is the baseline
