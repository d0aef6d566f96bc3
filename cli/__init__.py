"""Thin Hydra entry points: register the app's schema, compose its config, call one cam_repro
function. Errors a user can fix are printed as one line (exit 1); Ctrl-C as one line (exit 130),
with the command that resumes the run where there is one. A sweep (`-m`) runs every job whatever
the others do and ends with one line per failed job and a summary (exit 1): sweep.py."""

from __future__ import annotations

import dataclasses
import errno
import functools
import os
import shlex
import signal
import sys
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, NoReturn

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from cam_repro.apps import CONFIG_DIR, register
from cam_repro.runtime.config import check_keys
from cam_repro.runtime.errors import (
    CamReproError,
    RunFolderBusyError,
    RunInterruptedError,
    first_line,
)
from cam_repro.runtime.files import make_dir, output_error
from cam_repro.runtime.lock import run_lock
from cam_repro_cli.sweep import (
    RECORDS,
    SweepJob,
    clear_records,
    launcher_problem,
    read_outcomes,
    sweep_job,
    sweep_report,
)

__all__ = ["CONFIG_DIR", "RunFolderCheck", "register", "user_errors"]

INTERRUPTED = 130  # a shell's exit code for SIGINT
# OSErrors that mean "this place cannot be written", whoever met them: one line, not a traceback
DISK_FAULTS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def resume_command(extra: list[str]) -> str:
    """This command line again, with `extra` overrides replacing any of the same keys."""
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get()
    keys = {o.split("=", 1)[0] for o in extra}
    given = [o for o in hydra.overrides.task if o.split("=", 1)[0] not in keys]
    return shlex.join([command_name(), *given, *extra])


def command_name() -> str:
    """This command's name: cam-train, cam-eval, ..."""
    from hydra.core.hydra_config import HydraConfig

    command = Path(sys.argv[0]).name
    if not command.startswith("cam-") and HydraConfig.initialized():
        # a submitit job runs submitit's script: cli/<job>.py's
        command = f"cam-{HydraConfig.get().job.name}"
    return command


def refuse_unknown_keys(cfg: Any) -> None:
    """A key that the command's schema does not have is one line naming the close matches, for
    every command: Hydra's `+key=value` adds any key, and the schema's merge would drop it."""
    schema = OmegaConf.get_type(cfg) if isinstance(cfg, DictConfig) else None
    if schema is not None and dataclasses.is_dataclass(schema):
        check_keys(schema, cfg, f"{command_name()}'s config")


class RunFolderCheck(Callback):
    """The commands' Hydra callback (configured in the apps' configs under `hydra.callbacks`).

    It creates the run folder (a sweep's parent folder) before Hydra does, so that a place that
    cannot be written (read-only, full, no permission) is one line and exit 1, not Hydra's
    traceback. A sweep is checked before anything is launched (`sweep.launcher_problem`: Slurm
    without sbatch, a submitit sweep under torchrun), holds its folder's lock (a second sweep
    into the same folder is refused), and ends with its failed jobs (`sweep.sweep_report`)."""

    def __init__(self) -> None:
        self._held = ExitStack()  # the sweep folder's lock, from start to end of the sweep
        self._sigint: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """submitit pickles Hydra's callbacks into every job: the sweep's lock and Ctrl-C
        handler stay with the sweep's process."""
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()

    def on_run_start(self, config: Any, **kwargs: Any) -> None:
        _make_or_exit(config.hydra.run.dir)

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        target = str(config.hydra.launcher._target_)
        problem = launcher_problem(target)
        if problem:
            _exit_with(problem)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        _make_or_exit(sweep_dir)
        if os.environ.get("RANK", "0") == "0":  # torchrun's other processes run it in step
            try:
                self._held.enter_context(run_lock(sweep_dir))
            except RunFolderBusyError as err:
                _exit_with(str(err).replace("a running job", "a running sweep").replace(
                    "hydra.run.dir", "hydra.sweep.dir"))  # fmt: skip
            except CamReproError as err:
                _exit_with(str(err))
            clear_records(sweep_dir / RECORDS)
        if not target.endswith("BasicLauncher"):  # this process only waits for other processes
            self._sigint = signal.signal(signal.SIGINT, _stop_waiting(sweep_dir, target))

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        if self._sigint is not None:
            signal.signal(signal.SIGINT, self._sigint)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        lines = sweep_report(read_outcomes(sweep_dir / RECORDS))
        if os.environ.get("RANK", "0") == "0":  # read: the sweep folder keeps only the jobs'
            clear_records(sweep_dir / RECORDS)
        self._held.close()
        if lines:
            if os.environ.get("RANK", "0") == "0":
                print("\n".join(lines), file=sys.stderr)
            sys.exit(1)


def _stop_waiting(sweep_dir: Path, target: str) -> Callable[..., None]:
    """Ctrl-C while submitit's launcher waits for the jobs: one line, exit 130, not the
    traceback of submitit's wait loop. Local jobs got the same Ctrl-C; Slurm's go on."""
    if target.endswith("SlurmLauncher"):
        what = "stopped waiting for the Slurm jobs, which go on (scancel stops them)"
    else:
        what = "its jobs stop too; finished jobs keep their results"

    def stop(signum: int, frame: Any) -> None:
        print(
            f"interrupted: the sweep in {sweep_dir}: {what}; an interrupted cam-train job resumes "
            "with: cam-train <its overrides (its folder's overrides.yaml)> trainer.resume=auto "
            "hydra.run.dir=<its folder>",
            file=sys.stderr,
        )
        sys.exit(INTERRUPTED)

    return stop


def _exit_with(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def _make_or_exit(folder: Any) -> None:
    try:
        make_dir(Path(str(folder)))
    except CamReproError as err:
        _exit_with(str(err))


def user_errors(task: Callable[..., Any]) -> Callable[..., Any]:
    """Print an error the user can fix (bad config, bad file, offline, full disk) as one line,
    exit 1; an interrupted run as one line saying how to resume it, exit 130. In a job of a
    sweep, a failure (a user's error, or a bug with its traceback) is recorded for the sweep's
    summary instead of ending the process: the other jobs run and keep their results."""

    @functools.wraps(task)
    def run(*args: Any, **kwargs: Any) -> Any:
        job = sweep_job()
        try:
            if args:
                refuse_unknown_keys(args[0])
            result = task(*args, **kwargs)
        except RunInterruptedError as err:
            how = f"; resume with: {resume_command(err.resume)}" if err.resume else ""
            print(f"{err}{how}", file=sys.stderr)
            sys.exit(INTERRUPTED)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(INTERRUPTED)
        except CamReproError as err:
            return _failed(job, str(err))
        except OSError as err:  # a disk fault met below cam_repro's own writers (a library's)
            if err.errno in DISK_FAULTS and err.filename:
                return _failed(job, str(output_error(err.filename, err)))
            return _crashed(job, err)
        except Exception as err:
            return _crashed(job, err)
        if job is not None:
            job.record(None)
        return result

    return run


def _failed(job: SweepJob | None, message: str) -> None:
    """A user's error: one line (in a sweep job's own output file, or at the sweep's end)."""
    if job is None:
        _exit_with(message)
    if job.log is not None:
        print(f"error: {message}", file=sys.stderr)
    job.record(message)


def _crashed(job: SweepJob | None, err: Exception) -> None:
    """A bug: its traceback where the job's output goes; in a sweep, the other jobs go on."""
    if job is None:
        raise err
    traceback.print_exc()
    where = job.log or "printed above"
    bug = f"{type(err).__name__}: {first_line(err)}"
    job.record(f"{bug} (a bug, not your input; its traceback: {where})")
