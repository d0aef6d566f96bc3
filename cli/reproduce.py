"""`cam-reproduce`: the embedded reproduction, from nothing to tables and figures."""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cam_repro.reproduce.run import reproduce
from cam_repro_cli import CONFIG_DIR, register, user_errors

register("reproduce")  # this app's schema only: a light start


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="reproduce")
@user_errors
def main(cfg: DictConfig) -> None:
    reproduce(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
