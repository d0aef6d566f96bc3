"""`cam-features`: a linear classifier on a network's features of another dataset (Section 4)."""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cam_repro.features.run import features_run
from cam_repro_cli import CONFIG_DIR, register, user_errors

register("features")  # this app's schema only: a light start


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="features")
@user_errors
def main(cfg: DictConfig) -> None:
    features_run(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
