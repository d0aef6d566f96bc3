"""The one run set-up of cam-train, cam-eval and cam-visualize: process group and device, CPU
threads, the run folder and its log file; torn down when the run ends, however."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from cam_repro.runtime import distributed as D
from cam_repro.runtime.config import RuntimeConfig

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
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return handler


@contextmanager
def run_context(
    runtime: RuntimeConfig, run_dir: str | Path | None = None, log_name: str | None = None
) -> Iterator[RunContext]:
    """Join torchrun's process group (if launched by it), pick the device, set the CPU threads;
    on rank 0 create `run_dir` and log into `run_dir/log_name`; other ranks log warnings only.
    Leaving the block (normally or by an error) closes the log file and the process group."""
    env = D.setup(runtime.device, runtime.dist_backend)
    handler = None
    try:
        if runtime.threads:
            torch.set_num_threads(runtime.threads)
        if not env.is_main:
            logging.getLogger().setLevel(logging.WARNING)
        elif run_dir is not None and log_name is not None:
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            handler = attach_log_file(Path(run_dir) / log_name)
        yield RunContext(env, runtime)
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()
        D.teardown()
