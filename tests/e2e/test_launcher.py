"""Sweeps through Hydra's submitit launcher (configs/hydra/launcher/): the Slurm config composes
and submits one job array with our resources (to a stand-in sbatch); the local one runs each job
in its own process, into the sweep's folders, and a job of two tasks trains with DDP."""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import subprocess
from pathlib import Path

import pytest
from helpers import BIN, SMALL_TRAIN, run_metrics
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore

from cam_repro.apps import APPS
from cam_repro_cli import CONFIG_DIR

# cam-train on the small synthetic set, one epoch, one CPU thread per job (two jobs, two cores)
TINY = [*SMALL_TRAIN, "trainer.epochs=1", "runtime.threads=1", "hydra.launcher.timeout_min=5"]


def run(cwd: Path, *args: str, path: Path | None = None) -> subprocess.CompletedProcess:
    """An installed command run from `cwd`; `path`: a folder put first on PATH."""
    launch = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    env = {k: v for k, v in os.environ.items() if k not in launch}  # the jobs find their own
    if path is not None:
        env["PATH"] = f"{path}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def launcher_cfg(app: str, *overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        return compose(app, list(overrides), return_hydra_config=True).hydra


@pytest.mark.parametrize("app", ["train", "eval"])
def test_slurm_launcher_composes_with_our_keys(app: str) -> None:
    hydra = launcher_cfg(app, "hydra/launcher=slurm", "hydra.launcher.partition=gpu")
    launcher = hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    ours = {k: launcher[k] for k in ("partition", "nodes", "gpus_per_node", "tasks_per_node",
                                     "cpus_per_task", "mem_gb", "timeout_min",
                                     "array_parallelism")}  # fmt: skip
    assert ours == {"partition": "gpu", "nodes": 1, "gpus_per_node": 1, "tasks_per_node": 1,
                    "cpus_per_task": 8, "mem_gb": 64, "timeout_min": 1440,
                    "array_parallelism": 8}  # fmt: skip
    assert list(launcher.setup) == [] and dict(launcher.additional_parameters) == {}
    assert launcher.submitit_folder == f"{hydra.sweep.dir}/.submitit/%j"
    assert launcher.max_num_timeout == 0  # the plugin's keys stay reachable

    local = launcher_cfg(app, "hydra/launcher=local").launcher
    assert local._target_.endswith("submitit_launcher.LocalLauncher")
    assert (local.gpus_per_node, local.tasks_per_node) == (0, 1)


@pytest.mark.parametrize("app", APPS)
def test_schema_pickles_by_reference(app: str) -> None:
    """submitit pickles Hydra's ConfigStore into every job; a schema class that pickle cannot
    find by name goes by value and is another class there (the job fails to merge its config:
    "DataOverrides is not a subclass of DataOverrides")."""
    pickle.dumps(ConfigStore.instance().load(f"{app}_schema.yaml"))


def test_slurm_sweep_submits_one_array_with_our_resources(small_data: Path, tmp_path: Path) -> None:
    """The whole launcher path up to `sbatch`, which here records its script and refuses."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\nexit 0\n")  # submitit looks for it
    (fake / "sbatch").write_text(
        f'#!/bin/sh\ncp "$1" {fake}/script.sh\necho "sbatch: error: not a cluster" >&2\nexit 1\n'
    )
    for script in fake.iterdir():
        script.chmod(0o755)
    result = run(
        tmp_path, "cam-train", "-m", "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
        "hydra.launcher.gpus_per_node=8", "hydra.launcher.tasks_per_node=8", "seed=0,1",
        f"data.root={small_data}", "hydra.sweep.dir=sweep", path=fake,
    )  # fmt: skip
    assert result.returncode != 0 and "sbatch: error: not a cluster" in result.stderr
    script = (fake / "script.sh").read_text()
    options = set(re.findall(r"^#SBATCH (\S+)$", script, re.MULTILINE))
    logs = tmp_path / "sweep" / ".submitit" / "%A_%a"
    assert {"--array=0-1%2", "--partition=gpu", "--nodes=1", "--gpus-per-node=8",
            "--ntasks-per-node=8", "--cpus-per-task=8", "--mem=64GB", "--time=1440",
            "--job-name=train", f"--output={logs}/%A_%a_0_log.out"} <= options  # fmt: skip
    assert "export SUBMITIT_EXECUTOR=slurm" in script  # what distributed.setup looks for


def _numbers(node: object) -> list[float]:
    if isinstance(node, dict):
        return [x for v in node.values() for x in _numbers(v)]
    if isinstance(node, list):
        return [x for v in node for x in _numbers(v)]
    return [node] if isinstance(node, int | float) and not isinstance(node, bool) else []


@pytest.mark.slow
def test_local_sweep_runs_each_job_in_its_sweep_folder(small_data: Path, tmp_path: Path) -> None:
    """Two cam-train jobs, each a process of submitit's local executor: both write their run
    folder where Hydra's sweep says (outputs/multirun/<stamp>/<num>_<overrides>), one stamp."""
    result = run(
        tmp_path, "cam-train", "-m", "hydra/launcher=local", "seed=0,1",
        f"data.root={small_data}", *TINY,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (sweep,) = (tmp_path / "outputs" / "multirun").iterdir()
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [p.name for p in jobs] == [
        f"{n}_data.batch_size-32_data.image_size-32_data.resize_size-32_runtime.threads-1_"
        f"seed-{n}_trainer.epochs-1"
        for n in (0, 1)
    ]
    for n, job in enumerate(jobs):
        metrics = run_metrics(job)
        assert (metrics["status"], metrics["seed"], metrics["world_size"]) == ("finished", n, 1)
        assert all(math.isfinite(x) for x in _numbers(metrics["final"]))
        assert sorted(p.name for p in (job / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
        assert "epoch 1/1" in (job / "train.log").read_text()
    # each job's output beside the run folders, in submitit's folder
    outs = sorted((sweep / ".submitit").glob("*/*_0_log.out"))
    assert len(outs) == 2 and all("done in" in p.read_text() for p in outs)
    assert [p.name for p in tmp_path.iterdir()] == ["outputs"]


@pytest.mark.slow
def test_local_job_of_two_tasks_trains_with_ddp(small_data: Path, tmp_path: Path) -> None:
    """tasks_per_node=2: the job's two processes find their ranks in submitit's environment and
    train as torchrun's would (one code path): both end with the same weights."""
    result = run(
        tmp_path, "cam-train", "-m", "hydra/launcher=local", "hydra.launcher.tasks_per_node=2",
        "seed=0", f"data.root={small_data}", *TINY, "hydra.sweep.dir=sweep",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (job,) = (p for p in (tmp_path / "sweep").iterdir() if p.name.startswith("0_"))
    metrics = run_metrics(job)
    assert metrics["status"] == "finished" and metrics["world_size"] == 2
    digests = metrics["rank_weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert metrics["global_step"] == 3  # 192 images over 2 processes in batches of 32
    assert all(math.isfinite(x) for x in _numbers(metrics["final"]))


@pytest.mark.slow
def test_local_sweep_of_cam_eval(trained: Path, tmp_path: Path) -> None:
    """cam-eval's schema (its data overrides among them) survives submitit's pickling: both jobs
    of an evaluation sweep write their metrics."""
    result = run(
        tmp_path, "cam-eval", "-m", "hydra/launcher=local", "hydra.launcher.timeout_min=5",
        f"checkpoint={trained}", "threshold=0.1,0.3", "runtime.device=cpu", "runtime.threads=1",
        "runtime.progress=false", "hydra.sweep.dir=sweep",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.name[0].isdigit())
    assert len(jobs) == 2
    for job, threshold in zip(jobs, (0.1, 0.3), strict=True):
        metrics = json.loads((job / "metrics.json").read_text())
        assert metrics["protocol"]["threshold"] == threshold
        assert 0.0 <= metrics["loc_top1_err"] <= 100.0
