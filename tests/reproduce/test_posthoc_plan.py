"""cam-reproduce's post-hoc maps stage: its plan, its two sets and its settings (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cam_repro.apps import compose
from cam_repro.reproduce.config import SynthSize, reproduce_config
from cam_repro.reproduce.plan import (
    data_settings,
    plan,
    planned_datasets,
    posthoc_name,
    posthoc_plan,
    posthoc_sets,
)
from cam_repro.runtime.errors import ConfigError


def _spec(*overrides: str):
    return reproduce_config(compose("reproduce", ["seeds=[0,1]", *overrides]))


def test_the_stage_localizes_the_main_networks_with_cam_and_each_method_costliest_first() -> None:
    spec = _spec("designs=[parts,uniform]", "posthoc=[gradcam,SSCAM,scorecam]")
    assert spec.posthoc == ["GradCAM", "SSCAM", "ScoreCAM"]  # torch-cam's names, any case
    jobs = posthoc_plan(spec)
    assert [j.localizer for j in jobs[::4]] == ["SSCAM", "ScoreCAM", "cam", "GradCAM"]
    assert {(j.design, j.model, j.seed) for j in jobs} == {
        ("parts", m, s) for m in ("tiny_gap", "tiny_gmp") for s in (0, 1)
    }
    # the networks are the main jobs' (trained once), on the first design only
    main = {j.tag for j in plan(spec)}
    assert {j.trained.tag for j in jobs} <= main and len(plan(spec)) == 8
    job = jobs[0]
    work = Path("/w")
    assert job.eval_dir(work) == Path("/w/posthoc/eval/parts/tiny_gap/seed0/SSCAM")
    assert job.threshold_dir(work) == Path("/w/posthoc/heldout/parts/tiny_gap/seed0/SSCAM")
    assert planned_datasets(spec) == ["parts", "uniform", "parts-posthoc", "parts-posthoc-heldout"]
    assert posthoc_plan(_spec()) == [] and planned_datasets(_spec()) == ["parts"]


def test_its_two_sets_are_the_designs_classes_with_other_data_seeds_val_only() -> None:
    synth = SynthSize(num_classes=10, train_per_class=300, val_per_class=50, seed=4)
    scored, held = posthoc_sets("parts")
    a, b = data_settings(synth, scored, 7), data_settings(synth, held, 7)
    for settings in (a, b):
        assert settings["evidence"] == "parts" and settings["num_classes"] == 10
        assert (settings["train_per_class"], settings["val_per_class"]) == (0, 7)
    assert (a["seed"], b["seed"]) == (6, 7)  # not the design's (4) nor the methods' held-out (5)
    assert data_settings(synth, "parts-heldout")["seed"] == 5
    assert "70 other images" in posthoc_name(synth, "parts", 7, held=True)
    assert "data seed 7" in posthoc_name(synth, "parts", 7, held=True)


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("posthoc=[ScoreCAM,scorecam]", "must not repeat"),
        ("posthoc=[LeGrad]", "vision transformers"),
        ("posthoc=[nope]", "unknown torch-cam method"),
        ("posthoc_per_class=0", "posthoc_per_class"),
    ],
)
def test_bad_settings_are_one_line(override: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as err:
        _spec(override)
    assert "\n" not in str(err.value)
