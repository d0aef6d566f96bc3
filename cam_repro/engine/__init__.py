"""Training: the loop, checkpoints, optimizers and schedules, DDP under torchrun."""

from cam_repro.engine.checkpoint import load_checkpoint, load_model, save_checkpoint
from cam_repro.engine.config import OptimConfig, TrainConfig, TrainerConfig, train_config
from cam_repro.engine.trainer import TrainingDivergedError, evaluate, train

__all__ = [
    "OptimConfig",
    "TrainConfig",
    "TrainerConfig",
    "TrainingDivergedError",
    "evaluate",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "train",
    "train_config",
]
