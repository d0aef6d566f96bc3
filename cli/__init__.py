"""Thin Hydra entry points: compose the config, call one cam_repro function."""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from cam_repro.errors import CamReproError
from cam_repro.schema import register_schemas

# configs/ sits beside cli/ in the repository (installed with `pip install -e .`).
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "configs")
if not Path(CONFIG_DIR, "model").is_dir():
    raise SystemExit(
        f"cam-repro: its config folder {CONFIG_DIR} is missing; install the repository with "
        "`pip install -e .` so the commands find configs/"
    )

register_schemas()


def run_stamp() -> str:
    """A run folder's name: the launch time, or torchrun's run id shared by all its processes.

    Each torchrun process composes the config itself, a moment apart; the time could differ
    between them, the run id (`--rdzv-id`, random with `--standalone`) does not.
    """
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "none")
    if "RANK" in os.environ and run_id != "none":
        return f"torchrun-{run_id}"
    return time.strftime("%Y-%m-%d_%H-%M-%S")


OmegaConf.register_new_resolver("run_stamp", run_stamp, replace=True)


def user_errors(task: Callable[..., Any]) -> Callable[..., Any]:
    """Print an error the user can fix (bad config, bad file, offline) as one line, exit 1."""

    @functools.wraps(task)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return task(*args, **kwargs)
        except CamReproError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(1)

    return run
