"""`cam-data`: read and check a dataset with the readers training and evaluation use."""

import hydra
from omegaconf import DictConfig

from cam_repro.data import read_split
from cam_repro_cli import CONFIG_DIR, register, user_errors

register("data")  # this app's schema only: a light start


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="data_check")
@user_errors
def main(cfg: DictConfig) -> None:
    for split in cfg.splits:
        data = read_split(cfg.data, split)
        print(data.describe())
    names = ", ".join(
        f"{c} ({n})" for c, n in zip(data.classes[:3], data.class_names[:3], strict=True)
    )
    print(f"classes: {len(data.classes)}: {names}{', ...' if len(data.classes) > 3 else ''}")


if __name__ == "__main__":
    main()
