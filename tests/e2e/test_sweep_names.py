"""Sweep job folders that go back into a command as they are: their names (`apps.job_folder`,
the configs' `hydra.sweep.subdir`) hold no character that a shell or Hydra's override grammar
reads specially, so `checkpoint=outputs/multirun/STAMP/0_model-tiny_gap_seed-0/...` needs no
quotes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from helpers import BIN, CPU, SMALL_TRAIN, run_command
from hydra.core.override_parser.overrides_parser import OverridesParser

from cam_repro.apps import JOB_FOLDER_MAX, compose, job_folder

PLAIN = re.compile(r"[A-Za-z0-9._-]+")

# Hydra's override_dirname with the configs' separators (key-value, items joined by _): what
# job_folder gets, and what it makes of it.
NAMES = [
    ("+experiment-synthetic_gap_gmp_model-tiny_gap_seed-0",
     "0_experiment-synthetic_gap_gmp_model-tiny_gap_seed-0"),
    ("images-[a.jpg,b.jpg]_topk-3", "0_images-a.jpg-b.jpg_topk-3"),
    ("checkpoint-/runs/x/checkpoints/last.pt", "0_checkpoint-runs-x-checkpoints-last.pt"),
    ("model.name-'my net'_~trainer.resume", "0_model.name-my-net_trainer.resume"),
    ("data.root-${oc.env:HOME}/d", "0_data.root-oc.env-HOME-d"),
    ("optim.lr-1e+3_optim.momentum--0.5", "0_optim.lr-1e3_optim.momentum--0.5"),
    ("kwargs-{depth:18}_x-a|b;c&d*e?f\\g", "0_kwargs-depth-18_x-a-b-c-d-e-f-g"),
    ("", "0"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "name"), NAMES)
def test_job_folder_keeps_plain_characters(overrides: str, name: str) -> None:
    assert job_folder(0, overrides) == name
    assert PLAIN.fullmatch(name)


def test_job_folder_is_cut_keeping_its_number() -> None:
    names = [job_folder(n, "data.root-" + "x" * 300) for n in (7, 12)]
    assert [len(n) for n in names] == [JOB_FOLDER_MAX, JOB_FOLDER_MAX]
    assert names[0].startswith("7_data.root-xx") and names[1].startswith("12_data.root-xx")
    assert names[0] != names[1]


def test_paths_into_job_folders_parse_unquoted() -> None:
    """A path into a job folder made of the nastiest names above: a value of one override, a
    list's item, and a sweep's (a,b), each as Hydra's parser reads the command line."""
    jobs = [job_folder(n, overrides) for n, (overrides, _) in enumerate(NAMES)]
    paths = [f"outputs/multirun/2026-01-01_00-00-00_abc123/{j}/checkpoints/last.pt" for j in jobs]
    for path in paths:
        assert compose("eval", [f"checkpoint={path}"]).checkpoint == path
    assert list(compose("visualize", [f"compare=[{','.join(paths)}]"]).compare) == paths
    sweep = OverridesParser.create().parse_override(f"checkpoint={','.join(paths)}")
    assert list(sweep.sweep_string_iterator()) == paths


@pytest.mark.slow
def test_a_sweeps_job_folders_go_back_into_a_sweep_unquoted(
    small_data: Path, tmp_path: Path
) -> None:
    """Two cam-train jobs (one epoch each), then a cam-eval sweep over their checkpoints, the
    paths typed into a shell without quotes."""
    result = run_command(
        tmp_path, "cam-train", "-m", "seed=0,1", "data.mean=[0.5,0.5,0.5]",
        f"data.root={small_data}", *SMALL_TRAIN, "trainer.epochs=1", "hydra.sweep.dir=sweep",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    jobs = sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert jobs == [
        f"{n}_data.batch_size-32_data.image_size-32_data.mean-0.5-0.5-0.5_data.resize_size-32_"
        f"seed-{n}_trainer.epochs-1"
        for n in (0, 1)
    ]
    checkpoints = [f"sweep/{job}/checkpoints/last.pt" for job in jobs]
    line = f"{BIN / 'cam-eval'} -m checkpoint={','.join(checkpoints)} maxboxacc=false "
    line += " ".join([*CPU, "hydra.sweep.dir=evals"])
    result = subprocess.run(
        line, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    evals = sorted(p for p in (tmp_path / "evals").iterdir() if p.is_dir())
    assert [p.name for p in evals] == ["0_maxboxacc-False", "1_maxboxacc-False"]
    read = [json.loads((p / "metrics.json").read_text()) for p in evals]
    assert [Path(m["checkpoint"]).parent.parent.name for m in read] == jobs
