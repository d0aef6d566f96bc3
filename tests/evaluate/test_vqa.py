"""The VQA model (paper Section 4.2): one linear layer over [GAP image features; bag-of-words],
the answer CAM and its identity, and the whole embedded run (cam-synth task=vqa, cam-train
task=vqa, cam-eval)."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cpu_cfg

from cam_repro.data.synth_writer import generate
from cam_repro.evaluate.loop import evaluate_run
from cam_repro.evaluate.vqa import localization_scores
from cam_repro.models import model_config
from cam_repro.models.checkpoint import load_model
from cam_repro.models.vqa import VQANet, answer_cams, bag_of_words, build_vqa_model
from cam_repro.runtime.errors import ConfigError
from cam_repro.train.trainer import train

TINY = {"arch": "tiny", "modified": True, "pool": "gap", "num_pools": 2, "head_channels": 0,
        "width_mult": 0.25}  # fmt: skip


def tiny_vqa(vocab: int = 7, answers: int = 5) -> VQANet:
    torch.manual_seed(0)
    model = build_vqa_model(model_config(TINY), answers, vocab)
    with torch.no_grad():  # weights of a size that makes every term count
        model.classifier.weight.normal_(0, 0.5)
        model.classifier.bias.normal_(0, 0.5)
    return model.eval()


def test_bag_of_words_counts_words_and_ignores_padding() -> None:
    tokens = torch.tensor([[0, 2, 2, -1], [3, -1, -1, -1]])
    bow = bag_of_words(tokens, 4)
    assert bow.tolist() == [[1, 0, 2, 0], [0, 0, 0, 1]]


def test_logits_are_one_linear_layer_over_gap_and_bag_of_words() -> None:
    model = tiny_vqa()
    images, tokens = torch.randn(3, 3, 32, 32), torch.tensor([[0, 1, -1], [6, 6, 2], [-1, -1, -1]])
    with torch.no_grad():
        logits = model(images, tokens)
        gap = model.features(images).mean(dim=(2, 3))
    q = bag_of_words(tokens, 7)
    expect = gap @ model.image_weight.T + q @ model.question_weight.T + model.classifier.bias
    torch.testing.assert_close(logits, expect, rtol=1e-5, atol=1e-5)


def test_answer_cam_identity_with_the_question_term() -> None:
    """mean_xy M_a + W_q[a] . bow(q) + b_a = logit_a, for every answer a."""
    model = tiny_vqa()
    images, tokens = torch.randn(2, 3, 32, 32), torch.tensor([[1, 2, 3], [4, -1, -1]])
    every = torch.arange(5).repeat(2, 1)
    with torch.no_grad():
        out = answer_cams(model, images, tokens, answers=every)
    q = bag_of_words(tokens, 7)
    rebuilt = out.cams.mean(dim=(2, 3)) + q @ model.question_weight.T + model.classifier.bias
    torch.testing.assert_close(rebuilt, out.logits, rtol=1e-5, atol=1e-5)
    # The top-1 answer's map is that answer's; the question changes the answer, not the map.
    with torch.no_grad():
        top = answer_cams(model, images, tokens, topk=1)
    assert torch.equal(top.classes[:, 0], out.logits.argmax(dim=1))
    torch.testing.assert_close(top.cams[:, 0], out.cams[torch.arange(2), top.classes[:, 0]])
    # `append`: the given answers' maps after the top-k ones, from the same pass
    true = torch.tensor([3, 0])
    with torch.no_grad():
        both = answer_cams(model, images, tokens, topk=1, append=true)
    assert both.classes.tolist() == [[top.classes[0, 0].item(), 3], [top.classes[1, 0].item(), 0]]
    torch.testing.assert_close(both.cams[:, 1], out.cams[torch.arange(2), true])


def test_a_network_without_a_cam_head_is_refused() -> None:
    with pytest.raises(ConfigError, match="task=vqa needs a CAM network"):
        build_vqa_model(model_config({"arch": "alexnet", "modified": False}), 4, 3)


@pytest.fixture(scope="module")
def vqa_run(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A tiny embedded VQA set, one VQA model trained on it (2 epochs) and its cam-eval."""
    root = tmp_path_factory.mktemp("vqa")
    data = root / "data"
    generate({"out": str(data), "task": "vqa", "workers": 1, "image_size": 32,
              "vqa": {"train_images": 240, "val_images": 40}})  # fmt: skip
    run = root / "train"
    cfg = cpu_cfg(
        "train", "task=vqa", "data=synthetic_vqa", f"data.root={data}", "model.width_mult=0.5",
        "trainer.epochs=2", "data.batch_size=32", "trainer.tensorboard=false",
    )  # fmt: skip
    train(cfg, run)
    metrics = evaluate_run(cpu_cfg("eval", f"checkpoint={run / 'checkpoints/best.pt'}"),
                           root / "eval")  # fmt: skip
    return data, root / "eval", metrics


def test_embedded_vqa_end_to_end(vqa_run) -> None:
    _, run, metrics = vqa_run
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert metrics["kind"] == "vqa" and metrics["num_questions"] == 40 * 3
    assert metrics["num_with_target"] == 120 and metrics["num_images"] == 40
    # Above chance: a question's type leaves 1 of 4 shapes or 1 of 6 colours.
    assert metrics["answer_accuracy"] > 100 / 6
    with open(run / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 120
    right = [r["answer"] == r["predicted"] for r in rows]
    assert int(sum(right)) == round(metrics["answer_accuracy"] * 1.2)
    assert metrics["pointing_game"]["predicted"] == pytest.approx(
        100 * np.mean([r["peak_in_target"] == "1" for r in rows])
    )
    for key in ("pointing_game", "iou_rate"):
        assert set(metrics[key]) == {"predicted", "true_answer", "other_question", "centre"}
        assert all(0 <= v <= 100 for v in metrics[key].values())
    assert set(metrics["by_type"]) == {"colour", "shape"}
    assert metrics["num_unanswerable"] == 0
    assert metrics["answer_accuracy_all"] == pytest.approx(metrics["answer_accuracy"])
    # The checkpoint is a VQA model with the train split's words; it rebuilds as one.
    model, state = load_model(Path(metrics["checkpoint"]))
    assert isinstance(model, VQANet) and state["question_vocab"][:2] == ["is", "the"]
    digest = hashlib.sha256(Path(metrics["checkpoint"]).read_bytes()).hexdigest()
    assert metrics["checkpoint_sha256"] == digest  # which weights the discovery table's row had


def test_task_and_data_must_agree(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="task=vqa"):
        train(cpu_cfg("train", "task=vqa", f"data.root={tmp_path}"), tmp_path / "run")


def test_baselines_by_hand() -> None:
    """Two questions about one 10x10 image with targets left and right: the maps' peaks and
    boxes, scored for each question and for the other question."""
    from cam_repro.data.samples import DataSplit, Questions, Sample
    from cam_repro.evaluate.vqa import QuestionRow

    image = Path("a.jpg")
    left, right = np.array([[0, 0, 3, 9]]), np.array([[6, 0, 9, 9]])
    samples = [Sample(image, 0, (10, 10), left, np.array([0])),
               Sample(image, 1, (10, 10), right, np.array([1]))]  # fmt: skip
    questions = Questions(
        [1, 2], ["a", "b"], np.zeros((2, 1), np.int64), ["a"], [[], []], ["x"] * 2
    )
    data = DataSplit("val", Path("."), ["p", "q"], ["p", "q"], samples, "test", questions=questions)
    rows = [  # both maps peak on the left object, with its box
        QuestionRow(0, 0, 0, 0.9, [[1.0, 5.0], [1.0, 5.0]], [[0, 0, 3, 9], [0, 0, 3, 9]]),
        QuestionRow(1, 1, 0, 0.9, [[1.0, 5.0], [1.0, 5.0]], [[0, 0, 3, 9], [0, 0, 3, 9]]),
    ]
    scores, own = localization_scores(data, rows, 0.5)
    assert scores["pointing_game"]["predicted"] == 50.0  # right for question 1 only
    assert scores["iou_rate"]["predicted"] == 50.0
    # question 1 scored with question 2's map (a hit), question 2 with question 1's (a miss)
    assert scores["pointing_game"]["other_question"] == 50.0
    assert scores["num_other_question_pairs"] == 2
    # the centre (4.5, 4.5) is on neither object; the centred 4x10 box (3..6) overlaps each by 1/7
    assert scores["pointing_game"]["centre"] == 0.0 and scores["iou_rate"]["centre"] == 0.0
    assert own[0]["predicted"] == (True, 1.0) and own[1]["predicted"] == (False, 0.0)


def test_cam_features_refuses_vqa_data(vqa_run, tmp_path: Path) -> None:
    from cam_repro.features.run import features_run

    *_, metrics = vqa_run
    with pytest.raises(ConfigError, match="VQA data"):
        features_run(cpu_cfg("features", f"checkpoint={metrics['checkpoint']}"), tmp_path / "f")


def test_questions_with_an_unknown_answer_count_as_wrong_over_all(vqa_run, tmp_path: Path) -> None:
    """A val question whose answer the model does not know is left out of answer_accuracy and
    counted as wrong in answer_accuracy_all (and VQA accuracy alike)."""
    import shutil

    data, _, metrics = vqa_run
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    path = copy / "v2_mscoco_val2014_annotations.json"
    annotations = json.loads(path.read_text())
    first = annotations["annotations"][0]
    first["multiple_choice_answer"] = "purple"
    for answer in first["answers"]:
        answer["answer"] = "purple"
    path.write_text(json.dumps(annotations))
    again = evaluate_run(
        cpu_cfg("eval", f"checkpoint={metrics['checkpoint']}", f"data.root={copy}"),
        tmp_path / "eval",
    )
    assert again["num_unanswerable"] == 1 and again["num_questions"] == 119
    right = again["answer_accuracy"] * 119 / 100
    assert again["answer_accuracy_all"] == pytest.approx(100 * right / 120)
    assert again["vqa_accuracy_all"] < again["vqa_accuracy"] or again["vqa_accuracy"] == 0


def test_vqa_data_without_targets_gives_accuracy_only(vqa_run, tmp_path: Path) -> None:
    """Real VQA v2 has no targets file: the accuracies, and no localization number (None)."""
    import shutil

    data, _, metrics = vqa_run
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    for path in copy.glob("targets_*.csv"):
        path.unlink()
    again = evaluate_run(
        cpu_cfg("eval", f"checkpoint={metrics['checkpoint']}", f"data.root={copy}"),
        tmp_path / "eval",
    )
    assert again["answer_accuracy"] == pytest.approx(metrics["answer_accuracy"])
    assert again["num_with_target"] == 0
    assert set(again["pointing_game"].values()) == {None}
    assert set(again["iou_rate"].values()) == {None}
    with open(tmp_path / "eval" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 120 and {r["target_box"] for r in rows} == {""}
    from cam_repro.present.report import write_report

    write_report([tmp_path / "eval"], tmp_path / "report")
    report = (tmp_path / "report" / "discovery.md").read_text()
    assert f"{again['answer_accuracy']:.2f}" in report
