"""`cam-data`: read and check a dataset with the readers training and evaluation use, then open
every image once (decoded, or headers only with decode=false) and list the unreadable ones."""

import hydra
from omegaconf import DictConfig

from cam_repro.data import check_images, data_config, read_split
from cam_repro.runtime.errors import InputFileError
from cam_repro_cli import CONFIG_DIR, register, user_errors

register("data")  # this app's schema only: a light start


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="data_check")
@user_errors
def main(cfg: DictConfig) -> None:
    spec = data_config(cfg.data)
    failed = []
    for split in cfg.splits:
        data = read_split(spec, split)
        print(data.describe())
        check = check_images(
            data, cfg.decode, spec.num_workers, cfg.progress, spec.max_image_pixels
        )
        print(check.describe(listed=None))
        if check.bad:
            failed.append(f"{len(check.bad)} of {check.checked} images in {split}")
    names = ", ".join(
        f"{c} ({n})" for c, n in zip(data.classes[:3], data.class_names[:3], strict=True)
    )
    print(f"classes: {len(data.classes)}: {names}{', ...' if len(data.classes) > 3 else ''}")
    if failed:
        raise InputFileError(
            f"{' and '.join(failed)} are unreadable (listed above); fix or remove them, or train "
            "with data.bad_images=skip"
        )


if __name__ == "__main__":
    main()
