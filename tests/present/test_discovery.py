"""Section 4.2's pattern discovery in cam-visualize and cam-report (cam_repro/present/: figures.py,
draw.py, table_discovery.py): vqa_panels.png and text_cams.png, discovery.md and discovery.csv;
hand-made metrics.json files in the writers' formats, and tiny real runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cpu_cfg, read_csv
from metrics_records import write_record
from PIL import Image

from cam_repro.data.synth_writer import generate
from cam_repro.evaluate.loop import evaluate_run
from cam_repro.evaluate.views import locate, vqa_questions
from cam_repro.features.run import features_run
from cam_repro.localize.boxes import BoxRule
from cam_repro.present.draw import PEAK_COLOR, cam_panel
from cam_repro.present.report import write_report
from cam_repro.present.runs import VQARun, collect_runs
from cam_repro.present.table_discovery import (
    DISCOVERY_COLUMNS,
    aggregate_discovery,
    discovery_rows,
)
from cam_repro.runtime.errors import InputFileError
from cam_repro.train.trainer import train
from cam_repro.visualize import visualize_run

DPI = 30
ONE_THREAD = "runtime.threads=1"  # quicker on a busy machine


@pytest.fixture(autouse=True, scope="module")
def _keep_threads():
    """runtime.threads=1 (quicker on a busy machine) sets torch's threads for the process: give
    them back after this module's runs, its module-scoped fixtures' included."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def assert_drawn(pixels: np.ndarray) -> None:
    """Not blank, and with a heatmap's saturated colours in it."""
    assert (pixels.mean(axis=2) < 245).mean() > 0.2
    spread = pixels.max(axis=2).astype(int) - pixels.min(axis=2)
    assert (spread > 100).mean() > 0.05


# --- drawing helpers, by hand ----------------------------------------------------------------


def test_questions_are_shared_among_types_and_evenly_spaced() -> None:
    kinds = ["colour", "shape", "colour", "count", "shape", "colour", "colour", "shape"]
    target = [True, True, True, False, True, True, True, False]
    # with a target: colour 0 2 5 6, shape 1 4 (count has none); 5 to draw: colour 3, shape 2
    # colour: positions 0, 1.5, 3 of 4 -> 0, 2, 3 -> questions 0, 5, 6; shape: both
    assert vqa_questions(kinds, target, 5) == [0, 1, 4, 5, 6]
    assert vqa_questions(kinds, target, 2) == [0, 1]  # one of each type, its first
    assert vqa_questions(kinds, target, 99) == [0, 1, 2, 4, 5, 6]  # every one with a target
    assert vqa_questions(kinds, [False] * 8, 3) == [0, 1, 3]  # none has one: every question


def test_locate_and_the_peak_cross() -> None:
    cam = np.zeros((16, 16))
    cam[4:7, 9:12] = 0.5
    cam[5, 10] = 1.0  # peak at x=10, y=5
    gt = np.array([[8, 3, 12, 7]])
    (where,) = locate(cam[None], (16, 16), gt, BoxRule(0.2, "max"))
    assert where.box.tolist() == [9, 4, 11, 6] and where.peak.tolist() == [10.0, 5.0]
    assert where.iou == pytest.approx(9 / 25) and where.hit is True
    (away,) = locate(cam[None], (16, 16), np.array([[0, 0, 3, 3]]), BoxRule(0.2, "max"))
    assert away.iou == 0.0 and away.hit is False
    (none,) = locate(cam[None], (16, 16), np.zeros((0, 4), np.int64), BoxRule(0.2, "max"))
    assert none.iou is None and none.hit is None
    image = np.full((16, 16, 3), 128, np.uint8)
    panel = cam_panel(image, None, None, None, "", peak=where.peak)
    assert tuple(panel.image[5, 10]) == PEAK_COLOR  # the cross's centre
    assert tuple(panel.image[5, 12]) == PEAK_COLOR  # an arm of max(2, 16 // 16) = 2 px
    assert tuple(panel.image[4, 12]) == (0, 0, 0)  # its rim
    assert tuple(panel.image[0, 0]) == (128, 128, 128)


# --- cam-report on hand-made runs ----------------------------------------------------------------


def text_eval_run(root: Path, name: str, seed: int, cls: float, gt_known: float, point: float):
    """A cam-eval run of a network trained on the synthetic text set, as evaluate.loop writes it."""
    run = root / name
    metrics = {
        "cls_top1_err": cls, "cls_top5_err": 0.0, "loc_top1_err": 90.0, "loc_top5_err": 90.0,
        "gt_known_loc_err": gt_known, "pointing_game": point, "maxboxacc_v2": 10.0,
        "num_images": 60, "num_loc_images": 30, "variant": "tiny_gap", "paper_name": "Tiny-GAP",
        "pool": "gap", "map_size": "16x16", "seed": seed,
        "data": {"root": "x", "split": "val", "source": "...", "num_classes": 2,
                 "image_size": 64, "kind": "synthetic", "task": "text", "evidence": None,
                 "family": 0, "name": "synthetic text"},
        "checkpoint_sha256": None, "undefined": {},
    }  # fmt: skip
    write_record(run, "eval", **metrics)
    return run


def classes_eval_run(root: Path) -> Path:
    run = root / "classes"
    metrics = {
        "cls_top1_err": 10.0, "cls_top5_err": 1.0, "loc_top1_err": 40.0, "loc_top5_err": 35.0,
        "gt_known_loc_err": 30.0, "maxboxacc_v2": 60.0, "variant": "tiny_gap",
        "paper_name": "Tiny-GAP", "pool": "gap", "map_size": "16x16", "seed": 0,
        "checkpoint_sha256": None, "undefined": {},
    }  # fmt: skip
    data = {"kind": "synthetic", "task": "classes", "evidence": "parts",
            "name": "synthetic (parts)"}  # fmt: skip
    write_record(run, "eval", data=data, **metrics)
    return run


def vqa_scores(pred: float, other: float, centre: float, true: float) -> dict[str, float]:
    return {"predicted": pred, "true_answer": true, "other_question": other, "centre": centre}


def vqa_eval_run(root: Path, name: str, seed: int, acc: float, point: float) -> Path:
    """A VQA model's cam-eval run, as evaluate.vqa writes it (the keys cam-report reads)."""
    run = root / name
    metrics = {
        "answer_accuracy": acc, "vqa_accuracy": acc + 1,
        "pointing_game": vqa_scores(point, 20.0, 8.0, 50.0),
        "iou_rate": vqa_scores(2.0, 1.0, 1.5, 5.0), "num_other_question_pairs": 10,
        "by_type": {
            "colour": {"questions": 4, "answer_accuracy": acc + 10,
                       "pointing_game": vqa_scores(point + 2, 21.0, 7.0, 60.0),
                       "iou_rate": vqa_scores(1.0, 1.0, 1.0, 4.0)},
            "shape": {"questions": 5, "answer_accuracy": acc - 10,
                      "pointing_game": vqa_scores(point - 2, 19.0, 9.0, 40.0),
                      "iou_rate": vqa_scores(3.0, 1.0, 2.0, 6.0)},
        },
        "num_questions": 9, "num_images": 3, "num_with_target": 9, "num_skipped": 0,
        "variant": "tiny_gap", "paper_name": "Tiny-GAP + BoW (VQA)", "pool": "gap", "seed": seed,
        "data": {"root": "x", "split": "val", "source": "...", "image_size": 64,
                 "kind": "synthetic", "task": "vqa", "evidence": None, "family": 0,
                 "name": "synthetic VQA"},
        "checkpoint_sha256": "", "undefined": {},
    }  # fmt: skip
    write_record(run, "vqa", **metrics)
    return run


def _row(markdown: str, first: str) -> list[str]:
    """The cells of the markdown table row whose first cell is `first` (the first such row)."""
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("|") and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in\n{markdown}")


def test_two_seeds_give_mean_and_std_and_text_stays_out_of_table2(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    text_eval_run(runs, "t0", 0, cls=20.0, gt_known=90.0, point=40.0)
    text_eval_run(runs, "t1", 1, cls=30.0, gt_known=80.0, point=50.0)
    vqa_eval_run(runs, "v0", 0, acc=30.0, point=25.0)
    vqa_eval_run(runs, "v1", 1, acc=40.0, point=35.0)
    classes_eval_run(runs)
    done = write_report([runs], tmp_path / "out")
    out = tmp_path / "out"
    assert {"discovery.md", "discovery.csv", "table2.md", "summary.csv"} <= set(done["files"])
    # the text runs are not in the classification tables; the classification run is
    table2 = (out / "table2.md").read_text()
    assert "text" not in table2 and "VQA" not in table2
    header = next(line for line in table2.splitlines() if line.startswith("| model"))
    runs_column = [c.strip() for c in header.strip("|").split("|")].index("seeds")
    assert _row(table2, "Tiny-GAP")[runs_column] == "1"  # one run: the classification one
    assert [r["run"] for r in read_csv(out / "summary.csv")] == [str(runs / "classes")]
    md = (out / "discovery.md").read_text()
    # accuracy 80, 70: mean 75, sample std sqrt(50) = 7.07; loc. 10, 20; pointing 40, 50
    assert _row(md, "Tiny-GAP trained on text / no text") == [
        "Tiny-GAP trained on text / no text", "75.00 +- 7.07", "15.00 +- 7.07",
        "45.00 +- 7.07", "0 1 (n=2)",
    ]  # fmt: skip
    vqa = _row(md, "Tiny-GAP + BoW (VQA)")
    # answer 30, 40; VQA 31, 41; pointing: predicted 25, 35; other 20; centre 8; true answer 50
    assert vqa[:7] == [
        "Tiny-GAP + BoW (VQA)",
        "35.00 +- 7.07",
        "36.00 +- 7.07",
        "30.00 +- 7.07",
        "20.00 +- 0.00",
        "8.00 +- 0.00",
        "50.00 +- 0.00",
    ]
    assert vqa[-1] == "0 1 (n=2)"
    colour = next(line for line in md.splitlines() if "| colour |" in line)
    assert colour.split(" | ")[2:5] == ["4", "45.00 +- 7.07", "32.00 +- 7.07"]
    assert "The paper reports no number for the text detector" in md
    assert "The paper reports no localization number for VQA" in md
    rows = read_csv(out / "discovery.csv")
    assert list(rows[0]) == list(DISCOVERY_COLUMNS)
    assert [(r["kind"], r["seed"], r["run"]) for r in rows] == [
        ("eval", "0", str(runs / "t0")), ("eval", "1", str(runs / "t1")),
        ("vqa", "0", str(runs / "v0")), ("vqa", "1", str(runs / "v1")),
    ]  # fmt: skip
    assert float(rows[1]["accuracy"]) == 70.0 and float(rows[1]["loc_acc"]) == 20.0
    assert float(rows[3]["pointing_other_question"]) == 20.0


def test_classification_only_reports_have_no_discovery(tmp_path: Path) -> None:
    done = write_report([classes_eval_run(tmp_path / "runs")], tmp_path / "out")
    assert not any(name.startswith("discovery") for name in done["files"])
    assert not (tmp_path / "out" / "discovery.md").exists()


def test_a_text_only_report_writes_no_classification_tables(tmp_path: Path) -> None:
    run = text_eval_run(tmp_path / "runs", "t0", 0, cls=20.0, gt_known=90.0, point=40.0)
    done = write_report([run], tmp_path / "out")
    assert sorted(done["files"]) == ["discovery.csv", "discovery.md"]


def test_a_bad_vqa_metrics_is_named(tmp_path: Path) -> None:
    run = vqa_eval_run(tmp_path, "v", 0, acc=30.0, point=25.0)
    metrics = json.loads((run / "metrics.json").read_text())
    del metrics["vqa_accuracy"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(InputFileError, match=r"v/metrics\.json: lacks vqa_accuracy"):
        collect_runs([run])
    metrics["vqa_accuracy"] = "high"
    (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(InputFileError, match=r"vqa_accuracy 'high' is not a number$"):
        collect_runs([tmp_path])  # found by a folder search too


# --- the real writers end to end -----------------------------------------------------------------


@pytest.fixture(scope="module")
def vqa_eval(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny VQA set, a VQA model trained on it (1 epoch) and its cam-eval run."""
    root = tmp_path_factory.mktemp("vqa")
    data = root / "data"
    generate({"out": str(data), "task": "vqa", "workers": 1, "image_size": 32,
              "vqa": {"train_images": 64, "val_images": 8}})  # fmt: skip
    cfg = cpu_cfg(
        "train", ONE_THREAD, "task=vqa", "data=synthetic_vqa", f"data.root={data}",
        "model.width_mult=0.25", "trainer.epochs=1", "data.batch_size=32",
        "trainer.tensorboard=false",
    )  # fmt: skip
    train(cfg, root / "train")
    checkpoint = root / "train" / "checkpoints" / "best.pt"
    evaluate_run(cpu_cfg("eval", ONE_THREAD, f"checkpoint={checkpoint}"), root / "eval")
    return checkpoint, root / "eval"


def test_vqa_panels_and_discovery_from_real_runs(vqa_eval, tmp_path: Path) -> None:
    checkpoint, run = vqa_eval
    written = visualize_run(
        {"checkpoint": str(checkpoint), "num_images": 4, "dpi": DPI, "runtime": {"device": "cpu"}},
        tmp_path / "figures",
    )
    assert [p.name for p in written] == ["vqa_panels.png"]
    pixels = png(written[0])
    # 3 columns (question, predicted, true answer) of 2.6 in; 4 rows of 2.6 in and the title
    assert pixels.shape[:2] == (round((4 * 2.6 + 0.5) * DPI), round(3 * 2.6 * DPI))
    assert_drawn(pixels)

    done = write_report([run], tmp_path / "report")
    assert sorted(done["files"]) == ["discovery.csv", "discovery.md"]
    (found,) = collect_runs([run])
    assert isinstance(found, VQARun)
    metrics = json.loads((run / "metrics.json").read_text())
    md = (tmp_path / "report" / "discovery.md").read_text()
    cells = _row(md, metrics["paper_name"])
    point, rate = metrics["pointing_game"], metrics["iou_rate"]
    wanted = [
        metrics["answer_accuracy"],
        metrics["vqa_accuracy"],
        *[point[m] for m in ("predicted", "other_question", "centre", "true_answer")],
        *[rate[m] for m in ("predicted", "other_question", "centre", "true_answer")],
    ]
    assert cells[1:11] == [f"{v:.2f}" for v in wanted]  # fmt: skip
    for kind, scores in metrics["by_type"].items():
        line = next(x for x in md.splitlines() if f"| {kind} |" in x)
        assert line.split(" | ")[2:4] == [str(scores["questions"]),
                                          f"{scores['answer_accuracy']:.2f}"]  # fmt: skip
    (row,) = read_csv(tmp_path / "report" / "discovery.csv")
    assert float(row["pointing_centre"]) == pytest.approx(point["centre"], abs=5e-5)
    assert row["run"] == str(run) and row["num_images"] == str(metrics["num_questions"])


@pytest.fixture(scope="module")
def text_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("text") / "data"
    generate({"task": "text", "out": str(out), "train_per_class": 12, "val_per_class": 4,
              "image_size": 32, "workers": 1})  # fmt: skip
    return out


def test_text_detector_figures_and_row_from_real_runs(
    trained: Path, text_data: Path, tmp_path: Path
) -> None:
    # the paper's way: a linear SVM on GAP features of a network trained on the benchmark
    feat = tmp_path / "features"
    metrics = features_run(
        cpu_cfg("features", ONE_THREAD, f"checkpoint={trained}", f"data.root={text_data}",
                 "data.num_workers=0"),
        feat,
    )  # fmt: skip
    written = visualize_run(
        {"features_run": str(feat), "num_images": 3, "dpi": DPI, "runtime": {"device": "cpu"}},
        tmp_path / "figures",
    )
    assert [p.name for p in written] == ["linear_cams.png", "text_cams.png"]
    pixels = png(tmp_path / "figures" / "text_cams.png")
    # the first 3 text images, a row each: the image with its words, the text class's CAM
    assert pixels.shape[:2] == (round((3 * 2.2 + 0.5) * DPI), round(2 * 2.2 * DPI))
    assert_drawn(pixels)

    # a network trained on text / no text: its own CAMs, the usual figures beside
    cfg = cpu_cfg(
        "train", ONE_THREAD, f"data.root={text_data}", "data.image_size=32", "data.resize_size=32",
        "data.batch_size=32", "trainer.epochs=1", "trainer.tensorboard=false",
    )  # fmt: skip
    train(cfg, tmp_path / "train")
    checkpoint = tmp_path / "train" / "checkpoints" / "best.pt"
    written = visualize_run(
        {"checkpoint": str(checkpoint), "num_images": 2, "units": 0, "per_image": False,
         "dpi": DPI, "runtime": {"device": "cpu"}},
        tmp_path / "net",
    )  # fmt: skip
    assert [p.name for p in written] == ["text_cams.png"]
    assert png(written[0]).shape[:2] == (round((2 * 2.2 + 0.5) * DPI), round(2 * 2.2 * DPI))
    text_eval = tmp_path / "eval"
    evaluate_run(
        cpu_cfg("eval", ONE_THREAD, f"checkpoint={checkpoint}", "sweep_thresholds=10"), text_eval
    )

    # the report: both text runs in discovery, neither in the classification tables
    classes = tmp_path / "classes"
    evaluate_run(
        cpu_cfg("eval", ONE_THREAD, f"checkpoint={trained}", "sweep_thresholds=10"), classes
    )
    write_report([feat, text_eval, classes], tmp_path / "report")
    md = (tmp_path / "report" / "discovery.md").read_text()
    loc = metrics["localization"]
    cells = _row(md, "linear SVM on Tiny-GAP GAP features (trained on synthetic (uniform))")
    assert cells[1:4] == [f"{metrics['accuracy']:.2f}", f"{loc['gt_known_loc_acc']:.2f}",
                          f"{loc['pointing_game']:.2f}"]  # fmt: skip
    own = json.loads((text_eval / "metrics.json").read_text())
    cells = _row(md, "Tiny-GAP trained on text / no text")
    wanted = [100 - own["cls_top1_err"], 100 - own["gt_known_loc_err"], own["pointing_game"]]
    assert cells[1:4] == [f"{v:.2f}" for v in wanted]
    summary = read_csv(tmp_path / "report" / "summary.csv")
    assert [r["run"] for r in summary] == [str(classes)]
    assert "synthetic text" not in (tmp_path / "report" / "table2.md").read_text()
    assert not (tmp_path / "report" / "features_summary.csv").exists()
    rows = discovery_rows(collect_runs([feat, text_eval]))
    assert [r["kind"] for r in rows] == ["features", "eval"]
    assert len(aggregate_discovery(rows)) == 2
