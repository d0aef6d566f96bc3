"""cam-eval threshold_from=DIR: the CAM thresholds chosen on another (held-out) run, applied here
and recorded; the refusals when the two runs' protocols differ."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import eval_cfg
from metrics_records import choice, write_record
from omegaconf import OmegaConf

from cam_repro.evaluate.loop import evaluate_run
from cam_repro.runtime.errors import ConfigError

PAPER_ERRORS = ("cls_top1_err", "cls_top5_err", "loc_top1_err", "loc_top5_err", "gt_known_loc_err")
# The hand-made val run's best thresholds: the paper rule's sweep ties at 0.35 and 0.4 (the lower
# one wins); MaxBoxAcc's per IoU level.
PAPER_BEST = 0.35
BOX_BEST = {"30": 0.05, "50": 0.25, "70": 0.6}


def val_run(
    folder: Path,
    n: int = 1000,
    protocol: dict | None = None,
    best: dict[str, float] | None = BOX_BEST,
    sweep: bool = True,
    checkpoint_sha256: str | None = None,
) -> Path:
    """A finished cam-eval run written by hand in cam-eval's formats: sweep.csv's GT-known
    accuracy 50% everywhere but 90% at 0.35 and 0.4; metrics.json's best_threshold `best`;
    predictions.csv with two images of its own (held out from the synthetic set's)."""
    oracle = None if best is None else {level: choice(level, False) for level in best}
    write_record(
        folder, "eval", cls_top1_err=10.0, paper_name="Tiny-GAP", best_threshold=best,
        box_acc=None if best is None else {level: 70.0 for level in best},
        thresholds={"paper_rule": choice(None, False), "maxboxacc": oracle},
        data={"split": "val", "name": "held-out set", "root": "/data/heldout"},
        checkpoint_sha256=checkpoint_sha256, protocol=protocol,
    )  # fmt: skip
    (folder / "predictions.csv").write_text(
        "index,image_id,label,gt_wnids,gt_boxes,loc_counted\n"
        "0,heldout_0,a,a,0 0 9 9,1\n1,heldout_1,b,b,2 2 5 5,1\n"
    )
    if sweep:
        lines = ["threshold,gt_known_loc_acc"]
        for i in range(n):
            t = i / n
            lines.append(f"{t:.6g},{90.0 if round(t, 6) in (0.35, 0.4) else 50.0:.4f}")
        (folder / "sweep.csv").write_text("\n".join(lines) + "\n")
    return folder


def read_sweep_rows(run: Path) -> dict[float, dict[str, float]]:
    with (run / "sweep.csv").open(newline="") as f:
        return {
            round(float(r["threshold"]), 6): {k: float(v) for k, v in r.items()}
            for r in csv.DictReader(f)
        }


def test_the_test_split_is_scored_at_the_heldout_thresholds(trained: Path, tmp_path: Path) -> None:
    val = val_run(tmp_path / "val")
    # threshold=0.3 given too: threshold_from wins, and says so
    got = evaluate_run(
        eval_cfg(f"checkpoint={trained}", f"threshold_from={val}", "threshold=0.3", "sweep=true"),
        tmp_path / "test",
    )
    plain = evaluate_run(eval_cfg(f"checkpoint={trained}", "threshold=0.35"), tmp_path / "plain")
    # the paper's errors are those of a plain run at the held-out threshold
    assert got["protocol"]["threshold"] == PAPER_BEST
    for key in PAPER_ERRORS:
        assert got[key] == plain[key], key
    # MaxBoxAcc: the oracle unchanged, the held-out values read off this run's own curves
    assert got["box_acc"] == plain["box_acc"] and got["maxboxacc_v2"] == plain["maxboxacc_v2"]
    curve = read_sweep_rows(tmp_path / "test")
    for level, t in BOX_BEST.items():
        at = curve[t][f"box_acc_{level}"]  # sweep.csv: 4 decimals
        assert got["box_acc_heldout"][level] == pytest.approx(at, abs=1e-4)
    mean = np.mean(list(got["box_acc_heldout"].values()))
    assert got["maxboxacc_v2_heldout"] == pytest.approx(mean)
    assert got["maxboxacc_v2_heldout"] <= got["maxboxacc_v2"]  # the oracle is an upper bound
    # where each threshold came from
    source = {"from": str(val.resolve()), "split": "val", "data": "held-out set",
              "root": "/data/heldout"}  # fmt: skip
    assert got["thresholds"]["paper_rule"] == {
        "value": PAPER_BEST, "chosen": "heldout", **source, "metric": "gt_known_loc_acc",
        "heldout_acc": 90.0, "disjoint": True,
    }  # fmt: skip
    for level, t in BOX_BEST.items():
        assert got["thresholds"]["maxboxacc"][level] == {
            "value": t, "chosen": "heldout", **source, "metric": f"box_acc_{level}",
            "heldout_acc": 70.0, "oracle_value": got["best_threshold"][level], "disjoint": True,
        }  # fmt: skip
    assert got["protocol"]["threshold_from"] == str(val.resolve())
    saved = OmegaConf.load(tmp_path / "test" / "config.yaml")
    assert saved.threshold == PAPER_BEST and saved.threshold_from == str(val)
    assert json.loads((tmp_path / "test" / "metrics.json").read_text()) == got
    # without threshold_from: the paper rule fixed, MaxBoxAcc the oracle on the scored split
    assert plain["thresholds"]["paper_rule"]["chosen"] == "fixed"
    assert plain["thresholds"]["paper_rule"]["value"] == 0.35
    oracle = plain["thresholds"]["maxboxacc"]["50"]
    assert oracle["chosen"] == "oracle" and oracle["value"] == plain["best_threshold"]["50"]
    assert oracle["split"] == "val" and oracle["from"] is None
    assert plain["box_acc_heldout"] is None and plain["maxboxacc_v2_heldout"] is None
    assert plain["protocol"]["threshold_from"] is None
    # the checkpoint's digest
    assert got["checkpoint_sha256"] == hashlib.sha256(trained.read_bytes()).hexdigest()
    log = (tmp_path / "test" / "eval.log").read_text()
    assert "at the held-out threshold" in log and "(oracle)" in log


def test_thresholds_chosen_on_the_same_split_are_refused(trained: Path, tmp_path: Path) -> None:
    """A real val run as threshold_from for the same split: its thresholds were chosen on the
    images scored here (the oracle, already in metrics.json), so they are not held out: one
    line, no result. (tests/present/test_report_labels.py: partly shared images, another root.)"""
    evaluate_run(eval_cfg(f"checkpoint={trained}", "sweep=true"), tmp_path / "val")
    val = (tmp_path / "val").resolve()
    with pytest.raises(ConfigError) as err:
        evaluate_run(eval_cfg(f"checkpoint={trained}", f"threshold_from={val}"), tmp_path / "again")
    assert str(err.value).startswith(
        f"threshold_from: {val} chose its thresholds on 48 of the 48 images scored here ("
    )
    assert "so they are not held out: give a cam-eval run of a disjoint split" in str(err.value)
    assert not (tmp_path / "again" / "metrics.json").exists()


@pytest.mark.parametrize(
    ("make", "overrides", "message"),
    [
        (lambda d: d.mkdir(), [], r"has no metrics\.json"),
        (lambda d: val_run(d, sweep=False), [], r"has no sweep\.csv"),
        (lambda d: val_run(d, protocol={"normalize": "minmax"}), [],
         "evaluated with normalize=minmax, this run with normalize=max"),
        (lambda d: val_run(d, protocol={"localizer": "backprop"}), [],
         "localizer=backprop, this run with localizer=cam"),
        (lambda d: val_run(d, protocol={"box_rule": "release"}), [],
         "box_rule=release, this run with box_rule=paper"),
        (lambda d: val_run(d), ["box_rule=release"], "applies to box_rule=paper"),
        (lambda d: val_run(d, protocol={"all_boxes": True}), [],
         "all_boxes=true, this run with all_boxes=false"),
        (lambda d: val_run(d, protocol={"iou_threshold": 0.7}), [], "iou_threshold=0.7"),
        (lambda d: val_run(d, best={"30": 0.1, "50": 0.2}), [], "MaxBoxAcc IoU levels"),
        (lambda d: val_run(d, n=100), [],
         r"swept 100 thresholds, this run sweep_thresholds=1000"),
        (lambda d: val_run(d), ["sweep_thresholds=200"], "swept 1000 thresholds"),
        (lambda d: val_run(d, best={"30": 0.1, "50": 0.2, "70": 0.0005}), [],
         "0.0005 at IoU 70 is not on this run's grid"),
        (lambda d: val_run(d, best=None), [], "has no MaxBoxAcc thresholds"),
    ],
    ids=["no-metrics", "no-sweep", "normalize", "localizer", "box-rule", "release-here",
         "all-boxes", "iou", "levels", "grid", "grid-here", "off-grid", "no-maxboxacc"],
)  # fmt: skip
def test_refusals_are_one_line_before_the_run_starts(
    trained: Path, tmp_path: Path, make, overrides: list[str], message: str
) -> None:
    given = tmp_path / "val"
    make(given)
    with pytest.raises(ConfigError, match=f"^threshold_from: .*{message}") as err:
        evaluate_run(
            eval_cfg(f"checkpoint={trained}", f"threshold_from={given}", *overrides),
            tmp_path / "test",
        )
    assert "\n" not in str(err.value)
    assert not (tmp_path / "test").exists()  # refused before the run folder is made


def test_no_maxboxacc_here_needs_no_heldout_maxboxacc(trained: Path, tmp_path: Path) -> None:
    """...and a val run of another checkpoint is used, with a warning."""
    val = val_run(tmp_path / "val", best=None, checkpoint_sha256="f" * 64)
    got = evaluate_run(
        eval_cfg(f"checkpoint={trained}", f"threshold_from={val}", "maxboxacc=false"),
        tmp_path / "test",
    )
    assert got["protocol"]["threshold"] == PAPER_BEST
    assert got["thresholds"]["paper_rule"]["chosen"] == "heldout"
    assert got["thresholds"]["maxboxacc"] is None and got["box_acc_heldout"] is None
    log = (tmp_path / "test" / "eval.log").read_text()
    assert "evaluated another checkpoint than this run's (SHA-256 ffffffffffff" in log


def test_a_runs_own_folder_is_refused(trained: Path, tmp_path: Path) -> None:
    run = val_run(tmp_path / "run")
    with pytest.raises(ConfigError, match="is this run's own folder"):
        evaluate_run(eval_cfg(f"checkpoint={trained}", f"threshold_from={run}"), run)
