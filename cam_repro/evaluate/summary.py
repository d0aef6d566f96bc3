"""cam-eval's metrics.json: its content from the rows and meters of a finished evaluation.

`metrics_json` turns the per-image rows (evaluate.outputs.Row) and the accumulated meters
(evaluate.loop.Meters) into the paper's errors (localize.loc_error), the pointing game,
MaxBoxAccV2 (with threshold_from's held-out thresholds), PxAP and the protocol that produced
them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cam_repro.data import dataset_kind
from cam_repro.evaluate.config import EvalConfig, posthoc_spec
from cam_repro.evaluate.outputs import HeldOut, Row, thresholds_record, where_scored, with_undefined
from cam_repro.localize.loc_error import NO_LOC_IMAGE, Undefined, error_rates, image_outcomes, rate
from cam_repro.localize.posthoc_methods import localizer_title
from cam_repro.models.summary import summarize as summarize_model
from cam_repro.runtime import distributed as D
from cam_repro.runtime.errors import InputFileError

if TYPE_CHECKING:
    from cam_repro.evaluate.loop import Evaluator, Meters


def _outcomes(rows: list[Row], iou_threshold: float) -> dict[str, np.ndarray]:
    return image_outcomes(
        np.array([r.classes for r in rows]),
        np.array([r.label for r in rows]),
        np.array([r.ious for r in rows]),
        np.array([r.gt_known_iou for r in rows]),
        iou_threshold,
    )


def _box_acc_summary(meters: Meters, located: int) -> dict[str, Any] | Undefined | None:
    """MaxBoxAcc's summary (BoxAccMeter.summary); Undefined without an image that counts for
    localization; None when not asked (maxboxacc=false)."""
    if meters.box_acc is None:
        return None
    return meters.box_acc.summary() if located else Undefined(NO_LOC_IMAGE)


def _pxap(spec: EvalConfig, ev: Evaluator, meters: Meters) -> float | Undefined | None:
    """PxAP (PxAPMeter.value, Undefined with its reason); Undefined when pxap=auto would have
    computed it but some image has no foreground mask; None when not asked (pxap=false, or auto
    with maxboxacc=false). Its images are those with a mask, boxes or not (OpenImages has masks
    only)."""
    if meters.pxap is not None:
        return meters.pxap.value()
    if spec.pxap == "auto" and spec.maxboxacc:
        without = sum(not s.masks for s in ev.data.samples)
        if without:
            return Undefined(
                f"{without} of the {len(ev.data.samples)} images scored have no foreground mask "
                "(PxAP needs one for every image)"
            )
    return None


def heldout_box_acc(box_acc: dict[str, Any], heldout: HeldOut) -> dict[str, float]:
    """This run's BoxAcc (%) per IoU level at the held-out run's best thresholds: its own curve
    read at them (both on the grid of sweep_thresholds)."""
    curve = box_acc["curve"]
    grid = np.asarray(curve["thresholds"])
    at = {}
    for level in box_acc["box_acc"]:
        t = heldout.box_thresholds[str(level)]
        at[str(level)] = float(curve[level][int(np.argmin(np.abs(grid - t)))])
    return at


def metrics_json(
    spec: EvalConfig,
    ev: Evaluator,
    rows: list[Row],
    meters: Meters,
    seconds: float,
    heldout: HeldOut | None = None,
    checkpoint_sha256: str | None = None,
) -> tuple[dict[str, Any], np.ndarray, dict[str, Any] | None]:
    """metrics.json's content, which images count for localization, and MaxBoxAcc's summary
    (`heldout`: threshold_from's thresholds, already applied to spec.threshold)."""
    data = ev.data
    if not rows:
        raise InputFileError(f"{data.root} {spec.split}: no image could be evaluated")
    has_box = np.array([len(data.samples[r.index].own_boxes) > 0 for r in rows], dtype=bool)
    blacklisted = np.array([data.samples[r.index].image_id in ev.blacklist for r in rows], bool)
    loc_mask = has_box & ~blacklisted
    outcomes = _outcomes(rows, spec.iou_threshold)
    errors = error_rates(outcomes, loc_mask, len(data.classes), spec.topk)
    located = int(loc_mask.sum())
    summary = _box_acc_summary(meters, located)
    box_acc = summary if isinstance(summary, dict) else None
    # MaxBoxAcc's values, or Undefined with its reason where it has none (None: not asked)
    undefined = summary if isinstance(summary, Undefined) else None
    name = ev.net.paper
    shape = summarize_model(D.unwrap(ev.model), ev.model_cfg, ev.data_cfg.image_size)
    posthoc = posthoc_spec(spec.localizer, spec.torchcam)
    title = localizer_title(spec.localizer, posthoc.method if posthoc else None)
    if title is not None:  # "Grad-CAM on VGGnet", "Score-CAM on Tiny-GAP"
        name = f"{title} on {name}"
    hits = np.array([r.peak_in_box for r in rows], dtype=bool)[loc_mask]
    best = {str(k): v for k, v in box_acc["best_threshold"].items()} if box_acc else None
    at_heldout = heldout_box_acc(box_acc, heldout) if box_acc and heldout else None
    undefined_heldout = undefined if heldout else None
    kind = dataset_kind(ev.data_cfg)
    scored = where_scored({"split": spec.split, "root": str(data.root), **kind})
    metrics: dict[str, Any] = {
        **errors,
        # the pointing game (the true class's map peaks in one of its boxes), in %
        "pointing_game": rate(hits, NO_LOC_IMAGE),
        "maxboxacc_v2": box_acc["maxboxacc_v2"] if box_acc else undefined,
        "box_acc": {str(k): v for k, v in box_acc["box_acc"].items()} if box_acc else undefined,
        "best_threshold": best,
        # at the best thresholds of threshold_from's run (held out), beside the oracle's above
        "box_acc_heldout": at_heldout or undefined_heldout,
        "maxboxacc_v2_heldout": (
            float(np.mean(list(at_heldout.values()))) if at_heldout else undefined_heldout
        ),
        "thresholds": thresholds_record(spec.threshold, spec.box_rule, best, heldout, scored),
        "pxap": _pxap(spec, ev, meters),
        "num_images": len(rows),
        "num_skipped": ev.skips.count,  # unreadable images left out (data.bad_images=skip)
        "num_loc_images": located,
        "num_blacklisted": int(blacklisted.sum()),
        "num_without_boxes": int((~has_box).sum()),
        "variant": ev.net.variant,
        "paper_name": name,
        "posthoc_cost": ev.posthoc_cost,  # localizer=torchcam: what a map costs
        "method": ev.net.method,  # the WSOL method of the checkpoint's training (cam: none)
        "pool": ev.model_cfg.pool if shape.map_size else None,
        "map_size": "{}x{}".format(*shape.map_size) if shape.map_size else None,
        "checkpoint": spec.checkpoint,
        "checkpoint_sha256": checkpoint_sha256,
        "weights_load": ev.net.weights_load,  # which file gave the network its tensors
        "seed": ev.net.seed if ev.net.checkpoint else None,
        "data": {
            "root": str(data.root),
            "split": spec.split,
            "source": data.source,
            "num_classes": len(data.classes),
            "image_size": ev.data_cfg.image_size,
            "blacklist": ev.data_cfg.blacklist,
            **kind,
        },
        "protocol": {
            "localizer": spec.localizer,
            "gradcam_layer": spec.gradcam_layer,  # null: the default layer (localize/gradcam.py)
            "torchcam": posthoc.protocol() if posthoc is not None else None,
            "box_rule": spec.box_rule,
            "threshold": spec.threshold,
            "normalize": spec.normalize,
            "all_boxes": spec.all_boxes,
            "ten_crop": spec.ten_crop,
            "iou_threshold": spec.iou_threshold,
            "topk": spec.topk,
            "threshold_from": None if heldout is None else str(heldout.folder),
            "sweep": spec.sweep,
            "sweep_thresholds": spec.sweep_thresholds,
            "maxboxacc_iou": list(spec.maxboxacc_iou),
            "map_upsampling": "bilinear to the evaluated image (frame); boxes scaled to the "
            "original image, IoU there",
            "eval_frame": ev.frame,
            "wsol_convention": spec.wsol_convention,
            "maxboxacc": (
                "true class's map, bicubic to the frame (single crop CAM), min-max normalised in "
                f"float32, wsolevaluation's convention exactly: thresholds np.arange(0, 1, "
                f"1/{spec.sweep_thresholds}), uint8 quantisation, outer and hole contours, "
                "boxes x + w / y + h clipped, (0, 0, 0, 0) when nothing passes; GT boxes resized "
                "by their resize_bbox, masks by OpenCV's nearest rule"
                if spec.wsol_convention
                else "true class's map, bicubic to the frame (single crop CAM), min-max "
                f"normalised, {spec.sweep_thresholds} thresholds, every 8-connected component, "
                f"IoU levels {list(spec.maxboxacc_iou)} (see cam_repro/localize/wsol.py for the "
                "differences from wsolevaluation)"
            ),
        },
        "world_size": ev.env.world_size,
        "seconds": round(seconds, 2),
    }
    return with_undefined(metrics), loc_mask, box_acc
