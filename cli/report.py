"""`cam-report`: the paper's Tables 1 and 2 from cam-eval runs, its Section 4 tables from
cam-features runs."""

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cam_repro.present.report import write_report
from cam_repro_cli import CONFIG_DIR, register, user_errors

register("report")  # this app's schema only: a light start

log = logging.getLogger("cam-report")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="report")
@user_errors
def main(cfg: DictConfig) -> None:
    out = cfg.out or HydraConfig.get().runtime.output_dir
    done = write_report(list(cfg.runs), Path(out), cfg.paper)
    log.info("%d runs in %d rows -> %s", done["runs"], done["groups"], done["out"])


if __name__ == "__main__":
    main()
