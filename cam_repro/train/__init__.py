"""Training: the loop (`train`, `Trainer`), its config, optimizers and schedules, DDP under
torchrun. Checkpoints are read and written by cam_repro.models.checkpoint."""

from cam_repro.train.config import OptimConfig, TrainConfig, TrainerConfig, train_config
from cam_repro.train.trainer import Trainer, TrainingDivergedError, train, validate

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
