"""Thin Hydra entry points: register the app's schema, compose its config, call one cam_repro
function. Errors a user can fix are printed as one line (exit 1)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from cam_repro.apps import CONFIG_DIR, register
from cam_repro.runtime.errors import CamReproError

__all__ = ["CONFIG_DIR", "register", "user_errors"]


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
