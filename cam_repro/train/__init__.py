"""Training: the run (`train`, `Trainer`), one pass over the data (`validate`), its config,
optimizers and schedules, DDP under torchrun. Checkpoints are read and written by
cam_repro.models.checkpoint."""

from cam_repro.train.config import OptimConfig, TrainConfig, TrainerConfig, train_config
from cam_repro.train.epoch import validate
from cam_repro.train.guards import TrainingDivergedError
from cam_repro.train.trainer import Trainer, train

__all__ = [
    "OptimConfig",
    "TrainConfig",
    "Trainer",
    "TrainerConfig",
    "TrainingDivergedError",
    "train",
    "train_config",
    "validate",
]
