"""A refused resume prints the command that resumes the run: the overrides the run was started
with (recorded in its folder's overrides.yaml, train/state.py), trainer.resume=auto and
hydra.run.dir."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from helpers import SMALL_TRAIN, run_command
from omegaconf import OmegaConf

from cam_repro.apps import compose
from cam_repro.runtime.errors import ConfigError, RunInterruptedError
from cam_repro.train import train
from cam_repro.train.state import OVERRIDES_FILE, resume_command

THE_COMMAND = "the command that resumes it: "


def _start(root: Path, *overrides: str) -> list[str]:
    return [f"data.root={root}", *SMALL_TRAIN, *overrides]


def test_a_refused_resume_prints_the_command_that_resumes_it(
    small_data: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    started = _start(small_data, "model=tiny_gmp", "trainer.epochs=2", "trainer.resume=auto")

    def stop_in_epoch_2(trainer) -> None:
        if trainer.global_step == 8:  # epoch 2, batch 2 of 6; last.pt is epoch 1's
            raise KeyboardInterrupt

    with pytest.raises(RunInterruptedError):
        train(compose("train", started), run, on_step=stop_in_epoch_2, overrides=started)
    recorded = OmegaConf.to_container(OmegaConf.load(run / OVERRIDES_FILE))
    assert recorded == started[:-1]  # trainer.resume is the resume command's own

    # the README's resume, without the run's model=tiny_gmp
    defaults = _start(small_data, "trainer.resume=auto")
    with pytest.raises(ConfigError) as refused:
        train(compose("train", defaults), run, overrides=defaults)
    message = str(refused.value)
    assert "another model config (pool 'gmp' in the file, 'gap' here)" in message
    command = shlex.split(message.split(THE_COMMAND, 1)[1])
    assert command == ["cam-train", *recorded, "trainer.resume=auto", f"hydra.run.dir={run}"]

    # that command, as the command line composes it, resumes the run where it stopped
    overrides = command[1:-1]
    metrics = train(compose("train", overrides), run, overrides=overrides)
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2] and metrics["global_step"] == 12
    assert "resumed from" in (run / "train.log").read_text()


def test_a_fresh_start_over_a_run_prints_the_command(small_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    started = _start(small_data, "trainer.epochs=1", "seed=3", "data.mean=[0.5,0.5,0.5]")
    train(compose("train", started), run, overrides=started)
    with pytest.raises(ConfigError) as refused:
        train(compose("train", _start(small_data, "trainer.epochs=1")), run)
    expected = shlex.join(["cam-train", *started, "trainer.resume=auto", f"hydra.run.dir={run}"])
    assert str(refused.value) == (
        f"{run} already holds a run ({run}/checkpoints/last.pt); continue it with: {expected}; "
        "or choose another hydra.run.dir"
    )


def test_a_run_without_recorded_overrides_says_what_to_add(tmp_path: Path) -> None:
    """Started from Python (no overrides given): the command's shape, and a checkpoint of
    another folder resumed by its path."""
    run = tmp_path / "run"
    assert resume_command(run / "checkpoints" / "last.pt", run) == (
        f"cam-train <the overrides it was started with> trainer.resume=auto hydra.run.dir={run}"
    )
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / OVERRIDES_FILE).write_text("- model=tiny_gmp\n- seed=2\n")
    old = tmp_path / "old" / "checkpoints" / "best.pt"
    assert resume_command(old, run) == (
        f"cam-train model=tiny_gmp seed=2 trainer.resume={old} hydra.run.dir={run}"
    )


@pytest.mark.slow
def test_cam_train_refusal_holds_the_command_that_then_resumes(
    small_data: Path, tmp_path: Path
) -> None:
    """End to end: cam-train model=tiny_gmp, then the README's resume (default settings):
    refused in one line with the command; that command, run as printed, resumes."""
    started = _start(small_data, "model=tiny_gmp", "trainer.epochs=1")
    result = run_command(tmp_path, "cam-train", *started, "hydra.run.dir=run")
    assert result.returncode == 0, result.stderr
    result = run_command(
        tmp_path, "cam-train", *_start(small_data), "hydra.run.dir=run", "trainer.resume=auto"
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and THE_COMMAND in line
    command = shlex.split(line.split(THE_COMMAND, 1)[1])
    run = tmp_path / "run"
    assert command == ["cam-train", *started, "trainer.resume=auto", f"hydra.run.dir={run}"]
    result = run_command(tmp_path, *command)
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "metrics.json").read_text())["status"] == "finished"
    assert "resumed from" in (run / "train.log").read_text()
