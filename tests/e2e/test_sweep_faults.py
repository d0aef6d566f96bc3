"""Issue 33, class 8: sweeps and counts. A sweep (`-m`, any launcher) runs every job, keeps the
good jobs' results and ends with one line per failed job and a summary, exit 1 (cli/sweep.py);
Slurm without sbatch is one line before anything is submitted; cam-data counts images once each
and VQA questions apart (cam_repro/data/check.py)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

import cam_repro_cli
from cam_repro.data.check import check_images, describe_split, shared_images, split_counts
from cam_repro.data.samples import DataSplit, Questions, Sample
from cam_repro.runtime.errors import ConfigError
from cam_repro_cli import RunFolderCheck, user_errors
from cam_repro_cli.sweep import (
    RECORDS,
    JobOutcome,
    SweepJob,
    launcher_problem,
    read_outcomes,
    sweep_report,
)

PLUGIN = "hydra_plugins.hydra_submitit_launcher.submitit_launcher."
BASIC = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
SLURM_MISSING = (
    "hydra/launcher=slurm: sbatch is not on PATH (no Slurm here); use hydra/launcher=local or "
    "run without -m"
)


def _job(num: int, error: str | None = None, rank: int = 0, log: str | None = None) -> JobOutcome:
    return JobOutcome(num, [f"seed={num}", "data.image_size=32"], f"/s/{num}_x", error, log, rank)


# -- the summary -------------------------------------------------------------------------------


def test_one_failed_job_of_two_is_one_line_and_a_summary() -> None:
    lines = sweep_report(
        [_job(0), _job(1, "data.root /x does not exist", log="/s/.submitit/7.err")]
    )
    assert lines == [
        "job 1 (seed=1) failed: data.root /x does not exist "
        "[its folder: /s/1_x; its output: /s/.submitit/7.err]",
        "error: 1 of 2 jobs failed: job 1 (seed=1): data.root /x does not exist",
    ]


def test_every_job_failing_names_each_and_counts_them_all() -> None:
    lines = sweep_report([_job(0, "bad a"), _job(1, "bad b"), _job(2, "bad c")])
    assert lines[:3] == [f"job {n} (seed={n}) failed: bad {c} [its folder: /s/{n}_x]"
                         for n, c in enumerate("abc")]  # fmt: skip
    assert lines[3] == "error: 3 of 3 jobs failed: job 0 (seed=0): bad a; and 2 more (listed above)"
    assert sweep_report([_job(0), _job(1)]) == []


def test_a_job_of_one_shows_all_its_overrides() -> None:
    (_line, summary) = sweep_report([_job(0, "bad")])
    assert summary == "error: 1 of 1 jobs failed: job 0 (seed=0 data.image_size=32): bad"


def test_records_of_every_process_give_one_outcome_per_job(tmp_path: Path) -> None:
    """A DDP job fails if any of its processes did; a record cut short is not counted."""
    records = tmp_path / RECORDS
    for num, rank, error in ((0, 0, None), (0, 1, None), (1, 0, None), (1, 1, "rank 1's error")):
        job = SweepJob(num, [f"seed={num}"], f"/s/{num}", records, rank, None)
        job.record(error)
    (records / "2.0.json").write_text('{"num": 2, "overr')  # killed mid-write: not a record
    jobs = read_outcomes(records)
    assert [(j.num, j.error, j.rank) for j in jobs] == [(0, None, 0), (1, "rank 1's error", 1)]
    assert read_outcomes(tmp_path / "none") == []


# -- the launcher check ------------------------------------------------------------------------


def test_slurm_without_sbatch_is_one_line_before_anything_is_submitted() -> None:
    slurm = PLUGIN + "SlurmLauncher"
    assert launcher_problem(slurm, which=lambda c: None, env={}) == SLURM_MISSING
    srun_only = launcher_problem(slurm, which=lambda c: "/bin/x" if c == "sbatch" else None, env={})
    assert srun_only == SLURM_MISSING.replace("sbatch", "srun")
    assert launcher_problem(slurm, which=lambda c: f"/usr/bin/{c}", env={}) is None
    assert launcher_problem(BASIC, which=lambda c: None, env={}) is None
    torchrun = launcher_problem(PLUGIN + "LocalLauncher", which=lambda c: "/x", env={"RANK": "0"})
    assert torchrun is not None and torchrun.startswith("hydra/launcher=local: the sweep would be")


def _sweep_cfg(sweep: Path, target: str = BASIC):
    return OmegaConf.create(
        {"hydra": {"launcher": {"_target_": target}, "sweep": {"dir": str(sweep)}}}
    )


def test_the_callback_refuses_slurm_here_and_makes_no_folder(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch, no srun
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(SystemExit) as stop:
        RunFolderCheck().on_multirun_start(_sweep_cfg(tmp_path / "sweep", PLUGIN + "SlurmLauncher"))
    assert stop.value.code == 1
    assert capsys.readouterr().err == f"error: {SLURM_MISSING}\n"
    assert not (tmp_path / "sweep").exists()


def test_the_callback_ends_a_sweep_with_its_failed_jobs(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """Start (folder, lock, old records cleared), a second sweep into the folder refused, the
    jobs' records, the end: one line per failed job, the summary, exit 1."""
    monkeypatch.delenv("RANK", raising=False)
    sweep = tmp_path / "sweep"
    (sweep / RECORDS).mkdir(parents=True)
    (sweep / RECORDS / "5.0.json").write_text(json.dumps(_job(5, "an earlier sweep's").__dict__))
    first = RunFolderCheck()
    first.on_multirun_start(_sweep_cfg(sweep))
    assert not (sweep / RECORDS).exists()
    pickle.loads(pickle.dumps(first))  # submitit pickles it into each job, lock and all
    with pytest.raises(SystemExit):
        RunFolderCheck().on_multirun_start(_sweep_cfg(sweep))
    assert f"error: {sweep} is in use by a running sweep" in capsys.readouterr().err
    for job in (_job(0), _job(1, "bad input")):
        SweepJob(job.num, job.overrides, job.folder, sweep / RECORDS, 0, None).record(job.error)
    with pytest.raises(SystemExit) as stop:
        first.on_multirun_end(_sweep_cfg(sweep))
    assert stop.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        "job 1 (seed=1) failed: bad input [its folder: /s/1_x]",
        "error: 1 of 2 jobs failed: job 1 (seed=1): bad input",
    ]
    RunFolderCheck().on_multirun_start(_sweep_cfg(sweep))  # the lock went with the sweep


# -- a job's side ------------------------------------------------------------------------------


def test_a_job_records_its_error_or_bug_and_returns(tmp_path: Path, monkeypatch, capsys) -> None:
    records = tmp_path / RECORDS
    job = SweepJob(1, ["seed=1"], "/s/1", records, 0, None)
    monkeypatch.setattr(cam_repro_cli, "sweep_job", lambda: job)

    @user_errors
    def bad_input() -> None:
        raise ConfigError("seed: not a number")

    @user_errors
    def bug() -> None:
        raise ZeroDivisionError("division by zero")

    assert bad_input() is None  # no SystemExit: the sweep's next job runs
    assert read_outcomes(records)[0].error == "seed: not a number"
    assert capsys.readouterr().err == ""  # in this process: printed once, at the sweep's end
    bug()
    assert read_outcomes(records)[0].error == (
        "ZeroDivisionError: division by zero (a bug, not your input; its traceback: printed above)"
    )
    assert "Traceback" in capsys.readouterr().err  # the bug keeps its traceback
    monkeypatch.setattr(cam_repro_cli, "sweep_job", lambda: None)  # not a sweep: exit 1
    with pytest.raises(SystemExit) as stop:
        bad_input()
    assert stop.value.code == 1 and capsys.readouterr().err == "error: seed: not a number\n"


@pytest.mark.slow
def test_a_local_sweep_with_a_failing_job_keeps_the_other_and_ends_in_one_line(
    small_data: Path, tmp_path: Path
) -> None:
    """Two cam-train jobs through submitit's local launcher, the second with a missing data
    root: the first trains, the second's error is in its log, the sweep ends with our lines."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    missing = tmp_path / "missing"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cam-train"), "-m", "hydra/launcher=local",
         f"data.root={small_data},{missing}", "data.image_size=32", "data.resize_size=32",
         "data.batch_size=32", "runtime.device=cpu", "runtime.progress=false", "trainer.epochs=1",
         "runtime.threads=1", "hydra.launcher.timeout_min=5", "hydra.sweep.dir=sweep"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    error = f"data.root {missing} does not exist or is not a folder"
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == f"error: 1 of 2 jobs failed: job 1 (data.root={missing}): {error}"
    assert lines[-2].startswith(f"job 1 (data.root={missing}) failed: {error} [its folder: ")
    log = Path(lines[-2].rsplit("; its output: ", 1)[1].rstrip("]"))
    assert log.read_text().strip().splitlines()[-1] == f"error: {error}"
    (good,) = (tmp_path / "sweep").glob("0_*")
    assert json.loads((good / "metrics.json").read_text())["status"] == "finished"
    assert (good / "checkpoints" / "best.pt").is_file()


# -- cam-data's counts -------------------------------------------------------------------------


def _image(path: Path, valid: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if valid:
        Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(path)
    else:
        path.write_bytes(b"not an image")
    return path


def _vqa_split(root: Path) -> DataSplit:
    """Two images: a.png asked three questions (answers 0, 1, 0; one target box each, the last
    two), b.png (corrupt) asked one (answer 0, two boxes); c.png left out by the reader once
    per question about it (twice)."""
    a, b, c = (_image(root / f"{n}.png", n == "a") for n in "abc")
    box = np.array([[0, 0, 3, 3]], np.int64)
    samples = [
        Sample(a, 0, (10, 8)),
        Sample(a, 1, (10, 8), box, np.array([1])),
        Sample(a, 0, (10, 8), box, np.array([0])),
        Sample(b, 0, (10, 8), np.repeat(box, 2, 0), np.array([0, 0])),
    ]
    questions = Questions(
        ids=[1, 2, 3, 4], text=["q"] * 4, tokens=np.zeros((4, 1), np.int64), vocab=["q"],
        answers=[[]] * 4, kinds=["colour"] * 4,
    )  # fmt: skip
    return DataSplit("val", root, ["no", "yes", "2"], ["no", "yes", "2"], samples, "hand-built",
                     [(c, "corrupt"), (c, "corrupt")], questions)  # fmt: skip


def test_vqa_counts_images_once_and_questions_apart(tmp_path: Path) -> None:
    data = _vqa_split(tmp_path)
    n = split_counts(data)
    assert (n.images, n.questions, n.classes, n.labels_present) == (2, 4, 3, 2)
    assert (n.boxes, n.multi_box, n.skipped) == (4, 1, 1)
    assert describe_split(data).splitlines()[:2] == [
        "val: 2 images, 4 questions, 3 answers (2 of them given here)",
        "  target boxes: 4 (1 questions with more than one)",
    ]
    check = check_images(data, decode=True)
    assert check.checked == 3  # a, b and the reader's c: each once
    assert [p.name for p, _ in check.bad] == ["c.png", "b.png"]


def test_repeated_entries_and_images_shared_by_splits_are_counted_once(tmp_path: Path) -> None:
    a, b = _image(tmp_path / "a.png"), _image(tmp_path / "b.png")
    box = np.array([[0, 0, 3, 3]], np.int64)
    twice = [Sample(a, 0, None, box, np.array([0])) for _ in range(2)]
    train = DataSplit(
        "train", tmp_path, ["x", "y"], ["x", "y"], [*twice, Sample(b, 0)], "hand-built"
    )
    val = DataSplit("val", tmp_path, ["x", "y"], ["x", "y"], [Sample(a, 0)], "hand-built")
    n = split_counts(train)
    assert (n.images, n.entries, n.boxes, n.labels_present, n.questions) == (2, 3, 1, 1, None)
    assert describe_split(train).splitlines()[:3] == [
        "train: 2 images of 2 classes (1 of them given here)",
        "  listed more than once: 1 repeated entries (3 in all; every epoch sees those images "
        "more often)",
        "  boxes: 1 (0 images with more than one)",
    ]
    assert shared_images({"train": train, "val": val}) == [
        f"1 images are in both train and val (e.g. {a})"
    ]
    assert check_images(train, decode=False).checked == 2
