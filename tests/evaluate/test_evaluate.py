"""cam-eval: a tiny trained model evaluated end to end; metrics.json agrees with predictions.csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import write_classic, write_cub
from helpers import eval_cfg
from tolerances import assert_close_at_scale

from cam_repro.boxes import iou
from cam_repro.cam import CAMUnavailableError
from cam_repro.evaluate.localizer import Localizer, localize_ten_crop, ten_crop_windows
from cam_repro.evaluate.loop import evaluate_run
from cam_repro.models import build_model
from cam_repro.runtime.errors import ConfigError, InputFileError, MissingFileError


def read_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "predictions.csv", newline="") as f:
        return list(csv.DictReader(f))


def _boxes(text: str) -> list[list[int]]:
    return [[int(v) for v in part.split()] for part in text.split(";") if part]


def recompute(rows: list[dict[str, str]], k: int, iou_threshold: float = 0.5) -> dict[str, float]:
    """The five errors from predictions.csv alone, with IoUs recomputed from the boxes."""
    hits = {"cls_top1": [], "cls_top5": [], "loc_top1": [], "loc_top5": [], "gt_known": []}
    counted = []
    for row in rows:
        gt = list(zip(row["gt_wnids"].split(), _boxes(row["gt_boxes"]), strict=True))

        def located(wnid: str, box: str, gt=gt) -> bool:
            (b,) = _boxes(box)
            return any(w == wnid and iou(b, g) >= iou_threshold for w, g in gt)

        preds = [(row[f"pred{r}_wnid"], row[f"pred{r}_box"]) for r in range(1, k + 1)]
        right = [w == row["label"] for w, _ in preds]
        hits["cls_top1"].append(right[0])
        hits["cls_top5"].append(any(right))
        hits["loc_top1"].append(right[0] and located(*preds[0]))
        hits["loc_top5"].append(any(r and located(*p) for r, p in zip(right, preds, strict=True)))
        hits["gt_known"].append(located(row["label"], row["gt_known_box"]))
        counted.append(row["loc_counted"] == "1")
    counted = np.array(counted)
    out = {}
    for key, name in [
        ("cls_top1", "cls_top1_err"),
        ("cls_top5", "cls_top5_err"),
        ("loc_top1", "loc_top1_err"),
        ("loc_top5", "loc_top5_err"),
        ("gt_known", "gt_known_loc_err"),
    ]:
        h = np.array(hits[key])
        if not key.startswith("cls"):
            h = h[counted]
        out[name] = 100.0 * (1 - h.mean())
    if k < 5:  # fewer classes than topk=5: top-5 is undefined (loc_error.error_rates)
        out["cls_top5_err"] = None
    return out


def test_end_to_end_metrics_agree_with_predictions(trained: Path, tmp_path: Path) -> None:
    run = tmp_path / "eval"
    metrics = evaluate_run(eval_cfg(f"checkpoint={trained}"), run)
    assert sorted(p.name for p in run.iterdir()) == [
        ".cam-repro.lock",  # the run lock (tests/e2e/test_reliability.py)
        "config.yaml",
        "eval.log",
        "metrics.json",
        "predictions.csv",
        "table.md",  # no sweep.csv: the paper rule's sweep runs only with sweep=true
    ]
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert metrics["num_images"] == 48 and metrics["num_loc_images"] == 48
    # Trained 4 epochs on 3 classes: well below chance (66.7%); top-5 of 3 classes never misses,
    # so it is undefined, not 0 (tests/evaluate/test_undefined_metrics.py)
    assert metrics["cls_top1_err"] < 40 and metrics["cls_top5_err"] is None
    assert metrics["undefined"] == {
        "cls_top5_err": "the network has 3 classes, at most topk=5: every class is among its top "
        "5, so the error is 0 by construction"
    }
    rows = read_rows(run)
    assert [int(r["index"]) for r in rows] == list(range(48))
    assert len({r["image_id"] for r in rows}) == 48
    again = recompute(rows, k=3)
    for key, value in again.items():
        assert metrics[key] == pytest.approx(value, abs=1e-9), key
    # IoUs in the file are those of the boxes in the file (original-image coordinates).
    for row in rows[:10]:
        gt = _boxes(row["gt_boxes"])
        for r in (1, 2, 3):
            (box,) = _boxes(row[f"pred{r}_box"])
            assert 0 <= box[0] <= box[2] < 32 and 0 <= box[1] <= box[3] < 32
            best = max(iou(box, g) for g in gt) if row[f"pred{r}_wnid"] == row["label"] else 0.0
            assert float(row[f"pred{r}_iou"]) == pytest.approx(best, abs=1e-6)
    # The pointing game: the file's peaks, checked against the file's boxes.
    hits = []
    for row in rows:
        x, y = (float(v) for v in row["gt_known_peak"].split())
        inside = any(
            g[0] - 0.5 <= x <= g[2] + 0.5 and g[1] - 0.5 <= y <= g[3] + 0.5
            for g in _boxes(row["gt_boxes"])
        )
        assert int(row["peak_in_box"]) == inside
        hits.append(inside)
    assert metrics["pointing_game"] == pytest.approx(100 * np.mean(hits))
    # Localization is worse than classification, and better than nothing.
    assert metrics["cls_top1_err"] <= metrics["loc_top1_err"] < 100
    assert 0 < metrics["maxboxacc_v2"] <= 100 and metrics["pxap"] is not None
    assert set(metrics["box_acc"]) == {"30", "50", "70"}
    assert metrics["box_acc"]["30"] >= metrics["box_acc"]["50"] >= metrics["box_acc"]["70"]
    assert metrics["protocol"]["box_rule"] == "paper" and metrics["protocol"]["threshold"] == 0.2
    assert metrics["variant"] == "tiny_gap" and metrics["paper_name"] == "Tiny-GAP"
    table = (run / "table.md").read_text().splitlines()
    assert table[0].startswith("| Method | top-1 val. error | top-5 val. error |")
    assert table[2].startswith(f"| Tiny-GAP | {metrics['loc_top1_err']:.2f} |")


def test_sweep_at_the_protocol_threshold_equals_gt_known(trained: Path, tmp_path: Path) -> None:
    """The one-pass sweep (component tree) and the per-image boxes (scipy) agree at 0.2: the
    images are 32 px and evaluated at 32 px, so both compute IoU in the same pixels."""
    metrics = evaluate_run(eval_cfg(f"checkpoint={trained}", "sweep=true"), tmp_path)
    assert metrics["protocol"]["sweep"] is True
    with open(tmp_path / "sweep.csv", newline="") as f:
        sweep = list(csv.DictReader(f))
    assert len(sweep) == 1000 and float(sweep[0]["threshold"]) == 0.0
    assert list(sweep[0]) == [
        "threshold",
        "gt_known_loc_acc",
        "box_acc_30",
        "box_acc_50",
        "box_acc_70",
    ]
    at = next(r for r in sweep if float(r["threshold"]) == 0.2)
    assert float(at["gt_known_loc_acc"]) == pytest.approx(100 - metrics["gt_known_loc_err"])
    best = max(float(r["box_acc_50"]) for r in sweep)
    assert best == pytest.approx(metrics["box_acc"]["50"], abs=1e-3)


def test_blacklist_leaves_images_out_of_localization_only(
    trained: Path, small_data: Path, tmp_path: Path
) -> None:
    base = evaluate_run(eval_cfg(f"checkpoint={trained}", "maxboxacc=false"), tmp_path / "a")
    ids = sorted(p.stem for p in (small_data / "ILSVRC/Data/CLS-LOC/val").iterdir())
    listing = tmp_path / "blacklist.txt"
    index = int(ids[0].rsplit("_", 1)[1])  # a 1-based val index, as the ILSVRC2014 file has
    listing.write_text(f"{index}\n{ids[5]}\n\n")
    out = evaluate_run(
        eval_cfg(f"checkpoint={trained}", "maxboxacc=false", f"data.blacklist={listing}"),
        tmp_path / "b",
    )
    assert out["num_blacklisted"] == 2 and out["num_loc_images"] == 46
    assert out["cls_top1_err"] == base["cls_top1_err"]
    rows = read_rows(tmp_path / "b")
    assert [r["image_id"] for r in rows if r["loc_counted"] == "0"] == [ids[0], ids[5]]
    assert out["loc_top1_err"] == pytest.approx(recompute(rows, k=3)["loc_top1_err"])
    assert out["maxboxacc_v2"] is None and out["pxap"] is None
    assert not (tmp_path / "b" / "sweep.csv").exists()  # no sweep asked for


@pytest.mark.parametrize(
    "options",
    [
        ["box_rule=release"],
        ["normalize=minmax", "threshold=0.5", "all_boxes=true"],
        ["ten_crop=true", "data.resize_size=40"],
        ["localizer=backprop"],
    ],
    ids=["release", "minmax-all-boxes", "ten-crop", "backprop"],
)
def test_protocol_options_are_applied_and_recorded(
    trained: Path, tmp_path: Path, options: list[str]
) -> None:
    metrics = evaluate_run(eval_cfg(f"checkpoint={trained}", "maxboxacc=false", *options), tmp_path)
    for option in options:
        key, value = option.split("=")
        if not key.startswith("data."):
            assert str(metrics["protocol"][key]).lower() == value
    rows = read_rows(tmp_path)
    assert len(rows) == 48
    again = recompute(rows, k=3)
    for key, value in again.items():
        assert metrics[key] == pytest.approx(value, abs=1e-9), key
    for row in rows:
        for r in (1, 2, 3):
            (box,) = _boxes(row[f"pred{r}_box"])
            assert 0 <= box[0] <= box[2] < 32 and 0 <= box[1] <= box[3] < 32
    if "localizer=backprop" in options:
        assert metrics["paper_name"] == "Backprop on Tiny-GAP"


def test_train_split_without_boxes_gives_classification_only(trained: Path, tmp_path: Path) -> None:
    metrics = evaluate_run(eval_cfg(f"checkpoint={trained}", "split=train"), tmp_path)
    assert metrics["num_images"] == 192 and metrics["num_loc_images"] == 0
    assert metrics["num_without_boxes"] == 192
    assert metrics["cls_top1_err"] < 40
    assert metrics["loc_top1_err"] is None and metrics["maxboxacc_v2"] is None
    assert not (tmp_path / "sweep.csv").exists()
    assert "| Tiny-GAP | n/a | n/a | n/a | n/a |" in (tmp_path / "table.md").read_text()


def test_original_images_keep_their_coordinates(tmp_path: Path) -> None:
    """Val images of other sizes (the classic ILSVRC fixture): boxes come back in each image's
    own pixels, and a box covering the whole image matches a whole-image ground truth."""
    root = write_classic(tmp_path / "classic")
    metrics = evaluate_run(
        eval_cfg(
            "model=tiny_gap",
            f"data.root={root}",
            "data.image_size=32",
            "data.num_workers=0",
            "threshold=0",
        ),
        tmp_path / "eval",
    )
    rows = {r["image_id"]: r for r in read_rows(tmp_path / "eval")}
    # threshold 0 keeps every pixel with a non-negative normalised value
    sizes = {"ILSVRC2012_val_00000001": (50, 40), "ILSVRC2012_val_00000002": (60, 30)}
    for image_id, (w, h) in sizes.items():
        for r in (1, 2, 3):
            (box,) = _boxes(rows[image_id][f"pred{r}_box"])
            assert box[2] < w and box[3] < h
    # image 1's ground truth is the whole 50 x 40 image (file coordinates 1..50, 1..40)
    assert _boxes(rows["ILSVRC2012_val_00000001"]["gt_boxes"]) == [[0, 0, 49, 39]]
    assert rows["ILSVRC2012_val_00000002"]["gt_wnids"] == "n01440764 n01440764"
    assert metrics["num_images"] == 3


def test_ten_crop_windows_by_hand() -> None:
    assert ten_crop_windows(256, 224) == [
        (0, 0, False),
        (0, 32, False),
        (32, 0, False),
        (32, 32, False),
        (16, 16, False),
        (0, 0, True),
        (0, 32, True),
        (32, 0, True),
        (32, 32, True),
        (16, 16, True),
    ]


def test_ten_crop_averages_logits_and_maps_in_place() -> None:
    model = build_model({"arch": "tiny", "head_channels": 0}, num_classes=3).eval()
    loc = Localizer(model, "cam", "none", torch.device("cpu"))
    x = torch.randn(2, 3, 40, 40)
    labels = torch.tensor([0, 2])
    out = localize_ten_crop(loc, x, labels, topk=2, crop=32)
    windows = ten_crop_windows(40, 32)
    with torch.no_grad():
        logits = []
        for top, left, mirrored in windows:
            view = x[..., top : top + 32, left : left + 32]
            logits.append(model(view.flip(-1) if mirrored else view))
    torch.testing.assert_close(out.logits, torch.stack(logits).mean(0), rtol=1e-5, atol=1e-5)
    assert out.maps.shape == (2, 3, 40, 40)
    assert torch.equal(out.classes[:, -1], labels)

    def crop_maps(top: int, left: int, mirrored: bool) -> torch.Tensor:
        view = x[..., top : top + 32, left : left + 32]
        view = view.flip(-1) if mirrored else view
        loc.logits(view)
        maps = torch.nn.functional.interpolate(
            loc.raw_maps(view, out.classes), size=(32, 32), mode="bilinear", align_corners=False
        )
        return maps.flip(-1) if mirrored else maps  # back in the image's orientation

    # Pixel (0, 0) is seen by the top-left crop and its mirror only; pixel (20, 20) by all ten.
    corner = (crop_maps(0, 0, False)[..., 0, 0] + crop_maps(0, 0, True)[..., 0, 0]) / 2
    assert_close_at_scale(out.maps[..., 0, 0], corner, rtol=1e-5)
    centre = sum(crop_maps(t, left, m)[..., 20 - t, 20 - left] for t, left, m in windows) / 10
    assert_close_at_scale(out.maps[..., 20, 20], centre, rtol=1e-5)


@pytest.mark.parametrize("arch", ["alexnet", "vgg16", "googlenet"])
def test_backprop_localizes_the_original_networks(arch: str) -> None:
    model = build_model({"arch": arch, "modified": False, "width_mult": 0.125}, 4).eval()
    if arch != "googlenet":  # GoogLeNet ends in GAP: it has CAMs (the paper's 7x7 row) too
        with pytest.raises(CAMUnavailableError, match="Backprop"):
            Localizer(model, "cam", "none", torch.device("cpu"))
    loc = Localizer(model, "backprop", "none", torch.device("cpu"))
    x = torch.randn(2, 3, 64, 64)
    logits = loc.logits(x)
    classes = logits.topk(2, dim=1).indices
    maps = loc.raw_maps(x, classes)
    assert maps.shape == (2, 2, 64, 64) and (maps >= 0).all() and maps.amax() > 0
    # |d S_c / d x| maxed over colour, by hand for image 1's second class
    xi = x[1:2].clone().requires_grad_(True)
    model(xi)[0, classes[1, 1]].backward()
    assert_close_at_scale(maps[1, 1], xi.grad.abs().amax(dim=1)[0])


def test_bad_requests_are_clear_errors(trained: Path, small_data: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not neither"):
        evaluate_run(eval_cfg(), tmp_path)
    with pytest.raises(ConfigError, match="not both"):
        evaluate_run(eval_cfg(f"checkpoint={trained}", "model=tiny_gap"), tmp_path)
    with pytest.raises(MissingFileError, match=r"nothing\.pt does not exist"):
        evaluate_run(eval_cfg(f"checkpoint={tmp_path / 'nothing.pt'}"), tmp_path)
    with pytest.raises(MissingFileError, match=r"data\.blacklist"):
        evaluate_run(eval_cfg(f"checkpoint={trained}", "data.blacklist=none.txt"), tmp_path)
    bad = tmp_path / "bad.txt"
    bad.write_text("12\nnot an id\n")
    with pytest.raises(InputFileError, match=r"bad\.txt line 2"):
        evaluate_run(eval_cfg(f"checkpoint={trained}", f"data.blacklist={bad}"), tmp_path)
    root = write_classic(tmp_path / "other")  # other classes than the checkpoint's
    with pytest.raises(ConfigError, match="evaluate on data with the same classes"):
        evaluate_run(
            eval_cfg(f"checkpoint={trained}", f"data.root={root}", "data.layout=classic"),
            tmp_path,
        )
    with pytest.raises(CAMUnavailableError, match=r"no class activation map.*Grad-CAM.*vgg16_gap"):
        evaluate_run(
            eval_cfg("model=vgg16", "model.width_mult=0.125", f"data.root={small_data}",
                     "data=synthetic"),
            tmp_path,
        )  # fmt: skip


def test_backprop_baseline_end_to_end_on_the_original_alexnet(
    small_data: Path, tmp_path: Path
) -> None:
    """No checkpoint: a model config and a dataset; the paper's Backprop row."""
    metrics = evaluate_run(
        eval_cfg(
            "model=alexnet", "model.width_mult=0.125", "localizer=backprop", "data=synthetic",
            f"data.root={small_data}", "data.image_size=64", "data.resize_size=64",
        ),
        tmp_path,
    )  # fmt: skip
    assert metrics["paper_name"] == "Backprop on AlexNet" and metrics["checkpoint"] is None
    rows = read_rows(tmp_path)
    assert len(rows) == 48
    for key, value in recompute(rows, k=3).items():
        assert metrics[key] == pytest.approx(value, abs=1e-9), key
    assert 0 <= metrics["maxboxacc_v2"] <= 100


def test_cub_test_split_is_evaluated_in_its_own_pixels(tmp_path: Path) -> None:
    """CUB's test images (40 x 30 ... 64 x 48) with one box each from bounding_boxes.txt."""
    root = write_cub(tmp_path / "cub")
    metrics = evaluate_run(
        eval_cfg("model=tiny_gap", "data=cub", f"data.root={root}", "data.image_size=32",
                 "data.num_workers=0"),
        tmp_path / "eval",
    )  # fmt: skip
    rows = read_rows(tmp_path / "eval")
    assert metrics["num_images"] == 2 == metrics["num_loc_images"]
    # image 2 (50 x 40): box x 10, y 5, w 20, h 15 -> inclusive [10, 5, 29, 19]
    assert [r["gt_boxes"] for r in rows] == ["10 5 29 19", "60 40 63 47"]
    for row, (w, h) in zip(rows, [(50, 40), (64, 48)], strict=True):
        for r in (1, 2):
            (box,) = _boxes(row[f"pred{r}_box"])
            assert 0 <= box[0] <= box[2] < w and 0 <= box[1] <= box[3] < h
    for key, value in recompute(rows, k=2).items():
        assert metrics[key] == pytest.approx(value, abs=1e-9), key
