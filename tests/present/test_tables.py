"""cam-report (cam_repro/present/: runs.py, table_*.py, report.py) on hand-made cam-eval and
cam-features metrics.json files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers import read_csv
from metrics_records import as_written, body, choice, eval_json, write_record

from cam_repro.present.paper import (
    PAPER_FINEGRAINED,
    PAPER_GENERIC,
    PAPER_NOTES,
    PAPER_TABLE1,
    PAPER_TABLE2,
)
from cam_repro.present.report import write_report
from cam_repro.present.runs import (
    PROVENANCE_COLUMNS,
    EvalRun,
    FeaturesRun,
    collect_runs,
    source_label,
)
from cam_repro.present.stats import Stat, paired, t_quantile
from cam_repro.present.table_cam import SUMMARY_COLUMNS, aggregate, summary_rows, table1, table2
from cam_repro.present.table_comparisons import comparisons
from cam_repro.present.table_features import (
    FEATURES_SUMMARY_COLUMNS,
    aggregate_features,
    features_rows,
    table_finegrained,
    table_generic,
)
from cam_repro.runtime.errors import ConfigError, InputFileError
from cam_repro.runtime.metrics_file import metrics_record


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
    data: dict | None = None,
    **extra,
) -> Path:
    """A cam-eval run folder whose metrics.json has these values (`data`: more data keys;
    `extra`: more top-level keys), the rest tests/metrics_records.py's."""
    run = root / name
    paper_rule = choice(None, False) | {"value": threshold}
    extra.setdefault("thresholds", {**eval_json()["thresholds"], "paper_rule": paper_rule})
    extra.setdefault("undefined", {})
    extra = {"checkpoint": None, "checkpoint_sha256": None} | extra  # unnamed networks
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
        **extra,
    }
    named = {"name": f"synthetic ({evidence})"} if kind == "synthetic" else {}
    data = {"kind": kind, "evidence": evidence, "source": "...", **named, **(data or {})}
    protocol = {"threshold": threshold, "box_rule": "paper", "normalize": "max"}
    write_record(run, "eval", data=data, protocol=protocol, **metrics)
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
    assert "paper top-1" not in text.split("## synthetic (parts)")[1]  # ours alone on other data
    assert "| Tiny-GMP | 10.00 +- 2.65 | 2.50 +- 0.66 | 3 |" in table1(groups)


def test_gap_minus_gmp_is_paired_by_seed(seeds: Path) -> None:
    (pair,) = comparisons(aggregate(summary_rows(collect_runs([seeds]))))
    assert pair.what == "Tiny-GAP - Tiny-GMP"
    assert pair.seeds == [0, 1, 2]
    # loc: 20-40, 24-44, 22-36 -> -20, -20, -14: mean -18, sd sqrt(12), half-width
    # t_{0.975,2} sqrt(12) / sqrt(3) = 2 t = 8.605; cls: 2, 3, 1: mean 2, sd 1, half t / sqrt(3)
    assert pair.diffs["loc_top1_err"] == [-20.0, -20.0, -14.0]
    assert pair.stat("loc_top1_err").text() == "-18.00 [-26.61, -9.39], 3/3 < 0"
    assert pair.stat("cls_top1_err").text() == "+2.00 [-0.48, +4.48], 3/3 > 0"


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
    assert row.endswith("| - | - | [2] |")
    assert "- [1] threshold 0.2, fixed;" in text and "- [2] threshold 0.3, fixed;" in text


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
    assert ("| Tiny-GAP - Tiny-GAP (8x8) | 0 | -1.00 (n=1) | -10.00 (n=1) | -10.00 (n=1) "
            "| +10.00 (n=1) |") in comparisons_md  # fmt: skip
    assert "95% t interval over seeds" in comparisons_md
    for name in ("table1.md", "table2.md", "tables.csv", "comparisons.csv"):
        assert (tmp_path / "out" / name).stat().st_size > 0


def test_train_runs_in_a_folder_are_skipped(seeds: Path) -> None:
    train = seeds / "train_run"
    write_record(train, "train")
    assert len(collect_runs([seeds])) == 6


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"final": {}}), r"written by .* \(schema 1\); re-run cam-eval or cam-features"),
        (json.dumps(as_written("eval", body("eval", cls_top1_err="x"))), "cls_top1_err 'x' is not"),
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
    with pytest.raises(InputFileError, match=r"no cam-eval or cam-features metrics\.json"):
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


# --- paired statistics and provenance -----------------------------------------------------------

# Student's t quantiles in closed form: df 1, tan(pi (p - 1/2)); df 2, (2p - 1) / sqrt(2p(1 - p)).
T_975_DF1 = 12.706204736174707
T_975_DF2 = 0.95 / (2 * 0.975 * 0.025) ** 0.5  # 4.30265272974946


def test_t_quantiles_are_the_closed_forms() -> None:
    assert t_quantile(0.975, 1) == pytest.approx(T_975_DF1, rel=1e-12)
    assert t_quantile(0.975, 2) == pytest.approx(T_975_DF2, rel=1e-12)


def test_paired_mean_interval_and_signs_by_hand() -> None:
    three = paired([1.0, 2.0, 3.0])  # mean 2, sd 1, half-width t_{0.975,2} / sqrt(3) = 2.4841
    assert (three.n, three.mean, three.sd) == (3, 2.0, 1.0)
    assert three.half_width == pytest.approx(T_975_DF2 / 3**0.5, rel=1e-12)
    assert three.half_width == pytest.approx(2.484138, abs=1e-6)
    assert three.ci_low == pytest.approx(2 - 2.484138, abs=1e-6)
    assert three.ci_high == pytest.approx(2 + 2.484138, abs=1e-6)
    assert (three.n_positive, three.n_negative) == (3, 0)
    assert three.text() == "+2.00 [-0.48, +4.48], 3/3 > 0"
    two = paired([1.0, 3.0])  # mean 2, sd sqrt(2): half-width t_{0.975,1} sqrt(2) / sqrt(2)
    assert two.half_width == pytest.approx(T_975_DF1, rel=1e-12)
    one = paired([-1.5])
    assert one.text() == "-1.50 (n=1)" and one.ci_low is None and one.sd is None
    mixed = paired([-3.0, 1.0, -1.0, 0.0])  # mean -0.75: two of four below 0
    assert (mixed.n_positive, mixed.n_negative) == (1, 2) and mixed.agreement == "2/4 < 0"
    assert paired([1.0, -1.0]).agreement == "0/2 = 0"
    assert paired([2.0, 2.0]).text() == "+2.00 [+2.00, +2.00], 2/2 > 0"  # sd 0: no width
    with pytest.raises(ValueError, match="at least one"):
        paired([])


def test_comparisons_csv_has_the_interval_and_the_signs(seeds: Path, tmp_path: Path) -> None:
    eval_run(seeds, "gap8", "Tiny-GAP (8x8)", 0, 11.0, 30.0, map_size="8x8")
    write_report([seeds], tmp_path / "out")
    rows = {(r["a"], r["b"]): r for r in read_csv(tmp_path / "out" / "comparisons.csv")}
    stats = ("mean", "std", "ci_low", "ci_high", "n", "n_positive", "n_negative")
    assert list(next(iter(rows.values()))) == ["data", "a", "b", "seeds"] + [
        f"{m}_diff_{s}" for m in ("cls_top1_err", "loc_top1_err", "gt_known_loc_err",
                                  "maxboxacc_v2") for s in stats
    ]  # fmt: skip
    gap_gmp = rows[("Tiny-GAP", "Tiny-GMP")]
    # loc diffs -20, -20, -14: mean -18, half-width 2 t_{0.975,2} = 8.6053
    assert [gap_gmp[f"loc_top1_err_diff_{s}"] for s in stats] == [
        "-18.0000", "3.4641", "-26.6053", "-9.3947", "3", "0", "3"
    ]  # fmt: skip
    one = rows[("Tiny-GAP", "Tiny-GAP (8x8)")]
    assert [one[f"maxboxacc_v2_diff_{s}"] for s in stats] == ["10.0000", "", "", "", "1", "1", "0"]


def heldout_record(
    value: float, box: dict[str, float], split: str = "val", data: str = "held-out set"
) -> dict:
    """metrics.json's `thresholds` as cam-eval threshold_from=DIR writes it (its images checked
    disjoint from the scored ones: "disjoint")."""
    source = {"from": "/runs/val", "split": split, "data": data, "root": "/data/heldout"}
    return {
        "paper_rule": {"value": value, "chosen": "heldout", **source,
                       "metric": "gt_known_loc_acc", "heldout_acc": 90.0, "disjoint": True},
        "maxboxacc": {level: {"value": t, "chosen": "heldout", **source,
                              "metric": f"box_acc_{level}", "heldout_acc": 70.0,
                              "oracle_value": t + 0.1, "disjoint": True}
                      for level, t in box.items()},
    }  # fmt: skip


def test_every_row_says_how_it_was_measured(tmp_path: Path) -> None:
    """Seeds whose thresholds were each chosen on a held-out val run are one row, their values
    and checkpoints listed per seed; an older run without the record reads fixed and oracle."""
    root = tmp_path / "runs"
    listing = {"blacklist": "/lists/bl.txt"}
    for seed, (t, digest) in enumerate([(0.35, "a"), (0.3, "b"), (0.4, "c")]):
        for name, pool, loc in (("Tiny-GAP", "gap", 20.0), ("Tiny-GMP", "gmp", 40.0)):
            eval_run(root, f"{pool}{seed}", name, seed, 10.0, loc + seed, pool=pool,
                     threshold=t, data=listing, num_blacklisted=2,
                     thresholds=heldout_record(t, {"50": t / 2}),
                     maxboxacc_v2_heldout=70.0 + seed, checkpoint=f"/ckpt/{pool}{seed}.pt",
                     checkpoint_sha256=(digest * 64 if pool == "gap" else None))  # fmt: skip
    eval_run(root, "old", "Tiny-GAP", 0, 10.0, 20.0, checkpoint="/ckpt/old.pt")
    done = write_report([root], tmp_path / "out")
    assert done["groups"] == 3 and done["comparisons"] == 1  # held-out GAP - held-out GMP
    csv_rows = {r["model"]: r for r in read_csv(tmp_path / "out" / "tables.csv")}
    name = "Tiny-GAP (threshold from val of held-out set)"
    heldout, old = csv_rows[name], csv_rows["Tiny-GAP"]
    assert {key: heldout[key] for key in PROVENANCE_COLUMNS} == {
        "threshold_chosen": "heldout", "threshold": "0.35 0.3 0.4",
        "threshold_from": "val of held-out set", "maxboxacc_threshold_chosen": "heldout",
        "maxboxacc_threshold_from": "val of held-out set", "normalize": "max",
        "box_rule": "paper", "blacklist": "bl.txt (2 images)",
    }  # fmt: skip
    assert heldout["checkpoints"] == "aaaaaaaaaaaa bbbbbbbbbbbb cccccccccccc"
    assert heldout["maxboxacc_v2_heldout_mean"] == "71.0000" and heldout["seeds"] == "0 1 2"
    assert csv_rows["Tiny-GMP (threshold from val of held-out set)"]["checkpoints"] == "? ? ?"
    keys = ("threshold_chosen", "threshold", "threshold_from", "maxboxacc_threshold_chosen",
            "blacklist", "checkpoints")  # fmt: skip
    assert {key: old[key] for key in keys} == {
        "threshold_chosen": "fixed", "threshold": "0.2", "threshold_from": "",
        "maxboxacc_threshold_chosen": "oracle", "blacklist": "none", "checkpoints": "?",
    }  # fmt: skip
    table = (tmp_path / "out" / "table2.md").read_text()
    assert "| MaxBoxAccV2, held-out thr. |" in table
    row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
    assert "| 71.00 +- 1.00 |" in row and row.endswith("| 3 | [2] |")
    notes = [line for line in table.splitlines() if line.startswith("- [")]
    assert notes[0].startswith("- [1] threshold 0.2, fixed; MaxBoxAccV2 at the best thresholds on "
                               "the scored split (oracle); normalize max; box rule paper; no "
                               "blacklist; checkpoints ?")  # fmt: skip
    assert notes[1] == (
        "- [2] threshold 0.35 0.3 0.4 (per seed), each the best GT-known accuracy on val of "
        "held-out set (held out); MaxBoxAccV2 at the best thresholds on the scored split "
        "(oracle), its held-out column at those of val of held-out set; normalize max; box rule "
        "paper; blacklist bl.txt (2 images); checkpoints aaaaaaaaaaaa bbbbbbbbbbbb cccccccccccc"
    )
    summary = read_csv(tmp_path / "out" / "summary.csv")
    assert tuple(summary[0])[-11:] == ("maxboxacc_v2_heldout", *PROVENANCE_COLUMNS,
                                       "checkpoint_sha256", "undefined")  # fmt: skip
    gap0 = next(r for r in summary if r["run"].endswith("gap0"))
    assert gap0["checkpoint_sha256"] == "a" * 64 and gap0["threshold"] == "0.3500"
    assert gap0["threshold_chosen"] == "heldout"


def test_wsolevaluation_splits_are_their_own_sections() -> None:
    """data=wsol runs: the dataset's name says which of wsolevaluation's splits was scored, and
    a threshold held out on its val split is named by it."""
    wsol = {"kind": "wsol", "name": "CUB test (wsolevaluation)"}
    run = EvalRun(Path("r"), metrics_record("eval", body("eval", data=wsol)))
    assert run.dataset == "CUB test (wsolevaluation)"
    entry = metrics_record("eval", body("eval")).thresholds.paper_rule
    entry.split, entry.data = "val", "CUB val (wsolevaluation)"
    assert source_label(entry) == "CUB val (wsolevaluation)"
    entry.data = "ILSVRC"
    assert source_label(entry) == "val of ILSVRC"


# --- cam-features runs ---------------------------------------------------------------------------


def features_run(
    root: Path,
    name: str,
    paper_name: str,
    seed: int | None,
    accuracy: float,
    *,
    dataset: str = "CUB-200-2011",
    kind: str = "cub",
    features: str = "gap",
    crop: str = "full",
    iou50: float | None = None,
    loc: tuple[float, float] | None = None,
    weights: str = "checkpoint",
) -> Path:
    """A cam-features run folder whose metrics.json has these values, the rest
    tests/metrics_records.py's."""
    run = root / name
    metrics = {
        "accuracy": accuracy,
        "mean_class_accuracy": accuracy - 1,
        "num_train": 100, "num_test": 50, "num_classes": 10, "num_skipped": 0,
        "features": features,
        "crop": crop,
        "classifier": "svm",
        "C": 1.0, "l2_normalize": True, "feature_dim": 64,
        "variant": paper_name.lower().replace("-", "_"),
        "paper_name": paper_name,
        "weights": weights,
        "checkpoint": None,
        "seed": seed,
        "data": {"root": "/data", "name": dataset, "kind": kind, "evidence": None, "family": None,
                 "train_split": "train", "test_split": "val", "image_size": 224},
        "crop_box_iou50": iou50,
        "localization": None if loc is None else {
            "gt_known_loc_acc": loc[0], "top1_loc_acc": loc[1], "pointing_game": None,
            "num_images": 50, "iou_threshold": 0.5, "threshold": 0.2,
        },
        "seconds": 1.0, "weights_sha256": None, "weights_load": None, "undefined": {},
    }  # fmt: skip
    write_record(run, "features", **metrics)
    return run


@pytest.fixture
def crops(tmp_path: Path) -> Path:
    """Tiny-GAP features on a synthetic fine-grained set, 2 seeds, every crop (full + CAM on seed
    0 only); Tiny-GMP on the full image, seed 0; a SUN397 run on the full image only."""
    root = tmp_path / "features"
    fine = {"dataset": "synthetic (fine)", "kind": "synthetic"}
    runs = [(60.0, 70.0, 40.0, 80.0), (64.0, 72.0, 50.0, 80.0)]  # full, CAM, its IoU, GT
    for seed, (full, cam, iou, gt) in enumerate(runs):
        features_run(root, f"full{seed}", "Tiny-GAP", seed, full, **fine)
        features_run(root, f"cam{seed}", "Tiny-GAP", seed, cam, crop="cam", iou50=iou, **fine)
        features_run(root, f"gt{seed}", "Tiny-GAP", seed, gt, crop="gt", **fine)
    features_run(root, "both0", "Tiny-GAP", 0, 75.0, crop="full+cam", **fine)
    features_run(root, "gmp0", "Tiny-GMP", 0, 50.0, features="gmp", **fine)
    features_run(root, "sun0", "Tiny-GAP", 0, 30.0, dataset="SUN397", kind="folder")
    return root


def test_finegrained_cells_are_mean_and_std_over_seeds_per_crop(crops: Path) -> None:
    groups = aggregate_features(features_rows(collect_runs([crops])))
    text = table_finegrained(groups)
    # full 60, 64 -> 62 +- 2.83; CAM 70, 72 -> 71 +- 1.41; GT 80, 80; full + CAM 75 (one seed);
    # CAM box IoU>=0.5 of the CAM runs 40, 50 -> 45 +- 7.07
    assert ("| Tiny-GAP gap | svm, C 1 | 62.00 +- 2.83 | 71.00 +- 1.41 | 80.00 +- 0.00 | 75.00 "
            "| 45.00 +- 7.07 | 0 1 |") in text  # fmt: skip
    assert "| Tiny-GMP gmp | svm, C 1 | 50.00 |  |  |  |  | 0 |" in text
    assert "## synthetic (fine)" in text
    assert "SUN397" not in text  # the full image only, and not CUB: the generic table's
    assert "(paper)" not in text  # auto: the paper's numbers on CUB only
    forced = table_finegrained(groups, paper="true")
    assert "| GoogLeNet-GAP gap (paper) | svm | 63.00 | 67.80 | 70.50 |  | 41.00 |  |" in forced


def test_cub_stands_beside_the_papers_finegrained_row(tmp_path: Path) -> None:
    features_run(tmp_path, "g0", "GoogLeNet-GAP", 0, 61.0)
    features_run(tmp_path, "g1", "GoogLeNet-GAP", 1, 62.0)
    features_run(tmp_path, "a0", "AlexNet", None, 50.0, features="fc7", weights="pretrained")
    groups = aggregate_features(features_rows(collect_runs([tmp_path])))
    text = table_finegrained(groups)  # CUB with the full image only: still the paper's table
    lines = text.splitlines()
    # the paper's generic-table order (AlexNet fc7 first), the paper's row after ours; 61, 62 ->
    # 61.5 +- 0.71
    start = lines.index("| AlexNet fc7 (pretrained) | svm, C 1 | 50.00 |  |  |  |  | - |")
    assert lines[start + 1 : start + 3] == [
        "| GoogLeNet-GAP gap | svm, C 1 | 61.50 +- 0.71 |  |  |  |  | 0 1 |",
        "| GoogLeNet-GAP gap (paper) | svm | 63.00 | 67.80 | 70.50 |  | 41.00 |  |",
    ]
    assert "## CUB-200-2011" in text
    assert "(paper)" not in table_finegrained(groups, paper="false")


def test_the_papers_finegrained_numbers(tmp_path: Path) -> None:
    assert PAPER_FINEGRAINED == {
        "GoogLeNet-GAP gap": {"full": 63.0, "cam": 67.8, "gt": 70.5, "iou50": 41.0}
    }
    assert PAPER_NOTES.endswith(
        "63.0% accuracy on the full image, 67.8% on the CAM crop, 70.5% on the ground-truth box."
    )


def generic_runs(root: Path) -> Path:
    """GoogLeNet-GAP gap on SUN397 (2 seeds, with localization) and MIT Indoor67 (1 seed);
    pretrained AlexNet fc7 on SUN397; a CAM-crop run on SUN397, not in the generic table."""
    for seed, (acc, loc) in enumerate([(40.0, (50.0, 30.0)), (44.0, (54.0, 34.0))]):
        features_run(root, f"sun{seed}", "GoogLeNet-GAP", seed, acc, dataset="SUN397",
                     kind="folder", loc=loc)  # fmt: skip
    features_run(root, "mit0", "GoogLeNet-GAP", 0, 55.0, dataset="MIT Indoor67", kind="folder")
    features_run(root, "alex", "AlexNet", None, 38.5, features="fc7", weights="pretrained",
                 dataset="SUN397", kind="folder")  # fmt: skip
    features_run(root, "suncam", "GoogLeNet-GAP", 0, 99.0, crop="cam", dataset="SUN397",
                 kind="folder")  # fmt: skip
    return root


def test_generic_table_has_a_column_per_dataset(tmp_path: Path) -> None:
    groups = aggregate_features(features_rows(collect_runs([generic_runs(tmp_path)])))
    text = table_generic(groups)
    assert "| model | classifier | MIT Indoor67 | SUN397 |" in text
    lines = text.splitlines()
    # 40, 44 -> 42 +- 2.83 on SUN397 (the CAM-crop run's 99 left to the fine-grained table)
    start = lines.index("| AlexNet fc7 (pretrained) | svm, C 1 |  | 38.50 |")
    assert lines[start + 1] == "| GoogLeNet-GAP gap | svm, C 1 | 55.00 | 42.00 +- 2.83 |"
    located = text.split("## Localization from the linear classifier's weights")[1]
    # GT-known 50, 54 -> 52 +- 2.83; top-1 30, 34 -> 32 +- 2.83; AlexNet measured none
    assert "| GoogLeNet-GAP gap | svm, C 1 |  | 52.00 +- 2.83 / 32.00 +- 2.83 |" in located
    assert "AlexNet" not in located
    finegrained = table_finegrained(groups)
    assert "## SUN397" in finegrained and "MIT Indoor67" not in finegrained


def test_generic_table_shows_a_checked_paper_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups = aggregate_features(features_rows(collect_runs([generic_runs(tmp_path)])))
    monkeypatch.setitem(PAPER_GENERIC, ("SUN397", "GoogLeNet-GAP gap"), 51.5)
    monkeypatch.setitem(PAPER_GENERIC, ("Caltech101", "AlexNet fc7"), 12.5)
    lines = table_generic(groups).splitlines()
    start = lines.index("| GoogLeNet-GAP gap | svm, C 1 | 55.00 | 42.00 +- 2.83 |")
    assert lines[start + 1] == "| GoogLeNet-GAP gap (paper) | svm |  | 51.50 |"
    assert not any("AlexNet fc7 (paper)" in line for line in lines)  # not one of our datasets
    assert "(paper)" not in table_generic(groups, paper="false")


def test_a_mixed_folder_writes_both_sets_of_tables(seeds: Path, tmp_path: Path) -> None:
    generic_runs(seeds / "features")
    done = write_report([seeds], tmp_path / "out")
    assert done["runs"] == 6 + 5 and done["groups"] == 2 + 4
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert names == {"summary.csv", "table1.md", "table2.md", "tables.csv", "comparisons.md",
                     "comparisons.csv", "features_summary.csv", "table_finegrained.md",
                     "table_generic.md"}  # fmt: skip
    assert sorted(done["files"]) == sorted(names)
    assert len(read_csv(tmp_path / "out" / "summary.csv")) == 6  # eval runs only
    rows = read_csv(tmp_path / "out" / "features_summary.csv")
    assert tuple(rows[0]) == FEATURES_SUMMARY_COLUMNS
    # MIT Indoor67 before SUN397; on SUN397 AlexNet first, then GoogLeNet-GAP full, full, cam
    assert [(r["dataset"], r["paper_name"], r["crop"], r["seed"]) for r in rows] == [
        ("MIT Indoor67", "GoogLeNet-GAP", "full", "0"),
        ("SUN397", "AlexNet", "full", ""),
        ("SUN397", "GoogLeNet-GAP", "full", "0"),
        ("SUN397", "GoogLeNet-GAP", "full", "1"),
        ("SUN397", "GoogLeNet-GAP", "cam", "0"),
    ]
    assert rows[3]["accuracy"] == "44.0000" and rows[3]["gt_known_loc_acc"] == "54.0000"
    assert rows[3]["top1_loc_acc"] == "34.0000" and rows[3]["weights"] == "checkpoint"


def test_a_features_only_folder_writes_the_features_tables_only(tmp_path: Path) -> None:
    root = generic_runs(tmp_path / "runs")
    write_record(root / "train_run", "train")  # passed over
    runs = collect_runs([root])
    assert len(runs) == 5 and all(isinstance(run, FeaturesRun) for run in runs)
    assert summary_rows(runs) == []
    done = write_report([root], tmp_path / "out")
    assert done["runs"] == 5 and done["comparisons"] == 0
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert names == {"features_summary.csv", "table_finegrained.md", "table_generic.md"}


def test_an_eval_only_folder_writes_what_it_always_has(seeds: Path, tmp_path: Path) -> None:
    runs = collect_runs([seeds])
    assert all(isinstance(run, EvalRun) for run in runs) and features_rows(runs) == []
    write_report([seeds], tmp_path / "out")
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert names == {"summary.csv", "table1.md", "table2.md", "tables.csv", "comparisons.md",
                     "comparisons.csv"}  # fmt: skip


def test_a_named_features_metrics_json_is_a_run(tmp_path: Path) -> None:
    run = features_run(tmp_path, "g0", "GoogLeNet-GAP", 0, 61.0)
    (found,) = collect_runs([run / "metrics.json"])
    assert isinstance(found, FeaturesRun) and found.dataset == "CUB-200-2011"


@pytest.mark.parametrize(
    ("changes", "drop", "message"),
    [
        ({}, ("features", "crop"), "lacks features, crop"),
        ({}, ("accuracy", "data"), "lacks accuracy, data"),
        ({"data": "x"}, (), "data 'x' is not a mapping"),
        ({"crop": "half"}, (), "crop 'half' is not one of full, cam, gt, full\\+cam"),
        ({"accuracy": "high"}, (), "accuracy 'high' is not a number or null"),
        ({"accuracy": None, "undefined": {}}, (), "lacks accuracy"),  # null without its reason
    ],
)  # fmt: skip
def test_bad_features_metrics_files_are_named(
    tmp_path: Path, changes: dict, drop: tuple, message: str
) -> None:
    features_run(tmp_path / "sweep", "good", "GoogLeNet-GAP", 0, 61.0)
    content = body("features") | changes
    for key in drop:
        del content[key]
    bad = write_record(tmp_path / "sweep" / "bad", "features", content)
    for given in (tmp_path / "sweep", bad):  # found in a folder search, or named
        with pytest.raises(InputFileError, match=f"^{bad}: {message}$"):
            collect_runs([given])


def test_synthetic_families_and_folder_data_are_their_own_sections(tmp_path: Path) -> None:
    """Eval runs on another synthetic family, or on folder data, are not averaged with the
    benchmark's runs: each dataset's name makes its own section."""
    base = {"kind": "synthetic", "evidence": "parts"}
    datasets = {
        "a": {**base, "name": "synthetic (parts)", "family": 0},
        "b": {**base, "name": "synthetic (parts, family 1)", "family": 1},
        "d": {"kind": "folder", "name": "flowers", "evidence": None},
    }
    runs = []
    for tag, data in datasets.items():
        write_record(tmp_path / tag, "eval", data=data, paper_name="Tiny-GAP", seed=0)
        runs.append(tmp_path / tag)
    got = [r.dataset for r in collect_runs(runs)]
    assert got == ["synthetic (parts)", "synthetic (parts, family 1)", "flowers"]
