"""metrics.json's one schema (cam_repro/runtime/metrics_file.py): every kind written and read back
unchanged, and each malformed file refused in one line naming it.

The records are built by hand (tests/metrics_records.py), with the keys and values today's writers
give (cam-train's train.logs, cam-eval's summary, the VQA evaluation, cam-features' summary)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from metrics_records import (
    as_written,
    choice,
    eval_json,
    features_json,
    train_json,
    vqa_json,
)

from cam_repro.runtime.errors import InputFileError
from cam_repro.runtime.metrics_file import (
    SCHEMA,
    EvalMetrics,
    FeaturesMetrics,
    OlderSchemaError,
    TrainMetrics,
    VQAMetrics,
    as_json,
    metrics_record,
    read_metrics,
    save_metrics,
    write_metrics,
)
from cam_repro.runtime.typed_json import value_at

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


def test_value_at_reads_records_and_mappings(tmp_path: Path) -> None:
    record = read_metrics(file_with(tmp_path, as_written("vqa", vqa_json())), "vqa")
    assert value_at(record, "by_type.what.pointing_game.predicted") == 40.0
    assert value_at(record, "data.name") == "VQA v2"
    assert value_at(record, "pointing_game.nowhere") is None
    assert value_at(record, "answer_accuracy.deeper") is None
    held = read_metrics(file_with(tmp_path, as_written("eval", eval_json(True))), "eval")
    assert value_at(held, "thresholds.maxboxacc.30.from") == "/runs/val"
    assert value_at(eval_json(True), "thresholds.paper_rule.from") == "/runs/val"


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
    with pytest.raises(OlderSchemaError):  # a reader that can redo the work tells it apart
        read_metrics(file_with(tmp_path, train_json()), "train")
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


def test_a_held_out_threshold_must_have_been_checked(tmp_path: Path) -> None:
    """'heldout' without disjoint: true would label an unchecked threshold as held out."""
    assert read_metrics(file_with(tmp_path, as_written("eval", eval_json(heldout=True))), "eval")
    body = eval_json(heldout=True)
    del body["thresholds"]["paper_rule"]["disjoint"]
    assert refusal(tmp_path, as_written("eval", body)) == (
        "<f>: thresholds.paper_rule is chosen 'heldout' without disjoint: true (its images were "
        "not checked to be held out)"
    )
    body = eval_json(heldout=True)
    body["thresholds"]["maxboxacc"]["50"]["disjoint"] = False
    assert refusal(tmp_path, as_written("eval", body)).startswith(
        "<f>: thresholds.maxboxacc.50 is chosen 'heldout' without disjoint: true"
    )


def test_a_record_no_reader_would_take_is_not_written(tmp_path: Path) -> None:
    record = read_metrics(file_with(tmp_path, as_written("eval", eval_json())), "eval")
    record.pxap = 3.0  # beside its reason under "undefined"
    with pytest.raises(ValueError, match=r"write_metrics: .*: pxap is 3\.0 but listed as undef"):
        write_metrics(tmp_path / "out.json", record)
    record.pxap, record.num_images = None, "500"
    with pytest.raises(ValueError, match="num_images '500' is not an integer"):
        write_metrics(tmp_path / "out.json", record)
    assert not (tmp_path / "out.json").exists()


def test_a_writers_content_is_saved_as_its_record(tmp_path: Path) -> None:
    """save_metrics (every writer's way): kind and schema first, the content checked first."""
    path = tmp_path / "metrics.json"
    content = {"kind": "vqa", **vqa_json()}  # a writer's mapping; kind and schema are added
    written = save_metrics(path, "vqa", content)
    assert list(written)[:2] == ["kind", "schema"] and written == json.loads(path.read_text())
    assert read_metrics(path, "vqa") == metrics_record("vqa", vqa_json())
    with pytest.raises(ValueError, match="metrics_record: vqa: lacks seconds"):
        save_metrics(
            tmp_path / "out.json", "vqa", {k: v for k, v in content.items() if k != "seconds"}
        )
    assert not (tmp_path / "out.json").exists()
