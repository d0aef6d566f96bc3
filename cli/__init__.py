"""Thin Hydra entry points: register the app's schema, compose its config, call one cam_repro
function. Errors a user can fix are printed as one line (exit 1); Ctrl-C as one line (exit 130),
with the command that resumes the run where there is one."""

from __future__ import annotations

import errno
import functools
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from cam_repro.apps import CONFIG_DIR, register
from cam_repro.runtime.errors import CamReproError, RunInterruptedError
from cam_repro.runtime.files import make_dir, output_error

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
    command = Path(sys.argv[0]).name
    if not command.startswith("cam-"):  # a submitit job runs submitit's script: cli/<job>.py's
        command = f"cam-{hydra.job.name}"
    return shlex.join([command, *given, *extra])


class RunFolderCheck(Callback):
    """Creates the run folder (a sweep's parent folder) before Hydra does, so that a place that
    cannot be written (read-only, full, no permission) is one line and exit 1, not Hydra's
    traceback. Configured in the apps' configs under `hydra.callbacks`."""

    def on_run_start(self, config: Any, **kwargs: Any) -> None:
        _make_or_exit(config.hydra.run.dir)

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        _make_or_exit(config.hydra.sweep.dir)


def _make_or_exit(folder: Any) -> None:
    try:
        make_dir(Path(str(folder)))
    except CamReproError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


def user_errors(task: Callable[..., Any]) -> Callable[..., Any]:
    """Print an error the user can fix (bad config, bad file, offline, full disk) as one line,
    exit 1; an interrupted run as one line saying how to resume it, exit 130."""

    @functools.wraps(task)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return task(*args, **kwargs)
        except RunInterruptedError as err:
            how = f"; resume with: {resume_command(err.resume)}" if err.resume else ""
            print(f"{err}{how}", file=sys.stderr)
            sys.exit(INTERRUPTED)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(INTERRUPTED)
        except CamReproError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(1)
        except OSError as err:  # a disk fault met below cam_repro's own writers (a library's)
            if err.errno not in DISK_FAULTS or not err.filename:
                raise
            print(f"error: {output_error(err.filename, err)}", file=sys.stderr)
            sys.exit(1)

    return run
