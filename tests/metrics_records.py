"""Full, valid metrics.json records of every kind (runtime/metrics_file.py's schema), for the
tests that need a run folder's metrics.json without running the command that writes it.

The bodies carry the keys and values today's writers give (cam-train's train.logs, cam-eval's
evaluate.summary, the VQA evaluation's evaluate.vqa, cam-features' features.summary); `body`
changes some of them, `write_record` writes one as the command would (kind and schema first).
Importable from every test folder as `from metrics_records import ...` (tests/ is on sys.path:
tests/conftest.py), like tests/helpers.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cam_repro.runtime.metrics_file import SCHEMA

WEIGHTS = {"source": "ckpt/last.pt", "sha256": None, "tensors_loaded": 26, "new_layers": [],
           "classifier_not_loaded": []}  # fmt: skip


def epoch(n: int, val: bool) -> dict[str, Any]:
    entry = {"epoch": n, "train_loss": 0.5, "train_top1_err": 12.0, "lr": 0.01,
             "images_per_s": 50.0, "epoch_time_s": 58.4}  # fmt: skip
    if val:
        entry.update({"val_loss": 0.49, "val_top1_err": 11.6, "val_top5_err": 0.8})
    return entry


def train_json() -> dict[str, Any]:
    return {
        "status": "finished", "variant": "tiny_gap", "paper_name": "Tiny-GAP", "seed": 0,
        "num_classes": 10, "num_train": 3000, "num_val": 500, "num_train_skipped": 0,
        "num_val_skipped": 0, "world_size": 1, "epochs_done": 2, "global_step": 94,
        "best": epoch(2, True), "final": epoch(2, True),
        "epochs": [epoch(1, False), epoch(2, True)],
        "checkpoints": {"last": "checkpoints/last.pt", "best": "checkpoints/best.pt"},
        "weights_load": None, "rank_weight_digests": ["ab12", "ab12"],
    }  # fmt: skip


def choice(level: str | None, heldout: bool) -> dict[str, Any]:
    """A thresholds entry (evaluate.outputs.thresholds_record): the paper rule's (level None)
    or MaxBoxAcc's at `level`."""
    metric = f"box_acc_{level}" if level else "gt_known_loc_acc"
    if heldout:
        entry = {"value": 0.25, "chosen": "heldout", "from": "/runs/val", "split": "val",
                 "data": "ILSVRC", "root": "/data", "metric": metric,
                 "heldout_acc": 60.0}  # fmt: skip
        oracle = {"oracle_value": 0.3} if level else {}  # MaxBoxAcc's: this split's best
        return {**entry, **oracle, "disjoint": True}
    if level is None:
        return {"value": 0.2, "chosen": "fixed", "from": None, "split": None, "data": None,
                "root": None, "metric": None}  # fmt: skip
    return {"value": 0.42, "chosen": "oracle", "from": None, "split": "test", "data": "ILSVRC",
            "root": "/data", "metric": metric}  # fmt: skip


def eval_json(heldout: bool = False) -> dict[str, Any]:
    levels = ("30", "50", "70")
    return {
        "cls_top1_err": 11.6, "cls_top5_err": None, "loc_top1_err": 25.6, "loc_top5_err": 18.0,
        "gt_known_loc_err": 17.2, "pointing_game": 98.8, "maxboxacc_v2": 78.1,
        "box_acc": {"30": 98.8, "50": 83.0, "70": 52.6},
        "best_threshold": {"30": 0.422, "50": 0.455, "70": 0.435},
        "box_acc_heldout": {"30": 97.0, "50": 80.0, "70": 50.0} if heldout else None,
        "maxboxacc_v2_heldout": 75.7 if heldout else None,
        "thresholds": {"paper_rule": choice(None, heldout),
                       "maxboxacc": {k: choice(k, heldout) for k in levels}},
        "pxap": None, "num_images": 500, "num_skipped": 0, "num_loc_images": 500,
        "num_blacklisted": 0, "num_without_boxes": 0, "variant": "tiny_gap",
        "paper_name": "Tiny-GAP", "pool": "gap", "map_size": "16x16", "checkpoint": "last.pt",
        "checkpoint_sha256": "392a", "weights_load": WEIGHTS, "seed": 0,
        "data": {"root": "/data", "split": "val", "source": "ILSVRC kaggle layout",
                 "num_classes": 10, "image_size": 64, "blacklist": None, "kind": "synthetic",
                 "task": "classes", "evidence": "parts", "family": 0, "name": "synthetic (parts)"},
        "protocol": {"localizer": "cam", "gradcam_layer": None, "box_rule": "paper",
                     "threshold": 0.25 if heldout else 0.2, "normalize": "max",
                     "all_boxes": False, "ten_crop": False, "iou_threshold": 0.5, "topk": 5,
                     "threshold_from": "/runs/val" if heldout else None, "sweep": True,
                     "sweep_thresholds": 1000, "maxboxacc_iou": [30, 50, 70],
                     "map_upsampling": "bilinear", "eval_frame": 64, "wsol_convention": False,
                     "maxboxacc": "true class's map"},
        "world_size": 1, "seconds": 4.15,
        "undefined": {"cls_top5_err": "the network has 5 classes", "pxap": "no mask"},
    }  # fmt: skip


def vqa_json() -> dict[str, Any]:
    scores = {"predicted": 40.0, "true_answer": 45.0, "other_question": 20.0, "centre": None}
    return {
        "answer_accuracy": 61.0, "vqa_accuracy": 63.5, "answer_accuracy_all": 55.0,
        "vqa_accuracy_all": 57.0, "pointing_game": scores, "iou_rate": scores,
        "num_other_question_pairs": 12,
        "by_type": {"what": {"questions": 40, "answer_accuracy": 60.0, "pointing_game": scores,
                             "iou_rate": scores}},
        "num_questions": 80, "num_unanswerable": 3, "num_images": 20, "num_with_target": 70,
        "num_skipped": 0, "num_answers": 12, "num_question_words": 30, "variant": "tiny_gap",
        "paper_name": "Tiny-GAP + BoW (VQA)", "pool": "gap", "checkpoint": "vqa.pt",
        "checkpoint_sha256": "ffee", "seed": 1,
        "data": {"root": "/vqa", "split": "val", "source": "VQA v2", "image_size": 64,
                 "kind": "vqa", "task": "vqa", "evidence": None, "name": "VQA v2"},
        "protocol": {"maps": "CAM", "box_rule": "paper", "threshold": 0.2, "normalize": "max",
                     "iou_threshold": 0.5, "pointing_game": "peak", "baselines": "centre"},
        "world_size": 1, "seconds": 2.0,
        "undefined": {"pointing_game.centre": "no target", "iou_rate.centre": "no target",
                      "by_type.what.pointing_game.centre": "no target",
                      "by_type.what.iou_rate.centre": "no target"},
    }  # fmt: skip


def features_json() -> dict[str, Any]:
    return {
        "accuracy": 80.0, "mean_class_accuracy": None, "num_train": 48, "num_test": 12,
        "num_classes": 3, "num_skipped": 0, "features": "gap", "crop": "cam",
        "classifier": "svm", "C": 1, "solver": "liblinear", "l2_normalize": True,
        "feature_dim": 64, "variant": "tiny_gap", "paper_name": "Tiny-GAP",
        "weights": "checkpoint", "checkpoint": "last.pt", "seed": 0, "trained_on": None,
        "data": {"root": "/cub", "name": "CUB-200-2011", "kind": "cub", "task": "classes",
                 "evidence": None, "family": None, "train_split": "train", "test_split": "val",
                 "image_size": 64},
        "crop_box_iou50": 70.0, "threshold": 0.2,
        "localization": {"gt_known_loc_acc": 50.0, "top1_loc_acc": 40.0, "pointing_game": None,
                         "num_images": 12, "iou_threshold": 0.5, "threshold": 0.2},
        "weights_sha256": "abcd", "weights_load": WEIGHTS,
        "caches": [{"path": "/c/a.npz", "split": "val", "part": "cam", "status": "made",
                    "reason": "absent"}],
        "undefined": {"mean_class_accuracy": "1 of 3 classes has no val image",
                      "localization.pointing_game": "no box"},
        "fit_seconds": 0.5, "seconds": 3.2,
    }  # fmt: skip


BODIES = {"train": train_json, "eval": eval_json, "vqa": vqa_json, "features": features_json}


def body(
    kind: str,
    *,
    data: dict[str, Any] | None = None,
    protocol: dict[str, Any] | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """A full `kind` body with top-level `changes` and keys of its `data` / `protocol` changed. A
    metric given a value here leaves `undefined` (a number beside a reason is refused), unless
    `undefined` is given too."""
    content = BODIES[kind]() | changes
    for key, given in (("data", data), ("protocol", protocol)):
        if given:
            content[key] = {**content[key], **given}
    if "undefined" in content and "undefined" not in changes:
        valued = [k for k, v in changes.items() if v is not None]
        content["undefined"] = {
            k: why for k, why in content["undefined"].items() if k.split(".")[0] not in valued
        }
    return content


def as_written(kind: str, content: dict[str, Any]) -> dict[str, Any]:
    """metrics.json's content of a `kind` body: kind and schema first, as the writers put them."""
    return {"kind": kind, "schema": SCHEMA, **content}


def write_record(
    where: Path, kind: str, content: dict[str, Any] | None = None, **changes: Any
) -> Path:
    """`where`/metrics.json (`where` a folder, made if absent) or `where` itself (a .json path)
    holding a `kind` record: `content`, else `body(kind, **changes)`; returns the file."""
    path = where if where.suffix == ".json" else where / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    given = body(kind, **changes) if content is None else content
    path.write_text(json.dumps(as_written(kind, given), indent=2) + "\n")
    return path
