"""cam-visualize's figures (cam_repro/visualize.py, built by cam_repro/present/figures.py from
cam_repro/evaluate/views.py's views, drawn with cam_repro/present/draw.py)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from metrics_records import write_record
from PIL import Image
from tolerances import assert_close_at_scale

from cam_repro.apps import compose
from cam_repro.evaluate.config import box_rule, eval_config
from cam_repro.evaluate.loop import Evaluator, evaluate_run
from cam_repro.evaluate.outputs import read_sweep
from cam_repro.evaluate.views import look
from cam_repro.localize.overlay import GT_COLOR, PRED_COLOR
from cam_repro.present.draw import cam_figure, cam_panel, figure_png
from cam_repro.present.figures import _caption
from cam_repro.runtime.context import run_context
from cam_repro.runtime.errors import ConfigError, InputFileError
from cam_repro.visualize import (
    load_net,
    load_pictures,
    sweep_curves,
    visualize_run,
)
from cam_repro.visualize_config import visualize_config

DPI = 40


def png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def assert_drawn(pixels: np.ndarray) -> None:
    """Not blank: much of the figure is not background white, and it has colour in it."""
    gray = pixels.mean(axis=2)
    assert (gray < 245).mean() > 0.2, "mostly blank"
    assert pixels.std() > 30
    spread = pixels.max(axis=2).astype(int) - pixels.min(axis=2)
    assert (spread > 100).mean() > 0.05, "no saturated colour (no heatmap)"


def test_cam_panel_draws_the_box_red_and_the_truth_green() -> None:
    image = np.full((20, 20, 3), 128, np.uint8)
    cam = np.zeros((5, 5))
    cam[2, 2] = 1.0
    panel = cam_panel(image, cam, np.array([[2, 3, 10, 12]]), np.array([[0, 0, 19, 19]]), "t")
    assert tuple(panel.image[3, 5]) == PRED_COLOR  # top edge of the CAM's box
    assert tuple(panel.image[0, 7]) == GT_COLOR  # the ground truth's edge
    assert tuple(panel.image[10, 10]) != (128, 128, 128)  # the heatmap is over the image
    assert panel.image.shape == (20, 20, 3) and panel.title == "t"


def test_cam_figure_has_its_size_in_pixels() -> None:
    image = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    panels = [cam_panel(image, np.eye(4), None, None, str(i)) for i in range(5)]
    pixels = np.asarray(Image.open(io.BytesIO(figure_png(cam_figure(panels[:2], panels), DPI))))
    assert pixels.shape[:2] == (round(10 * 0.62 * DPI), 10 * DPI)


@pytest.fixture(scope="module")
def figures(trained: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("figures")
    visualize_run(
        {
            "checkpoint": str(trained), "compare": [str(trained)], "num_images": 3, "units": 3,
            "dpi": DPI, "runtime": {"device": "cpu"},
        },
        out,
    )  # fmt: skip
    return out


def test_one_figure_per_image_with_the_top5_row(figures: Path) -> None:
    per_image = sorted(figures.glob("cam_*.png"))
    assert len(per_image) == 3
    for path in per_image:
        pixels = png(path)
        assert pixels.shape[:2] == (round(10 * 0.62 * DPI), 10 * DPI)
        assert_drawn(pixels)


def test_compare_figure_puts_runs_side_by_side(figures: Path) -> None:
    pixels = png(figures / "compare.png")
    # 3 columns (image, run, run) of 2.2 in; 3 rows of 2.2 in plus 0.5 in of title
    assert pixels.shape[:2] == (round((3 * 2.2 + 0.5) * DPI), round(3 * 2.2 * DPI))
    assert_drawn(pixels)
    # the two runs are the same checkpoint: their columns are the same picture
    third = pixels.shape[1] // 3
    middle, right = pixels[:, third : 2 * third], pixels[:, 2 * third : 3 * third]
    assert np.abs(middle.astype(int) - right).mean() < 3


def test_units_figure_shows_the_largest_weight_units(figures: Path) -> None:
    (units,) = sorted(figures.glob("units_tiny_gap_*.png"))[:1]
    pixels = png(units)
    assert pixels.shape[1] == round((2 + 3) * 2.2 * DPI)  # image, class CAM, 3 units
    assert_drawn(pixels)


def test_any_image_file_works_without_ground_truth(trained: Path, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (45, 70, 3), dtype=np.uint8)).save(photo)
    written = visualize_run(
        {"checkpoint": str(trained), "images": [str(photo)], "units": 0, "dpi": DPI,
         "runtime": {"device": "cpu"}},
        tmp_path / "out",
    )  # fmt: skip
    assert [p.name for p in written] == ["cam_photo.png"]
    assert_drawn(png(written[0]))


def write_sweep(run: Path, peak: float, name: str) -> None:
    run.mkdir(parents=True)
    t = np.arange(100) / 100
    acc = 100 * np.exp(-(((t - peak) / 0.2) ** 2))
    lines = ["threshold,gt_known_loc_acc,box_acc_30,box_acc_50,box_acc_70"]
    for a, b in zip(t, acc, strict=True):
        lines.append(f"{a:.2f},{b:.3f},{b:.3f},{b * 0.9:.3f},{b * 0.5:.3f}")
    (run / "sweep.csv").write_text("\n".join(lines) + "\n")
    write_record(run, "eval", paper_name=name, data={"evidence": None})


def test_sweep_plot_groups_seeds_of_a_model(tmp_path: Path) -> None:
    write_sweep(tmp_path / "sweeps" / "a0", 0.3, "Tiny-GAP")
    write_sweep(tmp_path / "sweeps" / "a1", 0.35, "Tiny-GAP")
    write_sweep(tmp_path / "sweeps" / "b0", 0.15, "Tiny-GMP")
    curves = sweep_curves([str(tmp_path / "sweeps")])
    assert [c.label for c in curves] == ["Tiny-GAP (n=2)", "Tiny-GMP"]
    assert curves[0].gt_known.shape == (2, 100)
    assert sorted(curves[0].box_acc) == ["30", "50", "70"]
    written = visualize_run({"sweeps": [str(tmp_path / "sweeps")], "dpi": DPI}, tmp_path / "out")
    pixels = png(written[0])
    assert pixels.shape[:2] == (round(4.2 * DPI), 11 * DPI)
    assert (pixels.mean(axis=2) < 200).mean() > 0.01  # axes, lines and text are drawn


def test_bad_inputs_are_named(trained: Path, tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"images: .*nope\.jpg does not exist"):
        visualize_run({"checkpoint": str(trained), "images": [str(tmp_path / "nope.jpg")],
                       "runtime": {"device": "cpu"}}, tmp_path / "a")  # fmt: skip
    with pytest.raises(ConfigError, match="unit_classes: 'zebra' is not a class"):
        spec = {"checkpoint": str(trained), "unit_classes": ["zebra"], "num_images": 1,
                "per_image": False, "runtime": {"device": "cpu"}}  # fmt: skip
        visualize_run(spec, tmp_path / "b")
    with pytest.raises(ConfigError, match="nothing to draw"):
        visualize_run({}, tmp_path / "c")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "sweep.csv").write_text("threshold,other\n0.1,3\n")
    with pytest.raises(InputFileError, match=r"sweep\.csv: not a cam-eval sweep\.csv"):
        read_sweep(bad / "sweep.csv")


def test_many_pictures_go_through_in_batches_with_the_same_answers(trained: Path) -> None:
    spec = visualize_config({"checkpoint": str(trained), "num_images": 20,
                             "runtime": {"device": "cpu"}})  # fmt: skip
    rule = box_rule(spec)
    with run_context(spec.runtime) as run:
        net = load_net(str(trained), spec.data, run)
        pictures = load_pictures(spec, net)
        assert len(pictures) == 20 and all(p.label is not None for p in pictures)
        together = look(net, pictures, spec.topk, rule, run.device)  # 16 + 4
        alone = look(net, pictures[17:18], spec.topk, rule, run.device)[0]
    assert len(together) == 20
    assert together[17].classes == alone.classes
    assert_close_at_scale(together[17].maps, alone.maps)
    np.testing.assert_array_equal(together[17].boxes, alone.boxes)
    # the true class's IoU is known, the others' are not
    for seen, picture in zip(together, pictures, strict=True):
        assert [iou is not None for iou in seen.ious] == [c == picture.label for c in seen.classes]


def test_a_caption_shows_cam_evals_iou(trained: Path, tmp_path: Path) -> None:
    """For the same checkpoint and images, the IoU cam-visualize puts in a caption is
    predictions.csv's (to the caption's precision) and cam-eval's float (to 1e-9): both score in
    the original image (localize.scoring). Evaluated at 48 px, the 32 px originals and the frame
    differ, so an IoU taken in the frame would not agree."""
    over = ["data.image_size=48", "data.resize_size=48"]
    cfg = compose("eval", [f"checkpoint={trained}", *over, "runtime.device=cpu",
                           "runtime.progress=false", "maxboxacc=false"])  # fmt: skip
    evaluate_run(cfg, tmp_path / "eval")
    with (tmp_path / "eval" / "predictions.csv").open(newline="") as f:
        csv_rows = {row["image_id"]: row for row in csv.DictReader(f)}
    spec = visualize_config({"checkpoint": str(trained), "num_images": 20,
                             "data": {"image_size": 48, "resize_size": 48},
                             "runtime": {"device": "cpu"}})  # fmt: skip
    with run_context(spec.runtime) as run:
        net = load_net(str(trained), spec.data, run)
        pictures = load_pictures(spec, net)
        seen = look(net, pictures, spec.topk, box_rule(spec), run.device)
        rows, _ = Evaluator(eval_config(cfg), run.env).run()
    names = net.class_names
    compared = 0
    for picture, s, row in zip(pictures, seen, rows, strict=False):
        assert picture.size != picture.frame.shape[:2]  # the frame is not the original
        line = csv_rows[picture.name]
        assert s.classes == row.classes
        for j, iou in enumerate(s.ious):
            if iou is None:
                continue
            caption = _caption(names, s, j)
            assert caption.endswith(f"IoU {float(line[f'pred{j + 1}_iou']):.2f}")
            assert abs(iou - row.ious[j]) < 1e-9
            if j == 0:  # the top-1 class is the true one: GT-known's map
                assert f"IoU {float(line['gt_known_iou']):.2f}" in caption
                assert abs(iou - row.gt_known_iou) < 1e-9
            compared += 1
    assert compared >= 5
