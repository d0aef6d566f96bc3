"""cam-reproduce's WSOL methods stage: the plan (pure) and the reuse guard of a finished
training (jobs._finished), which never takes a CAM training for another method's."""

from __future__ import annotations

from pathlib import Path

import pytest
from metrics_records import write_record
from omegaconf import OmegaConf

from cam_repro.apps import compose
from cam_repro.reproduce.config import SynthSize, reproduce_config
from cam_repro.reproduce.jobs import TRAINED_ON, _finished
from cam_repro.reproduce.plan import (
    Job,
    data_settings,
    heldout_set,
    plan,
    planned_datasets,
)
from cam_repro.runtime.errors import ConfigError
from cam_repro.runtime.files import write_json


def _spec(*overrides: str):
    return reproduce_config(compose("reproduce", ["seeds=[0,1]", *overrides]))


def test_the_stage_is_off_by_default() -> None:
    jobs = plan(_spec())
    assert [j.tag for j in jobs] == [
        "parts/tiny_gap/seed0", "parts/tiny_gap/seed1", "parts/tiny_gmp/seed0",
        "parts/tiny_gmp/seed1",
    ]  # fmt: skip
    assert not any(j.heldout for j in jobs) and {j.method for j in jobs} == {"cam"}
    assert planned_datasets(_spec()) == ["parts"]


def test_methods_train_the_first_model_on_the_first_design_at_every_seed() -> None:
    spec = _spec("designs=[parts,uniform]", "methods=[has,acol]")
    jobs = plan(spec)
    tags = [j.tag for j in jobs]
    assert len(tags) == len(set(tags)) == 8 + 4  # CAM's are the main jobs, not planned twice
    methods = {j.tag: j for j in jobs if j.heldout}
    assert sorted(methods) == [
        "parts/tiny_gap+acol/seed0", "parts/tiny_gap+acol/seed1", "parts/tiny_gap+has/seed0",
        "parts/tiny_gap+has/seed1", "parts/tiny_gap/seed0", "parts/tiny_gap/seed1",
    ]  # fmt: skip
    has = methods["parts/tiny_gap+has/seed1"]
    assert (has.model, has.method, has.seed) == ("tiny_gap", "has", 1)
    assert has.task == ["method=has"] and methods["parts/tiny_gap/seed0"].task == []
    work = Path("/w")
    assert has.train_dir(work) == Path("/w/train/parts/tiny_gap+has/seed1")
    assert has.eval_dir(work) == Path("/w/eval/parts/tiny_gap+has/seed1")
    assert has.threshold_dir(work) == Path("/w/heldout/parts/tiny_gap+has/seed1")
    assert has.heldout_eval_dir(work) == Path("/w/eval/parts/heldout/tiny_gap+has/seed1")
    assert planned_datasets(spec) == ["parts", "uniform", "parts-heldout"]
    # the held-out set: the design's classes, the next data seed, val images only
    settings = data_settings(SynthSize(), heldout_set("parts"))
    assert (settings["evidence"], settings["seed"], settings["train_per_class"]) == ("parts", 1, 0)
    assert settings["val_per_class"] == 50


@pytest.mark.parametrize(
    ("given", "message"),
    [("methods=[hide]", "methods must be one of cam, has"),
     ("methods=[has,has]", "methods must not repeat")],
)  # fmt: skip
def test_bad_methods_are_one_line(given: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _spec(given)


def _finished_training(work: Path, job: Job, method: str | None, settings: dict) -> None:
    """A finished training folder of `job`'s tag, trained with `method` (None: written before
    methods, no method key)."""
    folder = job.train_dir(work)
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.pt").write_bytes(b"")
    config = {"model": {"arch": "tiny", "pool": "gap"}, "seed": job.seed,
              "data": {"root": settings["data.root"]}}  # fmt: skip
    if method is not None:
        config["method"] = {"name": method}
    OmegaConf.save(OmegaConf.create(config), folder / "config.yaml")
    write_json(folder / TRAINED_ON, {"data": settings["data.root"], "files": "stamp"})
    write_record(folder, "train")  # finished


def test_a_cam_training_is_never_reused_as_another_methods(tmp_path: Path) -> None:
    settings = {"seed": 0, "data.root": "/data/parts"}
    cam = Job("parts", "tiny_gap", 0)
    has = Job("parts", "tiny_gap", 0, "has")
    # a HaS job whose folder holds a CAM training (as a folder of another tag layout would)
    _finished_training(tmp_path, has, "cam", settings)
    with pytest.raises(ConfigError, match=r"method cam.*this run: tiny_gap, method has"):
        _finished(has, tmp_path, settings, "stamp")
    # a CAM job finds a HaS training where its own should be: refused too
    _finished_training(tmp_path / "b", cam, "has", settings)
    with pytest.raises(ConfigError, match=r"method has.*this run: tiny_gap, method cam"):
        _finished(cam, tmp_path / "b", settings, "stamp")
    # its own method's finished training is reused; one from before methods (no method key)
    # is CAM's
    _finished_training(tmp_path / "c", has, "has", settings)
    assert _finished(has, tmp_path / "c", settings, "stamp")
    _finished_training(tmp_path / "d", cam, None, settings)
    assert _finished(cam, tmp_path / "d", settings, "stamp")
