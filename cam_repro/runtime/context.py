"""The one run set-up of cam-train, cam-eval and cam-visualize: process group and device, CPU
threads, the run folder (locked for the run's life, cleaned of a killed run's temp files) and its
log file; torn down when the run ends, however."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from cam_repro.runtime import distributed as D
from cam_repro.runtime.config import RuntimeConfig
from cam_repro.runtime.errors import ConfigError
from cam_repro.runtime.files import output_error, remove_stale_temps
from cam_repro.runtime.lock import run_lock

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] %(message)s"


@dataclass(frozen=True)
class RunContext:
    """A running job: this process's place and device, and how the network runs."""

    env: D.Dist
    runtime: RuntimeConfig

    @property
    def device(self) -> torch.device:
        return self.env.device

    @property
    def is_main(self) -> bool:
        return self.env.is_main


def attach_log_file(path: Path) -> logging.Handler:
    """Also log (INFO and up) into `path`; remove the returned handler when done."""
    try:
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as err:
        raise output_error(path, err) from None
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return handler


@contextmanager
def run_context(
    runtime: RuntimeConfig,
    run_dir: str | Path | None = None,
    log_name: str | None = None,
    results: Sequence[str] = (),
    overwrite: bool = False,
) -> Iterator[RunContext]:
    """Join torchrun's process group (if launched by it), pick the device, set the CPU threads.

    On rank 0, with a `run_dir`: take the folder's run lock (a second live process is refused),
    remove temp files a killed run left there, refuse a folder that already holds results unless
    `overwrite` (`results`: the files a finished run leaves, the marker of a finished run first,
    e.g. metrics.json; with `overwrite` they are removed, the marker first, so a half-removed run
    never looks finished), and log into `run_dir/log_name`. Other ranks log warnings only.
    Leaving the block (normally or by an error) closes the log file, releases the lock and
    leaves the process group."""
    env = D.setup(runtime.device, runtime.dist_backend)
    with ExitStack() as stack:
        stack.callback(D.teardown)
        if runtime.threads:
            torch.set_num_threads(runtime.threads)
        if not env.is_main:
            logging.getLogger().setLevel(logging.WARNING)
        elif run_dir is not None:
            folder = Path(run_dir)
            stack.enter_context(run_lock(folder))
            if results and (folder / results[0]).exists() and not overwrite:
                raise ConfigError(
                    f"{folder} already holds results ({results[0]}); choose another folder "
                    "(hydra.run.dir=...) or replace them with overwrite=true"
                )
            for name in results:
                (folder / name).unlink(missing_ok=True)
            if log_name is not None:
                handler = attach_log_file(folder / log_name)
                stack.callback(_detach, handler)
            for tmp in remove_stale_temps(folder):
                logging.getLogger(__name__).info("removed %s, left by a killed write", tmp)
        yield RunContext(env, runtime)


def _detach(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()
