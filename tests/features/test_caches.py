"""Issue 33, class 1: every cache is keyed by everything its value depends on, and every run says
which caches it reused or made (cam_repro/features/cache.py, features/run.py, reproduce.py).

Each test builds the bad situation for real on a tiny image folder (2 classes, 4 train and 2 val
images each, PPM files whose byte size depends on the image size alone), runs cam-features with
a shared cache folder, and checks that the run recomputed what changed, said so, and reported
what a fresh run (an empty cache folder) reports.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from metrics_records import body, write_record
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from cam_repro.apps import compose
from cam_repro.features.cache import cache_path, changed_fields, tree_stamp
from cam_repro.features.outputs import read_features_metrics
from cam_repro.features.run import features_run
from cam_repro.models import build_model
from cam_repro.reproduce.config import reproduce_config
from cam_repro.reproduce.jobs import TRAINED_ON, _finished, _record_data
from cam_repro.reproduce.plan import Job
from cam_repro.reproduce.provenance import write_command
from cam_repro.runtime.errors import ConfigError, InputFileError
from cam_repro.runtime.metrics_file import as_json
from cam_repro.visualize import visualize_run

RUN = ["runtime.device=cpu", "runtime.progress=false", "runtime.threads=1",
       "data.num_workers=0"]  # fmt: skip
SIZE = (40, 32)  # (width, height) of every image
TRAIN = {"a": ["t0", "t1", "t2", "t3"], "b": ["t4", "t5", "t6", "t7"]}
VAL = {"a": ["v0", "v1"], "b": ["v2", "v3"]}
METRICS = ("accuracy", "mean_class_accuracy", "crop_box_iou50", "localization", "num_train",
           "num_test", "num_skipped", "feature_dim", "undefined")  # fmt: skip


@pytest.fixture(autouse=True)
def _keep_threads():
    """runtime.threads=1 sets torch's threads for the whole process: give them back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def write_images(root: Path, seed: int) -> None:
    """Every image of the folder, its pixels drawn from `seed` (class a brighter on the left,
    b on the right); PPM: the same byte size whatever the pixels."""
    rng = np.random.default_rng(seed)
    for split, classes in (("train", TRAIN), ("val", VAL)):
        for cls, names in classes.items():
            for name in names:
                pixels = rng.integers(0, 128, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
                half = slice(0, SIZE[0] // 2) if cls == "a" else slice(SIZE[0] // 2, None)
                pixels[:, half] += 100
                path = root / split / cls / f"{name}.ppm"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(path)


def write_boxes(path: Path, shift: int, side: tuple[int, int] = (20, 18)) -> Path:
    """A boxes CSV with one box per image (0-based inclusive) of `side` (width, height) pixels
    beyond its first, moved right by `shift` pixels (kept inside the image)."""
    rows = ["image,x0,y0,x1,y1"]
    for i, (cls, name) in enumerate(
        (c, n) for classes in (TRAIN, VAL) for c, names in classes.items() for n in names
    ):
        x0 = min(2 + i % 5 + shift, SIZE[0] - 1 - side[0])
        y0 = min(3 + i % 4, SIZE[1] - 1 - side[1])
        rows.append(f"{cls}/{name}.ppm,{x0},{y0},{x0 + side[0]},{y0 + side[1]}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_images(root, seed=0)
    write_boxes(root / "boxes.csv", shift=0)
    return root


def features_cfg(root: Path, *overrides: str) -> DictConfig:
    return compose("features", [*RUN, "data=folder", f"data.root={root}",
                                "data.image_size=32", "data.boxes=boxes.csv",
                                "model=tiny_gap", "model.width_mult=0.25",
                                *overrides])  # fmt: skip


def run(root: Path, out: Path, *overrides: str) -> dict:
    return features_run(features_cfg(root, *overrides), out)


def reported(out: Path) -> tuple[dict, str]:
    """What a run reports: its metrics (but timings and caches) and its predictions.csv."""
    metrics = json.loads((out / "metrics.json").read_text())
    return {k: metrics[k] for k in METRICS}, (out / "predictions.csv").read_text()


def uses(metrics: dict) -> list[tuple[str, str, str, str | None]]:
    return [(c["split"], c["part"], c["status"], c["reason"]) for c in metrics["caches"]]


def features_of(cache: Path, split: str, part: str) -> np.ndarray:
    with np.load(cache_path(cache, split, part)) as z:
        return z["features"].copy()


# --- cam-features: each change that determines the features recomputes them --------------------


def test_changed_boxes_recompute_the_crops_and_report_a_fresh_runs_numbers(
    folder: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first = run(folder, tmp_path / "1", "crop=gt", f"cache_dir={cache}")
    assert uses(first) == [("train", "gt", "made", "absent"), ("val", "gt", "made", "absent")]
    before = features_of(cache, "val", "gt")
    write_boxes(folder / "boxes.csv", shift=8)  # the same file, other boxes
    second = run(folder, tmp_path / "2", "crop=gt", f"cache_dir={cache}")
    assert uses(second) == [("train", "gt", "made", "boxes changed"),
                            ("val", "gt", "made", "boxes changed")]  # fmt: skip
    log = (tmp_path / "2" / "features.log").read_text()
    assert f"{cache_path(cache, 'val', 'gt')}: boxes changed; recomputing" in log
    assert not np.array_equal(features_of(cache, "val", "gt"), before)  # the old ones: wrong
    fresh = run(folder, tmp_path / "3", "crop=gt", f"cache_dir={tmp_path / 'empty'}")
    assert reported(tmp_path / "2") == reported(tmp_path / "3")
    assert second["accuracy"] == fresh["accuracy"]


def test_boxes_change_the_cam_crops_ious_not_the_full_images_features(
    folder: Path, tmp_path: Path
) -> None:
    """crop=full+cam: the full image's features do not depend on the boxes (reused); the CAM
    crop's IoUs with them do (recomputed), and with them crop_box_iou50."""
    cache = tmp_path / "cache"
    run(folder, tmp_path / "1", "crop=full+cam", f"cache_dir={cache}")
    with np.load(cache_path(cache, "val", "cam")) as z:
        ious_before = z["box_ious"].copy()
    write_boxes(folder / "boxes.csv", shift=0, side=(37, 29))  # nearly the whole image
    second = run(folder, tmp_path / "2", "crop=full+cam", f"cache_dir={cache}")
    assert [(s, p, st) for s, p, st, _ in uses(second)] == [
        ("train", "full", "reused"), ("train", "cam", "made"),
        ("val", "full", "reused"), ("val", "cam", "made"),
    ]  # fmt: skip
    with np.load(cache_path(cache, "val", "cam")) as z:
        assert not np.array_equal(z["box_ious"], ious_before)
    run(folder, tmp_path / "3", "crop=full+cam", f"cache_dir={tmp_path / 'empty'}")
    assert reported(tmp_path / "2") == reported(tmp_path / "3")


def test_another_boxes_file_recomputes(folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    run(folder, tmp_path / "1", "crop=gt", f"cache_dir={cache}")
    write_boxes(folder / "other.csv", shift=6)
    second = run(folder, tmp_path / "2", "crop=gt", "data.boxes=other.csv", f"cache_dir={cache}")
    assert {reason for *_, reason in uses(second)} == {"boxes changed"}
    run(folder, tmp_path / "3", "crop=gt", "data.boxes=other.csv",
        f"cache_dir={tmp_path / 'empty'}")  # fmt: skip
    assert reported(tmp_path / "2") == reported(tmp_path / "3")


def test_images_regenerated_in_place_under_the_same_names_recompute(
    folder: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first = run(folder, tmp_path / "1", f"cache_dir={cache}")
    image = folder / "val" / "a" / "v0.ppm"
    size, before = image.stat().st_size, features_of(cache, "val", "full")
    write_images(folder, seed=1)  # other pixels, same names, same byte sizes
    assert image.stat().st_size == size
    second = run(folder, tmp_path / "2", f"cache_dir={cache}")
    assert uses(second) == [("train", "full", "made", "images changed"),
                            ("val", "full", "made", "images changed")]  # fmt: skip
    assert not np.allclose(features_of(cache, "val", "full"), before)
    run(folder, tmp_path / "3", f"cache_dir={tmp_path / 'empty'}")
    assert reported(tmp_path / "2") == reported(tmp_path / "3")
    assert first["num_test"] == second["num_test"] == 4


def test_a_weights_file_rewritten_with_its_old_size_and_time_recomputes(
    folder: Path, tmp_path: Path, model_cfg
) -> None:
    """The weights are known by their content: a file rewritten in place, its size the same and
    its modification time set back, is another network."""
    weights = tmp_path / "weights.pt"
    net = build_model(model_cfg("tiny_gap", "model.width_mult=0.25"), 2)

    def save(scale: float) -> None:  # the same tensors times `scale`: the same bytes' count
        torch.save({k: v * scale if v.is_floating_point() else v.clone()
                    for k, v in net.state_dict().items()}, weights)  # fmt: skip

    save(1.0)
    stat = weights.stat()
    given = [f"model.weights_path={weights}", "model_classes=2", f"cache_dir={tmp_path / 'c'}"]
    run(folder, tmp_path / "1", *given)
    save(3.0)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert weights.stat().st_size == stat.st_size
    # cam-visualize of the first run would draw its classifier's CAMs on the new weights' maps
    with pytest.raises(InputFileError, match="its classifier was fitted on features of weights"):
        visualize_run({"features_run": str(tmp_path / "1"), "runtime": {"device": "cpu"}},
                      tmp_path / "figures")  # fmt: skip
    second = run(folder, tmp_path / "2", *given)
    assert {reason for *_, reason in uses(second)} == {"weights changed"}
    fresh = [*given[:2], f"cache_dir={tmp_path / 'empty'}"]
    run(folder, tmp_path / "3", *fresh)
    assert reported(tmp_path / "2") == reported(tmp_path / "3")


def test_unchanged_inputs_reuse_and_say_so(folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    run(folder, tmp_path / "1", "crop=gt", f"cache_dir={cache}")
    again = run(folder, tmp_path / "2", "crop=gt", f"cache_dir={cache}")
    assert uses(again) == [("train", "gt", "reused", None), ("val", "gt", "reused", None)]
    assert again["caches"][1]["path"] == str(cache_path(cache, "val", "gt"))
    log = (tmp_path / "2" / "features.log").read_text()
    assert f"val gt features: reusing {cache_path(cache, 'val', 'gt')}" in log
    assert "caches: 2 reused, 0 made" in log
    assert reported(tmp_path / "1") == reported(tmp_path / "2")


def test_a_reused_cache_still_counts_the_images_it_could_not_read(
    folder: Path, tmp_path: Path
) -> None:
    (folder / "train" / "b" / "t7.ppm").write_bytes(b"not an image")
    given = ["data.bad_images=skip", f"cache_dir={tmp_path / 'cache'}"]
    first = run(folder, tmp_path / "1", *given)
    again = run(folder, tmp_path / "2", *given)
    assert {status for _, _, status, _ in uses(again)} == {"reused"}
    assert first["num_skipped"] == again["num_skipped"] == 1
    assert first["num_train"] == again["num_train"] == 7


def test_overwrite_rebuilds_the_runs_own_caches_and_keeps_a_shared_folder(
    folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run(folder, out)
    again = run(folder, out, "overwrite=true")
    assert uses(again) == [("train", "full", "made", "removed by overwrite=true"),
                           ("val", "full", "made", "removed by overwrite=true")]  # fmt: skip
    assert "overwrite=true: removed the run's own caches" in (out / "features.log").read_text()
    shared = tmp_path / "shared"
    run(folder, tmp_path / "s", f"cache_dir={shared}")
    kept = run(folder, tmp_path / "s", f"cache_dir={shared}", "overwrite=true")
    assert [status for _, _, status, _ in uses(kept)] == ["reused", "reused"]
    assert reported(out) == reported(tmp_path / "s")


def test_changed_fields_name_each_difference_and_an_old_format_alone() -> None:
    old = {"format": "2/x", "weights": 1, "images": "a", "boxes": None}
    assert changed_fields(old, {**old, "images": "b", "boxes": "c"}) == ["images", "boxes"]
    assert changed_fields({"format": 1, "checkpoint": {}}, old) == ["format"]


# --- degenerate metrics: null with a reason, never 0 or 100 -------------------------------------


def test_no_readable_test_image_makes_the_rates_undefined(folder: Path, tmp_path: Path) -> None:
    for path in (folder / "val").rglob("*.ppm"):  # the header intact, the pixels cut short
        path.write_bytes(path.read_bytes()[:100])
    metrics = run(folder, tmp_path / "run", "data.bad_images=skip", "crop=full+cam")
    why = "no val image could be read (4 of 4 unreadable)"
    assert metrics["num_test"] == 0
    assert metrics["accuracy"] is metrics["mean_class_accuracy"] is None
    assert metrics["crop_box_iou50"] is None
    loc = metrics["localization"]
    assert loc["gt_known_loc_acc"] is loc["top1_loc_acc"] is loc["pointing_game"] is None
    assert metrics["undefined"] == {
        "accuracy": why, "mean_class_accuracy": why, "crop_box_iou50": why,
        "localization.gt_known_loc_acc": "no val image with a ground-truth box of its class "
        "could be read",
        "localization.top1_loc_acc": "no val image with a ground-truth box of its class could "
        "be read",
        "localization.pointing_game": "no val image with a ground-truth box of its class could "
        "be read",
    }  # fmt: skip
    assert as_json(read_features_metrics(tmp_path / "run" / "metrics.json")) == metrics


def test_a_class_without_a_test_image_has_no_mean_class_accuracy(
    folder: Path, tmp_path: Path
) -> None:
    for path in (folder / "val" / "b").glob("*.ppm"):
        path.unlink()
    (folder / "val" / "b").rmdir()
    metrics = run(folder, tmp_path / "run", "data.boxes=null")
    assert metrics["num_test"] == 2
    assert 0 <= metrics["accuracy"] <= 100  # over the 2 images there are
    assert metrics["mean_class_accuracy"] is None
    assert metrics["undefined"] == {
        "mean_class_accuracy": "1 of 2 classes have no val image read (b)",
        **{f"localization.{k}": "no val image has a ground-truth box of its class"
           for k in ("gt_known_loc_acc", "top1_loc_acc", "pointing_game")},
    }  # fmt: skip


def test_the_reader_refuses_a_null_metric_without_a_reason(tmp_path: Path) -> None:
    base = body("features", caches=[])
    write_record(tmp_path, "features", base | {"accuracy": None, "undefined": {}})
    with pytest.raises(InputFileError, match="lacks accuracy"):
        read_features_metrics(tmp_path / "metrics.json")
    write_record(tmp_path, "features", base | {"accuracy": 50.0, "undefined": {"accuracy": "x"}})
    with pytest.raises(InputFileError, match=r"accuracy is 50\.0 but listed as undefined"):
        read_features_metrics(tmp_path / "metrics.json")
    kept = {"path": "/c", "split": "val", "part": "full", "status": "kept", "reason": None}
    write_record(tmp_path, "features", base | {"caches": [kept]})
    with pytest.raises(InputFileError, match="caches is not a list"):
        read_features_metrics(tmp_path / "metrics.json")


# --- cam-reproduce: a finished training is reused only on the same data -------------------------


def fake_finished_training(work: Path, data: Path, job: Job, settings: dict) -> None:
    """A training folder as cam-train leaves a finished run (what _finished reads)."""
    cfg = compose("train", [f"model={job.model}", *(f"{k}={v}" for k, v in settings.items())])
    train_dir = job.train_dir(work)
    (train_dir / "checkpoints").mkdir(parents=True)
    (train_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    write_record(train_dir, "train")  # status: finished
    (train_dir / "checkpoints" / "last.pt").write_bytes(b"weights")


def test_reproduce_reuses_a_training_only_on_the_data_it_was_trained_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    work, data = tmp_path / "work", tmp_path / "work" / "data" / "parts"
    write_images(data, seed=0)
    job = Job("parts", "tiny_gap", 0)
    settings = {"seed": 0, "data.root": str(data), "trainer.epochs": 1,
                "model.width_mult": 0.5, "runtime.amp": "none", "runtime.threads": 1}  # fmt: skip
    fake_finished_training(work, data, job, settings)
    # made before the data were recorded: not reused blindly
    with pytest.raises(ConfigError, match=rf"on other data .* \(it has no {TRAINED_ON}\)"):
        _finished(job, work, settings, tree_stamp(data))
    _record_data(job, work, data, tree_stamp(data))
    assert _finished(job, work, settings, tree_stamp(data))
    metrics = job.train_dir(work) / "metrics.json"
    finished = metrics.read_text()
    metrics.write_text(json.dumps({"status": "finished"}))  # an older cam-repro's (schema 1)
    with caplog.at_level(logging.WARNING, "cam_repro.reproduce.jobs"):
        assert not _finished(job, work, settings, tree_stamp(data))  # retrained, not read
    assert f"{metrics}: written by an older cam-repro (schema 1); re-run cam-train: not " in (
        caplog.text)  # fmt: skip
    metrics.write_text(finished)
    write_images(data, seed=1)  # the dataset regenerated in place, the same names
    with pytest.raises(ConfigError, match=r"its files changed since.*reuse=false") as err:
        _finished(job, work, settings, tree_stamp(data))
    assert "\n" not in str(err.value)


def test_reproduce_names_every_reused_training(tmp_path: Path) -> None:
    spec = reproduce_config({})
    write_command(tmp_path, spec, {"total": 1.0}, "1 trained, 2 reused",
                  ["parts/tiny_gap/seed0", "parts/tiny_gmp/seed0"])  # fmt: skip
    text = (tmp_path / "command.txt").read_text()
    assert "runs: 1 trained, 2 reused" in text
    assert (
        "reused trainings (finished before, same settings and data): parts/tiny_gap/seed0, "
        "parts/tiny_gmp/seed0\n"
    ) in text


def test_reproduce_regenerates_data_written_by_another_generator(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """cam-reproduce reuses a synthetic set only when both its settings and the generator's
    format are this run's: the same settings draw other images after the generator changed."""
    from cam_repro.reproduce.datasets import write_data
    from cam_repro.reproduce.plan import data_settings

    spec = reproduce_config({"synth": {"num_classes": 2, "train_per_class": 2, "val_per_class": 1}})
    settings = data_settings(spec.synth, "parts")
    caplog.set_level("INFO", logger="cam_repro.reproduce")
    root = write_data("parts", tmp_path / "data" / "parts", settings, spec.reuse)
    assert "made: absent" in caplog.text
    caplog.clear()
    write_data("parts", tmp_path / "data" / "parts", settings, spec.reuse)
    assert "data parts: reusing" in caplog.text
    info = json.loads((root / "synth.json").read_text())
    (root / "synth.json").write_text(json.dumps({**info, "format_version": 0}))
    caplog.clear()
    write_data("parts", tmp_path / "data" / "parts", settings, spec.reuse)
    assert "reusing" not in caplog.text
    assert "made: written by another version of the generator" in caplog.text
