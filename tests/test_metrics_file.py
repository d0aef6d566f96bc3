"""metrics.json's one schema (cam_repro/runtime/metrics_file.py): every kind written and read back
unchanged, and each malformed file refused in one line naming it.

The records are built here by hand, with the keys and values today's writers give (cam-train's
Trainer, cam-eval's summary, the VQA evaluation, cam-features' summary)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cam_repro.runtime.errors import InputFileError
from cam_repro.runtime.metrics_file import (
    SCHEMA,
    EvalMetrics,
    FeaturesMetrics,
    TrainMetrics,
    VQAMetrics,
    as_json,
    metric_at,
    read_metrics,
    write_metrics,
)

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


RECORDS = {
    "train": (train_json, TrainMetrics),
    "eval": (eval_json, EvalMetrics),
    "vqa": (vqa_json, VQAMetrics),
    "features": (features_json, FeaturesMetrics),
}


def file_with(tmp_path: Path, content: Any, name: str = "metrics.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(content, indent=2) + "\n")
    return path


def as_written(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "schema": SCHEMA, **body}


@pytest.mark.parametrize("kind", list(RECORDS))
def test_each_kind_reads_and_writes_back_the_same_file(tmp_path: Path, kind: str) -> None:
    make, cls = RECORDS[kind]
    given = file_with(tmp_path, as_written(kind, make()), "given.json")
    record = read_metrics(given, kind)
    assert type(record) is cls
    assert record.kind == kind
    assert read_metrics(given) == record == read_metrics(given, ("eval", kind))
    again = tmp_path / "again.json"
    write_metrics(again, record)
    # byte for byte: runtime.files.write_json's indent, key order, "kind" and "schema" first
    assert again.read_text() == given.read_text()
    assert list(as_json(record))[:2] == ["kind", "schema"]


def test_eval_record_fields_and_optional_keys(tmp_path: Path) -> None:
    """Keys some runs leave out stay out (ILSVRC has no `family`; a fixed threshold no
    `heldout_acc`), and come back when given; `from` is read as `from_`."""
    body = eval_json()
    del body["data"]["family"]
    record = read_metrics(file_with(tmp_path, as_written("eval", body)), "eval")
    assert record.data.family is None and "family" not in as_json(record)["data"]
    assert record.thresholds.paper_rule.chosen == "fixed"
    assert "heldout_acc" not in as_json(record)["thresholds"]["paper_rule"]
    held = read_metrics(file_with(tmp_path, as_written("eval", eval_json(True))), "eval")
    box = held.thresholds.maxboxacc["50"]
    assert (box.from_, box.heldout_acc, box.oracle_value, box.disjoint) == (
        "/runs/val", 60.0, 0.3, True)  # fmt: skip
    assert as_json(held)["thresholds"]["maxboxacc"]["50"] == choice("50", True)


def test_numbers_read_back_as_written(tmp_path: Path) -> None:
    """An integer in a float field stays an integer (C: 1), so the file written back is the
    same; NaN is a float, as Python's json writes it."""
    body = features_json()
    body["accuracy"] = float("nan")
    del body["undefined"]["mean_class_accuracy"]
    body["mean_class_accuracy"] = 75
    record = read_metrics(file_with(tmp_path, as_written("features", body)), "features")
    assert record.C == 1 and isinstance(record.C, int) and record.mean_class_accuracy == 75
    assert record.accuracy != record.accuracy  # NaN


def test_metric_at_reads_records_and_mappings(tmp_path: Path) -> None:
    record = read_metrics(file_with(tmp_path, as_written("vqa", vqa_json())), "vqa")
    assert metric_at(record, "by_type.what.pointing_game.predicted") == 40.0
    assert metric_at(record, "data.name") == "VQA v2"
    assert metric_at(record, "pointing_game.nowhere") is None
    assert metric_at(record, "answer_accuracy.deeper") is None
    held = read_metrics(file_with(tmp_path, as_written("eval", eval_json(True))), "eval")
    assert metric_at(held, "thresholds.maxboxacc.30.from") == "/runs/val"
    assert metric_at(eval_json(True), "thresholds.paper_rule.from") == "/runs/val"


def refusal(tmp_path: Path, content: Any, kind: Any = None) -> str:
    path = file_with(tmp_path, content)
    with pytest.raises(InputFileError) as err:
        read_metrics(path, kind)
    message = str(err.value)
    assert "\n" not in message
    return message.replace(str(path), "<f>")


def test_not_json_or_not_an_object(tmp_path: Path) -> None:
    bad = tmp_path / "metrics.json"
    bad.write_text("{not json")
    with pytest.raises(InputFileError, match=r"metrics\.json: not valid JSON \("):
        read_metrics(bad)
    assert refusal(tmp_path, [1, 2]) == "<f>: not a metrics.json (a JSON object expected)"


def test_an_older_file_names_the_command_that_rewrites_it(tmp_path: Path) -> None:
    old = "<f>: written by an older cam-repro (schema 1); re-run "
    assert refusal(tmp_path, eval_json(), "eval") == old + "cam-eval"
    assert refusal(tmp_path, train_json(), "train") == old + "cam-train"
    assert refusal(tmp_path, {"kind": "vqa", **vqa_json()}) == old + "cam-eval"  # VQA: had kind
    assert refusal(tmp_path, {"kind": "features", **features_json()}, "eval") == (
        old + "cam-features")  # fmt: skip
    assert refusal(tmp_path, train_json(), ("eval", "vqa", "features")) == (
        old + "cam-eval or cam-features")  # fmt: skip
    assert refusal(tmp_path, train_json()) == old + "the command that wrote it"
    assert refusal(tmp_path, {"schema": 1, "kind": "train"}) == old + "cam-train"
    newer = as_written("train", train_json()) | {"schema": 3}
    assert refusal(tmp_path, newer) == "<f>: schema 3; this cam-repro reads schema 2"
    assert refusal(tmp_path, newer | {"schema": "2"}) == (
        "<f>: schema '2'; this cam-repro reads schema 2")  # fmt: skip


def test_missing_or_unknown_kind(tmp_path: Path) -> None:
    body = {"schema": SCHEMA, **train_json()}
    assert refusal(tmp_path, body) == (
        "<f>: no kind; a metrics.json's is one of train, eval, vqa, features")  # fmt: skip
    assert refusal(tmp_path, {"kind": "sweep", **body}) == (
        "<f>: kind 'sweep'; a metrics.json's is one of train, eval, vqa, features")  # fmt: skip


def test_a_kind_the_caller_does_not_read(tmp_path: Path) -> None:
    train = as_written("train", train_json())
    assert (
        refusal(tmp_path, train, "eval") == "<f> is a cam-train run's metrics.json, not cam-eval's"
    )
    assert refusal(tmp_path, as_written("vqa", vqa_json()), ("eval", "features")) == (
        "<f> is a VQA model's cam-eval run's metrics.json, not cam-eval's or cam-features'"
    )
    with pytest.raises(ValueError, match="kind 'evaluate' is not one of"):
        read_metrics(tmp_path / "metrics.json", "evaluate")


def test_missing_and_unknown_fields(tmp_path: Path) -> None:
    body = eval_json()
    del body["paper_name"], body["cls_top1_err"]
    assert refusal(tmp_path, as_written("eval", body)) == "<f>: lacks cls_top1_err, paper_name"
    body = eval_json()
    del body["data"]["root"]
    assert refusal(tmp_path, as_written("eval", body)) == "<f>: lacks data.root"
    body = train_json()
    del body["epochs"][0]["lr"]
    assert refusal(tmp_path, as_written("train", body)) == "<f>: lacks epochs[0].lr"
    body = eval_json() | {"extra": 1}
    assert refusal(tmp_path, as_written("eval", body)) == "<f>: extra: no such key in schema 2"
    body = features_json()
    body["caches"][0]["size"] = 3
    assert refusal(tmp_path, as_written("features", body)) == (
        "<f>: caches[0].size: no such key in schema 2")  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "key", "value", "message"),
    [
        ("eval", "cls_top1_err", "11.6", "cls_top1_err '11.6' is not a number or null"),
        ("eval", "num_images", True, "num_images True is not an integer"),
        ("eval", "num_images", 500.0, "num_images 500.0 is not an integer"),
        ("eval", "data", [], "data [] is not a mapping"),
        ("eval", "box_acc", {"30": "x"}, "box_acc.30 'x' is not a number or null"),
        ("train", "best", 3, "best 3 is not a mapping or null"),
        ("train", "epochs", {}, "epochs {} is not a list"),
        ("features", "l2_normalize", 1, "l2_normalize 1 is not true or false"),
        ("features", "undefined", {"accuracy": 1}, "undefined.accuracy 1 is not a string"),
        ("vqa", "paper_name", None, "paper_name None is not a string"),
        ("vqa", "seed", "x" * 80, "seed '" + "x" * 56 + "... is not an integer or null"),
    ],
)
def test_a_value_of_the_wrong_type(
    tmp_path: Path, kind: str, key: str, value: Any, message: str
) -> None:
    body = RECORDS[kind][0]() | {key: value}
    assert refusal(tmp_path, as_written(kind, body), kind) == f"<f>: {message}"


def test_an_undefined_metric_must_be_null(tmp_path: Path) -> None:
    body = eval_json()
    body["pxap"] = 3.0
    assert refusal(tmp_path, as_written("eval", body)) == (
        "<f>: pxap is 3.0 but listed as undefined")  # fmt: skip
    body = features_json()
    body["localization"]["pointing_game"] = 50.0
    assert refusal(tmp_path, as_written("features", body)) == (
        "<f>: localization.pointing_game is 50.0 but listed as undefined")  # fmt: skip
    body = vqa_json()  # a key that names no metric reads as null: accepted, as before
    body["undefined"]["no_such.metric"] = "why"
    assert read_metrics(file_with(tmp_path, as_written("vqa", body))).undefined["no_such.metric"]


def test_a_record_no_reader_would_take_is_not_written(tmp_path: Path) -> None:
    record = read_metrics(file_with(tmp_path, as_written("eval", eval_json())), "eval")
    record.pxap = 3.0  # beside its reason under "undefined"
    with pytest.raises(ValueError, match=r"write_metrics: .*: pxap is 3\.0 but listed as undef"):
        write_metrics(tmp_path / "out.json", record)
    record.pxap, record.num_images = None, "500"
    with pytest.raises(ValueError, match="num_images '500' is not an integer"):
        write_metrics(tmp_path / "out.json", record)
    assert not (tmp_path / "out.json").exists()
