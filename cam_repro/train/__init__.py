"""Training: the run (`train`, `Trainer`), one pass over the data (`validate`), its config,
optimizers and schedules, DDP under torchrun. Checkpoints are read and written by
cam_repro.models.checkpoint.

The names below are imported on first use, so that the config schema (train/config.py, which
`cam-train --help` reads) loads without torch.
"""

from __future__ import annotations

from cam_repro.runtime.lazy import lazy_exports

_EXPORTS = {
    "OptimConfig": "config",
    "TrainConfig": "config",
    "TrainerConfig": "config",
    "train_config": "config",
    "validate": "epoch",
    "TrainingDivergedError": "guards",
    "Trainer": "trainer",
    "train": "trainer",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
