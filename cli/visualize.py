"""`cam-visualize`: figures of class activation maps and threshold sweeps."""

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cam_repro.visualize import visualize_run
from cam_repro_cli import CONFIG_DIR, register, user_errors

register("visualize")  # this app's schema only: a light start

log = logging.getLogger("cam-visualize")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="visualize")
@user_errors
def main(cfg: DictConfig) -> None:
    out = Path(HydraConfig.get().runtime.output_dir)
    written = visualize_run(cfg, out)
    log.info("%d figure(s) in %s", len(written), out)


if __name__ == "__main__":
    main()
