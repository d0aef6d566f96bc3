"""Evaluation (`cam-eval`): the config (config.py), the maps and boxes of a batch (localizer.py),
the loop over a split (loop.py) and the output files with their readers (outputs.py).

`evaluate_run` and `Evaluator` are loaded on first use, so that readers of the output files
(cam-report) do not load the loop.
"""

from typing import Any

__all__ = ["Evaluator", "evaluate_run"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from cam_repro.evaluate import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
