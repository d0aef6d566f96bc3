"""cam_repro/present/tables.py (cam-report) on hand-made cam-eval metrics.json files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cam_repro.present.tables import (
    PAPER_TABLE1,
    PAPER_TABLE2,
    SUMMARY_COLUMNS,
    Stat,
    aggregate,
    collect_runs,
    comparisons,
    summary_rows,
    table1,
    table2,
    write_report,
)
from cam_repro.runtime.errors import ConfigError, InputFileError


def eval_run(
    root: Path,
    name: str,
    paper_name: str,
    seed: int,
    cls: float,
    loc: float,
    *,
    kind: str = "synthetic",
    evidence: str | None = "parts",
    pool: str = "gap",
    map_size: str = "16x16",
    threshold: float = 0.2,
) -> Path:
    """A cam-eval run folder with the metrics.json fields the report reads."""
    run = root / name
    run.mkdir(parents=True)
    metrics = {
        "cls_top1_err": cls,
        "cls_top5_err": cls / 4,
        "loc_top1_err": loc,
        "loc_top5_err": loc - 5,
        "gt_known_loc_err": loc - 10,
        "maxboxacc_v2": 100 - loc,
        "variant": {
            "Tiny-GAP": "tiny_gap",
            "Tiny-GMP": "tiny_gmp",
            "Tiny-GAP (8x8)": "tiny_gap_8x8",
        }.get(paper_name, "x"),
        "paper_name": paper_name,
        "pool": pool,
        "map_size": map_size,
        "seed": seed,
        "data": {"kind": kind, "evidence": evidence, "source": "..."},
        "protocol": {"threshold": threshold, "box_rule": "paper", "normalize": "max"},
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    """Tiny-GAP and Tiny-GMP, 3 seeds each, on the parts design."""
    for seed, (cls, loc) in enumerate([(10.0, 20.0), (12.0, 24.0), (14.0, 22.0)]):
        eval_run(tmp_path / "sweep", f"gap{seed}", "Tiny-GAP", seed, cls, loc)
    for seed, (cls, loc) in enumerate([(8.0, 40.0), (9.0, 44.0), (13.0, 36.0)]):
        eval_run(tmp_path / "sweep", f"gmp{seed}", "Tiny-GMP", seed, cls, loc, pool="gmp")
    return tmp_path / "sweep"


def test_stat_is_mean_and_sample_std() -> None:
    assert Stat([10.0, 12.0, 14.0]).text() == "12.00 +- 2.00"
    assert Stat([7.5]).text() == "7.50"
    assert Stat([7.5]).std is None


def test_seeds_are_aggregated_to_mean_and_std_per_model(seeds: Path) -> None:
    groups = aggregate(summary_rows(collect_runs([seeds])))
    assert [(g.name, g.seeds) for g in groups] == [("Tiny-GAP", [0, 1, 2]), ("Tiny-GMP", [0, 1, 2])]
    text = table2(groups)
    # loc top-1 mean 22, std 2; cls top-1 mean 12, std 2; GT-known 12 +- 2; MaxBoxAccV2 78 +- 2
    assert "| Tiny-GAP | 22.00 +- 2.00 | 17.00 +- 2.00 | 12.00 +- 2.00 | 78.00 +- 2.00 | " in text
    assert "| Tiny-GMP | 40.00 +- 4.00 |" in text
    assert "## synthetic (parts)" in text
    assert "paper" not in text.split("## synthetic (parts)")[1]  # ours alone on other data
    assert "| Tiny-GMP | 10.00 +- 2.65 | 2.50 +- 0.66 | 3 |" in table1(groups)


def test_gap_minus_gmp_is_paired_by_seed(seeds: Path) -> None:
    (pair,) = comparisons(aggregate(summary_rows(collect_runs([seeds]))))
    assert pair.what == "Tiny-GAP - Tiny-GMP"
    assert pair.seeds == [0, 1, 2]
    # loc: 20-40, 24-44, 22-36 -> -20, -20, -14; cls: 2, 3, 1
    assert pair.diffs["loc_top1_err"].values == [-20.0, -20.0, -14.0]
    assert pair.diffs["cls_top1_err"].text() == "2.00 +- 1.00"


def test_ilsvrc_rows_stand_beside_the_papers_numbers(tmp_path: Path) -> None:
    eval_run(tmp_path, "v", "VGGnet-GAP", 0, 35.4, 60.2, kind="ilsvrc", evidence=None,
             map_size="14x14")  # fmt: skip
    eval_run(tmp_path, "b", "Backprop on GoogLeNet", 0, 30.0, 61.31, kind="ilsvrc",
             evidence=None, pool=None, map_size=None)  # fmt: skip
    eval_run(tmp_path, "r", "ResNet-50-GAP", 0, 25.0, 50.0, kind="ilsvrc", evidence=None)
    groups = aggregate(summary_rows(collect_runs([tmp_path])))
    # the paper's row order: Table 2 lists VGGnet-GAP before Backprop on GoogLeNet
    assert [g.name for g in groups] == ["VGGnet-GAP", "Backprop on GoogLeNet", "ResNet-50-GAP"]
    t2 = table2(groups)
    assert "| 57.20 / 45.14 | +3.00 / +10.06 |" in t2  # 60.2 - 57.20, 55.2 - 45.14
    assert "| 61.31 / 50.55 | +0.00 / +5.76 |" in t2
    assert "| ResNet-50-GAP | 50.00 |" in t2 and t2.rstrip().endswith("ground-truth box.")
    t1 = table1(groups)
    assert "| VGGnet-GAP | 35.40 | 8.85 | 1 | 33.40 / 12.20 | +2.00 / -3.35 |" in t1
    assert "| ResNet-50-GAP | 25.00 | 6.25 | 1 | - | - |" in t1


def test_another_threshold_is_its_own_row_without_the_papers_numbers(tmp_path: Path) -> None:
    eval_run(tmp_path, "a", "GoogLeNet-GAP", 0, 35.0, 56.4, kind="ilsvrc", evidence=None)
    eval_run(tmp_path, "b", "GoogLeNet-GAP", 0, 35.0, 58.0, kind="ilsvrc", evidence=None,
             threshold=0.3)  # fmt: skip
    text = table2(aggregate(summary_rows(collect_runs([tmp_path]))))
    assert "| GoogLeNet-GAP | 56.40 |" in text and "| 56.40 / 43.00 | +0.00 / +8.40 |" in text
    row = next(line for line in text.splitlines() if "(threshold 0.3)" in line)
    assert row.endswith("| - | - |")


def test_the_papers_numbers_are_the_designs(tmp_path: Path) -> None:
    assert PAPER_TABLE1["GoogLeNet-GMP"] == (35.6, 13.9)
    assert PAPER_TABLE2["GoogLeNet-GAP"] == (56.40, 43.00)
    assert PAPER_TABLE2["AlexNet*-GAP"] == (63.75, 49.53)
    assert len(PAPER_TABLE1) == 9 and len(PAPER_TABLE2) == 10


def test_write_report_files_and_summary_columns(seeds: Path, tmp_path: Path) -> None:
    eval_run(seeds, "gap8", "Tiny-GAP (8x8)", 0, 11.0, 30.0, map_size="8x8")
    done = write_report([seeds], tmp_path / "out")
    assert done["runs"] == 7 and done["groups"] == 3
    with (tmp_path / "out" / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == SUMMARY_COLUMNS
    assert SUMMARY_COLUMNS[:9] == (
        "variant", "pool", "seed", "cls_top1_err", "cls_top5_err", "loc_top1_err",
        "loc_top5_err", "gt_known_loc_err", "maxboxacc_v2",
    )  # fmt: skip
    expected = [("Tiny-GAP", "0"), ("Tiny-GAP", "1"), ("Tiny-GAP", "2")]
    assert [(r["paper_name"], r["seed"]) for r in rows][:3] == expected
    comparisons_md = (tmp_path / "out" / "comparisons.md").read_text()
    # the larger map against the smaller with the same pooling, on the seed both have
    assert "| Tiny-GAP - Tiny-GAP (8x8) | 0 | -1.00 | -10.00 | -10.00 | +10.00 |" in comparisons_md
    for name in ("table1.md", "table2.md", "tables.csv", "comparisons.csv"):
        assert (tmp_path / "out" / name).stat().st_size > 0


def test_train_runs_in_a_folder_are_skipped(seeds: Path) -> None:
    train = seeds / "train_run"
    train.mkdir()
    (train / "metrics.json").write_text(json.dumps({"final": {"epoch": 8}}))
    assert len(collect_runs([seeds])) == 6


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"final": {}}), "not a cam-eval metrics.json"),
        (json.dumps({"protocol": {}, "paper_name": "x"}), "lacks cls_top1_err"),
    ],
)
def test_bad_metrics_files_are_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(content)
    with pytest.raises(InputFileError, match=f"{path}: {message}"):
        collect_runs([path])


def test_empty_or_missing_runs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no runs given"):
        collect_runs([])
    with pytest.raises(InputFileError, match="no such file or folder"):
        collect_runs([tmp_path / "nope"])
    with pytest.raises(InputFileError, match=r"no cam-eval metrics\.json"):
        collect_runs([tmp_path])


def test_threshold_table_reads_each_runs_sweep(seeds: Path, tmp_path: Path) -> None:
    for seed, shift in enumerate([0.0, 2.0, 4.0]):  # GT-known accuracy 50 + 100 t + shift
        lines = ["threshold,gt_known_loc_acc"]
        lines += [f"{t / 100:g},{50 + t + shift:.4f}" for t in range(0, 51)]
        (seeds / f"gap{seed}" / "sweep.csv").write_text("\n".join(lines) + "\n")
    write_report([seeds], tmp_path / "out")
    text = (tmp_path / "out" / "thresholds.md").read_text()
    # error = 100 - acc: at 0.1 -> 40, 38, 36 (mean 38, std 2); at 0.5 -> 0, -2, -4
    assert "| Tiny-GAP | 38.00 +- 2.00 | 33.00 +- 2.00 | 28.00 +- 2.00 |" in text
    assert "Tiny-GMP" not in text  # its runs have no sweep.csv
