"""`cam-synth`: write the embedded synthetic localization benchmark (ILSVRC or CUB layout)."""

import hydra
from omegaconf import DictConfig

from cam_repro.data.synth_writer import generate
from cam_repro_cli import CONFIG_DIR, register, user_errors

register("synth")  # this app's schema only: a light start


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="synth")
@user_errors
def main(cfg: DictConfig) -> None:
    summary = generate(cfg)
    print(
        f"wrote {summary.train_images} train and {summary.val_images} val images "
        f"({summary.val_objects} val boxes) to {summary.out} in {summary.seconds:.1f} s\n"
        f"read it with: {summary.read_with}"
    )


if __name__ == "__main__":
    main()
