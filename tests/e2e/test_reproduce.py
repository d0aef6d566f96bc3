"""cam-reproduce: the plan, and a CI-sized main job end to end (tiny data, one epoch)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cam_repro.features.cache import tree_stamp
from cam_repro.reproduce.config import reproduce_config
from cam_repro.reproduce.jobs import _finished
from cam_repro.reproduce.plan import Job, feature_plan, plan
from cam_repro.runtime.errors import ConfigError


def test_plan_trains_every_model_and_seed_and_the_ablation_on_the_first_design() -> None:
    spec = reproduce_config(
        {
            "designs": ["parts", "uniform"],
            "seeds": [0, 1],
            "ablation": ["tiny_gap_8x8", "tiny_gap"],
        }
    )
    tags = [job.tag for job in plan(spec)]
    assert len(tags) == 2 * 2 * 2 + 2  # tiny_gap on parts is already planned: not twice
    assert "parts/tiny_gap_8x8/seed1" in tags and "uniform/tiny_gap_8x8/seed0" not in tags
    assert tags[:2] == ["parts/tiny_gap/seed0", "parts/tiny_gap/seed1"]


@pytest.mark.parametrize(
    ("override", "message"),
    [({"designs": ["stripes"]}, "designs must be one of parts, uniform"),
     ({"seeds": []}, "at least one"), ({"runtime": {"amp": "fp8"}}, r"runtime\.amp must be one")],
)  # fmt: skip
def test_bad_settings_fail_at_start(override: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        reproduce_config(override)


TINY = [
    "synth.num_classes=3", "synth.train_per_class=16", "synth.val_per_class=4", "epochs=1",
    "figure_images=2",
]  # fmt: skip


@pytest.mark.slow
def test_ci_sized_main_job_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Generate, train tiny_gap and tiny_gmp alike, evaluate, draw, tabulate; then again,
    reusing the finished data and runs."""
    cmd = [sys.executable, "-m", "cam_repro_cli.reproduce", *TINY, "out=out"]
    first = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    out = tmp_path / "out"
    with (out / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["variant"], r["pool"], r["seed"], r["evidence"], r["map_size"]) for r in rows] == [
        ("tiny_gap", "gap", "0", "parts", "16x16"), ("tiny_gmp", "gmp", "0", "parts", "16x16")
    ]  # fmt: skip
    for r in rows:
        assert 0 <= float(r["loc_top1_err"]) <= 100
        assert float(r["loc_top1_err"]) >= float(r["gt_known_loc_err"]) - 1e-9
    table2 = (out / "table2.md").read_text()
    assert "| Tiny-GAP |" in table2 and "| Tiny-GMP |" in table2 and "paper top-1" not in table2
    assert "| Tiny-GAP - Tiny-GMP | 0 |" in (out / "comparisons.md").read_text()
    figures = out / "figures" / "parts"
    compare = np.asarray(Image.open(figures / "compare.png").convert("L"))
    assert compare.shape == (round((2 * 2.2 + 0.5) * 100), round(3 * 2.2 * 100))
    assert compare.std() > 30
    assert len(list(figures.glob("cam_*.png"))) == 2
    assert (figures / "sweep.png").stat().st_size > 10_000
    assert "cam-reproduce" in (out / "command.txt").read_text()
    assert "runs: 2 trained, 0 reused" in (out / "command.txt").read_text()
    assert sorted(p.name for p in (out / "runs" / "eval" / "parts").iterdir()) == [
        "tiny_gap", "tiny_gmp"
    ]  # fmt: skip

    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "data parts: reusing" in again.stdout
    assert "runs: 0 trained, 2 reused" in (out / "command.txt").read_text()
    log = (out / "runs" / "logs" / "parts-tiny_gmp-seed0.log").read_text().splitlines()
    # trained once (the second time only re-evaluated), each stage's command line recorded
    assert [line.split()[1] for line in log] == ["cam-train", "cam-eval", "cam-eval"]
    assert "model=tiny_gmp" in log[0] and "trainer.epochs=1" in log[0]
    with (out / "summary.csv").open() as f:
        assert list(csv.DictReader(f)) == rows  # the same runs, re-evaluated: the same numbers

    # other settings over the same runs: refused, not mixed
    other = subprocess.run([*cmd, "epochs=2"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=600)  # fmt: skip
    assert other.returncode == 1 and "Traceback" not in other.stderr
    assert "holds a training of other settings" in other.stderr and "reuse=false" in other.stderr

    # an interrupted training (status "running") is not reused: it is resumed and finished
    train_dir = out / "runs" / "train" / "parts" / "tiny_gap" / "seed0"
    metrics = json.loads((train_dir / "metrics.json").read_text())
    (train_dir / "metrics.json").write_text(json.dumps({**metrics, "status": "running"}))
    want = {"seed": 0, "trainer.epochs": 1, "runtime.amp": "bf16",
            "runtime.threads": max(1, (os.cpu_count() or 1) // 2),
            "data.root": str(Path("out/runs/data/parts"))}  # fmt: skip
    monkeypatch.chdir(tmp_path)
    stamp = tree_stamp(out / "runs" / "data" / "parts")
    assert not _finished(Job("parts", "tiny_gap", 0), out / "runs", want, stamp)
    assert _finished(Job("parts", "tiny_gmp", 0), out / "runs", want, stamp)


def test_an_unknown_model_fails_before_any_work(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "cam_repro_cli.reproduce", *TINY, "out=out",
           "models=[tiny_gap,no_such_model]"]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "error: models/ablation: no model 'no_such_model'; one of alexnet," in result.stderr
    assert not (tmp_path / "out" / "runs").exists()


def test_the_feature_plan_covers_transfer_and_fine_grained_for_every_model_and_seed() -> None:
    spec = reproduce_config({"seeds": [0, 1], "features": True})
    jobs = feature_plan(spec)
    assert len(jobs) == 2 * 2 * (3 + 4)  # models x seeds x (transfer weights + fine crops)
    tags = {j.tag for j in jobs}
    assert "transfer/tiny_gmp/seed1/random-full" in tags
    assert "fine/tiny_gap/seed0/trained-gt" in tags
    # the ceiling of the transfer study is trained (and evaluated) with the others
    assert [j.tag for j in plan(spec) if j.design == "transfer"] == [
        "transfer/tiny_gap/seed0", "transfer/tiny_gap/seed1",
        "transfer/tiny_gmp/seed0", "transfer/tiny_gmp/seed1",
    ]  # fmt: skip
    assert not any(j.design == "transfer" for j in plan(reproduce_config({})))


def test_the_discovery_plan_trains_text_and_vqa_and_fits_the_text_svm() -> None:
    spec = reproduce_config({"seeds": [0, 1], "discovery": True})
    extra = [j for j in plan(spec) if j.design in ("text", "vqa")]
    assert [j.tag for j in extra] == [
        "text/tiny_gap/seed0", "text/tiny_gap/seed1", "vqa/tiny_gap/seed0", "vqa/tiny_gap/seed1",
    ]  # fmt: skip
    assert extra[2].task == ["task=vqa", "data=synthetic_vqa"] and extra[0].task == []
    # without features=true, only the text detector's cam-features runs (the first model's)
    assert [j.tag for j in feature_plan(spec)] == [
        "text/tiny_gap/seed0/trained-full", "text/tiny_gap/seed1/trained-full",
    ]  # fmt: skip
    assert not feature_plan(reproduce_config({}))


@pytest.mark.slow
def test_features_stages_end_to_end(tmp_path: Path) -> None:
    """features=true: the transfer and fine-grained studies run and reach the tables and figures."""
    cmd = [sys.executable, "-m", "cam_repro_cli.reproduce", *TINY, "out=out", "features=true",
           "models=[tiny_gap]"]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    out = tmp_path / "out"
    with (out / "features_summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    got = sorted((r["dataset"], r["weights"], r["crop"]) for r in rows)
    assert got == sorted(
        [("synthetic (parts, family 1)", w, "full") for w in ("checkpoint", "checkpoint", "random")]
        + [("synthetic (fine)", "checkpoint", c) for c in ("full", "cam", "gt", "full+cam")]
    )
    assert all(0 <= float(r["accuracy"]) <= 100 for r in rows)
    fine = (out / "table_finegrained.md").read_text()
    assert "## synthetic (fine)" in fine
    assert "| Tiny-GAP gap (trained on synthetic (parts)) |" in fine
    generic = (out / "table_generic.md").read_text()
    assert "Tiny-GAP gap (trained on this data)" in generic  # the ceiling
    assert "Tiny-GAP gap (random weights)" in generic  # the floor
    for dataset in ("transfer", "fine"):
        figure = out / "figures" / "features" / dataset / "linear_cams.png"
        assert np.asarray(Image.open(figure).convert("L")).std() > 20
    assert "features" in (out / "command.txt").read_text().split("seconds:")[1]


@pytest.mark.slow
def test_discovery_end_to_end(tmp_path: Path) -> None:
    """discovery=true: the text and VQA sets, their trainings, the text SVM, and their report and
    figures in OUT/discovery (tiny sizes: the pipeline, not the numbers)."""
    cmd = [sys.executable, "-m", "cam_repro_cli.reproduce", *TINY, "out=out", "discovery=true",
           "models=[tiny_gap]"]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    out, work = tmp_path / "out", tmp_path / "out" / "runs"
    vqa = json.loads((work / "eval/vqa/tiny_gap/seed0/metrics.json").read_text())
    assert vqa["kind"] == "vqa" and 0 < vqa["num_images"] <= 3 * 4 // 3  # some answers unseen
    text = json.loads((work / "features/text/tiny_gap/seed0/trained-full/metrics.json").read_text())
    assert text["num_classes"] == 2 and text["data"]["task"] == "text"
    trained = json.loads((work / "eval/text/tiny_gap/seed0/metrics.json").read_text())
    assert trained["num_loc_images"] == 3 * 4 // 2  # the text images of val
    report = (out / "discovery" / "discovery.md").read_text()
    assert "Text detector" in report and "VQA" in report
    assert not (out / "discovery" / "table2.md").exists()
    assert "synthetic text" not in (out / "table2.md").read_text()  # not among Table 2's rows
    figures = out / "discovery" / "figures"
    for png in ("text-svm/text_cams.png", "vqa-trained/vqa_panels.png"):
        assert np.asarray(Image.open(figures / png).convert("L")).std() > 20


def test_study_seeds_run_the_ablation_and_the_studies_on_fewer_seeds() -> None:
    spec = reproduce_config(
        {"seeds": [0, 1, 2, 3, 4], "study_seeds": [0, 1, 2], "ablation": ["tiny_gap_8x8"],
         "features": True, "discovery": True}
    )  # fmt: skip
    tags = [j.tag for j in plan(spec)]
    assert "parts/tiny_gmp/seed4" in tags and "parts/tiny_gap_8x8/seed2" in tags
    assert "parts/tiny_gap_8x8/seed3" not in tags and "transfer/tiny_gap/seed3" not in tags
    assert "text/tiny_gap/seed2" in tags and "vqa/tiny_gap/seed3" not in tags
    assert {j.seed for j in feature_plan(spec)} == {0, 1, 2}
    with pytest.raises(ConfigError, match="study_seeds must not repeat"):
        reproduce_config({"study_seeds": [0, 0]})


def test_the_schema_loads_without_torch() -> None:
    """`apps.register("reproduce")` imports only the schema's module: a light start."""
    code = "import sys, cam_repro.reproduce.config; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)  # fmt: skip
    assert result.stdout.strip() == "False"
