"""`cam-eval`: localization and classification errors of a trained network."""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cam_repro.evaluate.loop import evaluate_run
from cam_repro_cli import CONFIG_DIR, register, user_errors

register("eval")  # this app's schema only: a light start


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
@user_errors
def main(cfg: DictConfig) -> None:
    evaluate_run(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
