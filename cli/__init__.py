"""Thin Hydra entry points: compose the config, call one cam_repro function."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
