"""The paper's networks, original and modified for CAM, built from a config.

A stable public module: `build_model`, `model_config` and the names below. They are imported on
first use, so that the config schema (models/config.py) loads without torch.
"""

from __future__ import annotations

from cam_repro.runtime.lazy import lazy_exports

_EXPORTS = {
    "ARCHS": "config",
    "ModelConfig": "config",
    "model_config": "config",
    "paper_name": "config",
    "variant_name": "config",
    "CAMNet": "heads",
    "FCNet": "heads",
    "GlobalPool": "heads",
    "build_model": "zoo",
    "ACoLNet": "methods",
    "ADL": "methods",
    "SPGNet": "methods",
    "apply_method": "methods",
    "method_problem": "method_config",
    "WeightsUnavailableError": "weights",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
