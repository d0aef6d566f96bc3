"""`cam-train`: train a network on an ImageNet-style dataset (one process, or many via torchrun)."""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cam_repro.train.trainer import train
from cam_repro_cli import CONFIG_DIR, register, user_errors

register("train")  # this app's schema only: a light start


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@user_errors
def main(cfg: DictConfig) -> None:
    train(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
