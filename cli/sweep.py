"""Sweeps (`-m`) that end in one line, whichever launcher runs their jobs.

Hydra's basic launcher runs the jobs here, one after another, and stops the sweep at the first
job that exits; submitit's (`hydra/launcher=local|slurm`, configs/hydra/launcher/) runs each in
its own process and, for a job that exits, prints submitit's traceback and drops the other jobs'
returns (hydra_submitit_launcher's `BaseSubmititLauncher.launch`: `j.results()[0]`). So a job
does not exit: `user_errors` prints its error in the job's own output, records the outcome of
each job (and each process of a DDP job) as one JSON file in the sweep folder (`RECORDS`) and
returns; the sweep's process, at Hydra's `on_multirun_end` (`RunFolderCheck`), prints one line
per failed job and a summary, and exits 1. The files cross every launcher's process boundary:
Hydra's callbacks get no job returns there.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cam_repro.runtime.files import write_json

RECORDS = ".cam-repro-jobs"  # in the sweep folder: <job num>.<rank>.json per process of a job
REPORTER = "cam_repro_cli.RunFolderCheck"  # the callback that reads them (configs' hydra.callbacks)


@dataclass(frozen=True)
class JobOutcome:
    """What one process of one sweep job ended with."""

    num: int  # Hydra's job number (the folder's prefix)
    overrides: list[str]  # the job's overrides, without hydra.*
    folder: str  # its run folder
    error: str | None = None  # its one-line error; None: it finished
    log: str | None = None  # the file holding its output (submitit's), None: this terminal
    rank: int = 0


def job_outcome(path: Path) -> JobOutcome | None:
    """A record as written by `SweepJob.record`; None for a file cut short or not ours."""
    try:
        return JobOutcome(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def read_outcomes(records: Path) -> list[JobOutcome]:
    """One outcome per job: a job failed if any of its processes did (the lowest rank's error)."""
    found = [job_outcome(p) for p in sorted(records.glob("*.json"))] if records.is_dir() else []
    jobs: dict[int, JobOutcome] = {}
    for out in sorted((o for o in found if o is not None), key=lambda o: (o.error is None, o.rank)):
        jobs.setdefault(out.num, out)
    return [jobs[n] for n in sorted(jobs)]


def _varying(jobs: list[JobOutcome]) -> Callable[[JobOutcome], str]:
    """A job's label as the user tells the jobs apart: its number and the overrides whose values
    differ between the jobs (all of its overrides when none differ)."""
    values: dict[str, set[str]] = {}
    for job in jobs:
        for key, value in _pairs(job):
            values.setdefault(key, set()).add(value)
    apart = {k for k, v in values.items() if len(v) > 1}
    apart |= {k for k in values if any(k not in dict(_pairs(j)) for j in jobs)}

    def label(job: JobOutcome) -> str:
        shown = [f"{k}={v}" for k, v in _pairs(job) if k in apart] or job.overrides
        return f"job {job.num} ({' '.join(shown)})" if shown else f"job {job.num}"

    return label


def _pairs(job: JobOutcome) -> list[tuple[str, str]]:
    return [(o.partition("=")[0], o.partition("=")[2]) for o in job.overrides]


def sweep_report(jobs: list[JobOutcome]) -> list[str]:
    """The lines that end a sweep with failed jobs: one per failed job (its folder and log), then
    the summary `error: K of N jobs failed: job I (overrides): its error`; [] if none failed."""
    failed = [j for j in jobs if j.error is not None]
    if not failed:
        return []
    label = _varying(jobs)
    lines = [
        f"{label(j)} failed: {j.error} [its folder: {j.folder}"
        + (f"; its output: {j.log}]" if j.log else "]")
        for j in failed
    ]
    first = failed[0]
    more = f"; and {len(failed) - 1} more (listed above)" if len(failed) > 1 else ""
    count = f"{len(failed)} of {len(jobs)} jobs failed"
    lines.append(f"error: {count}: {label(first)}: {first.error}{more}")
    return lines


@dataclass(frozen=True)
class SweepJob:
    """This process as one job of a sweep that `RunFolderCheck` reports on."""

    num: int
    overrides: list[str]
    folder: str
    records: Path
    rank: int
    log: str | None  # submitit's stderr file of this task; None: the sweep's own terminal

    def record(self, error: str | None) -> None:
        out = JobOutcome(self.num, self.overrides, self.folder, error, self.log, self.rank)
        write_json(self.records / f"{self.num}.{self.rank}.json", asdict(out))


def reports_sweeps(callbacks: Mapping[str, Any]) -> bool:
    """Whether the command's config has the callback that summarises its sweeps (cam-synth's and
    cam-models' have none: their jobs still exit at a user error)."""
    return any(str((cb or {}).get("_target_")) == REPORTER for cb in callbacks.values())


def sweep_job() -> SweepJob | None:
    """This process's job when it runs in a reported sweep (any launcher), else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import filter_overrides
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    if hydra.mode != RunMode.MULTIRUN or not reports_sweeps(hydra.callbacks or {}):
        return None
    rank, log = 0, None
    if "SUBMITIT_EXECUTOR" in os.environ:  # a job in its own process: its output goes to a file
        import submitit

        env = submitit.JobEnvironment()
        rank, log = env.global_rank, str(env.paths.stderr)
    elif "RANK" in os.environ:  # torchrun's processes each run the sweep (basic launcher)
        rank = int(os.environ["RANK"])
    return SweepJob(
        num=int(hydra.job.num),
        overrides=list(filter_overrides(list(hydra.overrides.task))),
        folder=str(hydra.runtime.output_dir),
        records=Path(str(hydra.sweep.dir)).absolute() / RECORDS,
        rank=rank,
        log=log,
    )


def launcher_problem(
    target: str,
    which: Callable[[str], str | None] = shutil.which,
    env: Mapping[str, str] = os.environ,
) -> str | None:
    """Why this launcher cannot run the sweep here, before anything is submitted (else None):
    Slurm without its commands (submitit would fail at its first `srun`/`sbatch` with a
    traceback), or a submitit sweep started by every process of torchrun (N copies of it)."""
    submitit = target.startswith("hydra_plugins.hydra_submitit_launcher.")
    if submitit and "RANK" in env:
        name = "slurm" if target.endswith("SlurmLauncher") else "local"
        return (
            f"hydra/launcher={name}: the sweep would be submitted once by each torchrun process; "
            "run the command with -m without torchrun (DDP inside each job: "
            "hydra.launcher.tasks_per_node=N)"
        )
    if target.endswith("SlurmLauncher"):
        for command in ("sbatch", "srun"):
            if which(command) is None:
                return (
                    f"hydra/launcher=slurm: {command} is not on PATH (no Slurm here); use "
                    "hydra/launcher=local or run without -m"
                )
    return None


def clear_records(records: Path) -> None:
    """Forget the outcomes of an earlier sweep into the same folder (an explicit hydra.sweep.dir
    used twice): its jobs must not be counted as this sweep's."""
    if records.is_dir():
        shutil.rmtree(records)
