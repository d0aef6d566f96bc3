"""cam-eval on wsolevaluation's data (data=wsol): PxAP with OpenImages' ignore regions, and
MaxBoxAccV2 in wsolevaluation's exact convention (wsol_convention=true)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import eval_cfg
from wsol_fixtures import ILSVRC_BOXES, write_wsol

from cam_repro.data import read_split
from cam_repro.data.masks import read_masks
from cam_repro.evaluate import loop
from cam_repro.evaluate.loop import evaluate_run
from cam_repro.localize.boxes import scale_boxes
from cam_repro.localize.pxap import pxap
from cam_repro.localize.wsol import (
    max_box_acc,
    resize_boxes_wsolevaluation,
    wsolevaluation_thresholds,
)

FRAME = 16


def _overrides(cfg: dict) -> list[str]:
    """cam-eval of an untrained tiny_gap on the wsol tree that `cfg` (write_wsol's) points at."""
    data = [f"data.{k}={v}" for k, v in cfg.items() if k != "source"]
    return ["model=tiny_gap", "data=wsol", *data, f"data.image_size={FRAME}", "data.num_workers=0"]


def _capture(monkeypatch: pytest.MonkeyPatch, meter: type) -> list[tuple]:
    """Record every update of this meter class (its arguments), then run the original."""
    seen: list[tuple] = []
    original = meter.update

    def update(self, *args, **kwargs):
        seen.append((self, args, kwargs))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(meter, "update", update)
    return seen


def test_openimages_pxap_leaves_the_ignore_regions_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_wsol(tmp_path, "OpenImages")
    seen = _capture(monkeypatch, loop.PxAPMeter)
    overrides = _overrides(cfg)
    metrics = evaluate_run(eval_cfg(*overrides), tmp_path / "eval")
    # masks but no boxes: PxAP, and no box metric
    assert metrics["num_loc_images"] == 0 and metrics["maxboxacc_v2"] is None
    assert metrics["pxap"] is not None
    maps = np.concatenate([args[0] for _, args, _ in seen])
    fg = np.concatenate([args[1] for _, args, _ in seen])
    ignore = np.concatenate([args[2] for _, args, _ in seen])
    data = read_split({**cfg, "image_size": FRAME}, "val")
    want_fg, want_ignore = read_masks(data.samples, FRAME, "pil")
    np.testing.assert_array_equal(fg, want_fg)
    np.testing.assert_array_equal(ignore, want_ignore)
    assert want_ignore.any()  # the first image's ignore box, minus its foreground
    assert metrics["pxap"] == pxap(maps, fg, ignore=ignore)
    # the same maps with the ignore pixels counted as background: another number
    assert pxap(maps, fg) != metrics["pxap"]

    # wsolevaluation's convention: masks resized by OpenCV's nearest rule, their thresholds
    seen.clear()
    metrics = evaluate_run(eval_cfg(*overrides, "wsol_convention=true"), tmp_path / "exact")
    assert metrics["protocol"]["wsol_convention"] is True
    meter = seen[0][0]
    np.testing.assert_array_equal(meter.thresholds, np.arange(0, 1, 0.001))
    fg = np.concatenate([args[1] for _, args, _ in seen])
    np.testing.assert_array_equal(fg, read_masks(data.samples, FRAME, "opencv")[0])


def test_wsol_convention_scores_their_boxes_on_their_thresholds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_wsol(tmp_path, "ILSVRC")
    seen = _capture(monkeypatch, loop.BoxAccMeter)
    overrides = [*_overrides(cfg), "sweep_thresholds=100", "sweep=true"]
    exact = evaluate_run(eval_cfg(*overrides, "wsol_convention=true"), tmp_path / "exact")
    box = [(m, a) for m, a, _ in seen if m.convention == "wsolevaluation"]
    # the paper rule's sweep (IoU 50 only) keeps our convention
    assert box and {m.convention for m, _, _ in seen if m.deltas == (50.0,)} == {"ours"}
    maps = np.concatenate([a[0] for _, a in box])
    gt = [g for _, a in box for g in a[1]]
    assert maps.dtype == np.float32  # normalised in float32, as their normalize_scoremap
    assert maps.min() >= 0 and maps.max() == 1
    # their resize_bbox on the raw boxes (sizes from image_sizes.txt)
    data = read_split({**cfg, "image_size": FRAME}, "val")
    want = [resize_boxes_wsolevaluation(s.own_boxes, s.size, (FRAME, FRAME)) for s in data.samples]
    assert [g.tolist() for g in gt] == [w.tolist() for w in want]
    assert len(data.samples) == len({image for image, _ in ILSVRC_BOXES["test"]})
    result = max_box_acc(
        maps, gt, thresholds=wsolevaluation_thresholds(0.01), convention="wsolevaluation"
    )
    assert exact["maxboxacc_v2"] == result["maxboxacc_v2"]
    assert exact["protocol"]["wsol_convention"] is True
    assert "np.arange(0, 1, 1/100)" in exact["protocol"]["maxboxacc"]

    # our convention: the same maps' boxes scaled by pixel edges, another threshold grid
    seen.clear()
    ours = evaluate_run(eval_cfg(*overrides), tmp_path / "ours")
    box = [(m, a) for m, a, _ in seen if m.deltas == (30, 50, 70)]
    assert all(m.convention == "ours" for m, _ in box)
    gt = [g for _, a in box for g in a[1]]
    assert [g.tolist() for g in gt] == [
        scale_boxes(s.own_boxes, s.size, (FRAME, FRAME)).tolist() for s in data.samples
    ]
    assert ours["protocol"]["wsol_convention"] is False
