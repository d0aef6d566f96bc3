"""Undefined metrics (issue 33, class 3): a metric with no value on its input is null in
metrics.json with its reason under "undefined", printed n/a with the reason by cam-report, and the
other metrics stay. Hand-built maps and masks for the math; one cam-eval run end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import eval_cfg
from metrics_records import body, write_record
from PIL import Image

from cam_repro.evaluate.loop import evaluate_run
from cam_repro.evaluate.outputs import table_row, with_undefined
from cam_repro.localize.loc_error import Undefined, error_rates
from cam_repro.localize.pxap import PxAPMeter, pxap
from cam_repro.localize.wsol import BoxAccMeter
from cam_repro.present.runs import collect_runs
from cam_repro.present.table_cam import aggregate, summary_rows, table1
from cam_repro.runtime.errors import InputFileError
from cam_repro.runtime.metrics_file import read_metrics

NO_BACKGROUND = (
    "the 1 masks have no background pixel (every pixel is foreground or ignored): precision is "
    "1 at every threshold, PxAP would be 100 whatever the maps"
)
RAMP = np.arange(16, dtype=np.float64).reshape(1, 4, 4) / 15  # 16 distinct scores in [0, 1]


def test_pxap_without_background_is_undefined_not_100() -> None:
    masks = np.ones((1, 4, 4), dtype=bool)
    assert pxap(RAMP, masks) == Undefined(NO_BACKGROUND)
    # the background all ignored is the same case
    half = np.zeros((1, 4, 4), dtype=bool)
    half[0, :2] = True
    assert pxap(RAMP, half, ignore=~half) == Undefined(NO_BACKGROUND)
    # one background pixel is enough: a real number again (the top 8 scores are foreground,
    # one background pixel at score 0: precision 1 until recall 1 -> 100)
    one = np.ones((1, 4, 4), dtype=bool)
    one[0, 0, 0] = False
    assert pxap(RAMP, one) == pytest.approx(100.0)


def test_pxap_all_ignored_or_without_foreground_is_undefined() -> None:
    nothing = np.zeros((1, 4, 4), dtype=bool)
    assert pxap(RAMP, nothing, ignore=np.ones_like(nothing)) == Undefined(
        "every pixel of the 1 masks is ignored"
    )
    assert pxap(RAMP, nothing) == Undefined("the 1 masks have no foreground pixel: recall is 0/0")
    # foreground pixels that all score below the lowest threshold: recall 0/0 as well
    masks = np.zeros((1, 4, 4), dtype=bool)
    masks[0, 0, 0] = True  # scores 0
    assert pxap(RAMP, masks, thresholds=[0.5, 0.75]) == Undefined(
        "no foreground pixel scores at or above the lowest threshold 0.5: recall is 0/0"
    )
    assert PxAPMeter().value() == Undefined("no image with a mask was scored")


def test_pxap_counts_survive_adding_and_all_reduce() -> None:
    """The pixel counts behind the reasons add up like the histograms (threads, processes)."""
    a, b = PxAPMeter(), PxAPMeter()
    a.update(RAMP, np.ones((1, 4, 4), dtype=bool))
    b.update(RAMP, np.zeros((1, 4, 4), dtype=bool))
    assert a.value().reason.startswith("the 1 masks have no background")
    a.add(b)
    assert a.counts.tolist() == [2, 16, 16] and isinstance(a.value(), float)
    a.all_reduce(lambda t: t * 2)
    assert a.counts.tolist() == [4, 32, 32]


def test_degenerate_but_defined_maps_give_numbers() -> None:
    """Constant maps rank nothing: PxAP is the foreground's share (chance); MaxBoxAcc of GT boxes
    covering the whole image is 100 for any map (the whole-image box at t = 0)."""
    masks = np.zeros((1, 4, 4), dtype=bool)
    masks[0, 0] = True  # 4 of 16 pixels
    assert pxap(np.zeros((1, 4, 4)), masks) == pytest.approx(25.0)
    meter = BoxAccMeter([0.0, 0.5])
    meter.update(np.zeros((2, 4, 4)), [np.array([[0, 0, 3, 3]])] * 2)
    assert meter.summary()["maxboxacc_v2"] == 100.0
    assert BoxAccMeter().summary() == Undefined("no image with a box was scored")


def test_error_rates_over_no_image_and_top5_over_few_classes() -> None:
    outcomes = {key: np.array([True, False]) for key in
                ("cls_top1", "cls_top5", "loc_top1", "loc_top5", "gt_known")}  # fmt: skip
    errors = error_rates(outcomes, np.zeros(2, dtype=bool), num_classes=5, k=5)
    assert errors["cls_top1_err"] == 50.0
    assert errors["loc_top1_err"] == Undefined(
        "no image counts for localization (none has a box of its class, or all are blacklisted)"
    )
    assert errors["cls_top5_err"] == Undefined(
        "the network has 5 classes, at most topk=5: every class is among its top 5, so the error "
        "is 0 by construction"
    )
    assert error_rates(outcomes, num_classes=6, k=5)["cls_top5_err"] == 50.0


def test_metrics_json_keeps_the_reason_and_its_reader_checks_it(tmp_path: Path) -> None:
    metrics = with_undefined({
        "cls_top1_err": 10.0, "paper_name": "Tiny-GAP", "protocol": {},
        "pxap": Undefined("why"), "pointing_game": {"centre": Undefined("none"), "other": 5.0},
    })  # fmt: skip
    assert metrics["pxap"] is None and metrics["pointing_game"] == {"centre": None, "other": 5.0}
    assert metrics["undefined"] == {"pxap": "why", "pointing_game.centre": "none"}
    given = body("eval", pxap=None, undefined=metrics["undefined"])
    path = write_record(tmp_path, "eval", given)
    assert read_metrics(path, "eval").undefined == metrics["undefined"]
    write_record(tmp_path, "eval", given | {"pxap": 100.0})
    with pytest.raises(InputFileError, match=r"metrics.json: pxap is 100.0 but listed as undef"):
        read_metrics(path, "eval")
    write_record(tmp_path, "eval", given | {"undefined": ["pxap"]})
    with pytest.raises(InputFileError, match=r"metrics.json: undefined \['pxap'\] is not a map"):
        read_metrics(path, "eval")


def test_cam_eval_and_cam_report_on_masks_without_background(
    small_data: Path, trained: Path, tmp_path: Path
) -> None:
    """Every mask all foreground: PxAP is null with its reason (it was a perfect 100), every
    other metric is written, table.md and cam-report print n/a with the reason."""
    data = tmp_path / "data"
    shutil.copytree(small_data, data)
    masks = sorted((data / "ILSVRC/Masks/CLS-LOC/val").glob("*.png"))
    assert len(masks) == 48
    for path in masks:
        with Image.open(path) as im:
            size = im.size
        Image.new("L", size, 255).save(path)
    run = tmp_path / "eval"
    got = evaluate_run(eval_cfg(f"checkpoint={trained}", f"data.root={data}", "pxap=true"), run)
    why = "the 48 masks have no background pixel (every pixel is foreground or ignored): " \
          "precision is 1 at every threshold, PxAP would be 100 whatever the maps"  # fmt: skip
    assert got["pxap"] is None and got["undefined"]["pxap"] == why
    assert set(got["undefined"]) == {"pxap", "cls_top5_err"}  # 3 classes (the other test)
    for key in ("cls_top1_err", "loc_top1_err", "gt_known_loc_err", "maxboxacc_v2"):
        assert isinstance(got[key], float), key
    assert json.loads((run / "metrics.json").read_text()) == got
    assert f"is undefined (null in metrics.json): {why}" in (run / "eval.log").read_text()
    table = (run / "table.md").read_text()
    assert table == table_row(got["paper_name"], got)
    assert f" / n/a |\n\nn/a: cls_top5_err: {got['undefined']['cls_top5_err']}\n" in table
    # cam-report: n/a with the reason in a note, the other cells numbers; PxAP in summary.csv
    rows = summary_rows(collect_runs([run]))
    assert rows[0]["undefined"] == "; ".join(f"{k}: {v}" for k, v in got["undefined"].items())
    text = table1(aggregate(rows))
    assert f"| Tiny-GAP | {got['cls_top1_err']:.2f} | n/a [1] | 1 |" in text
    assert f"- [1] top-5 err undefined in 1 of 1 runs: {got['undefined']['cls_top5_err']} " \
           f"({run})" in text  # fmt: skip
