"""`cam-data`: read and check a dataset with the readers training and evaluation use (ILSVRC in
either layout, CUB, an image folder, wsolevaluation's metadata (data=wsol), the synthetic set):
print its classes, images, boxes and sizes per split, then open every image once (in
data.num_workers processes) and list the unreadable ones; exit 1 if there is one. decode=true
decodes every image, as training does; decode=false reads the headers only: much faster, but it
misses a file whose pixel data alone is truncated."""

import hydra
from omegaconf import DictConfig

from cam_repro.runtime.errors import ConfigError, InputFileError
from cam_repro_cli import CONFIG_DIR, register, user_errors
from cam_repro_cli.help import Page, command_help

register("data")  # this app's schema only: a light start

EXAMPLES = (
    "cam-data data=synthetic  # the set cam-synth writes",
    "cam-data data.root=/data/ILSVRC2012 decode=false data.num_workers=16",
    "cam-data data=cub data.root=/data/CUB_200_2011 splits=[val]",
    "cam-data data=folder data.root=/data/my_photos  # class folders per split",
    "cam-data data=wsol data.dataset=OpenImages data.root=/data/OpenImages "
    "data.metadata=/data/wsolevaluation/metadata splits=[val]",
)


@command_help(Page("data", __doc__, EXAMPLES, "docs/data.md"))
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="data_check")
@user_errors
def main(cfg: DictConfig) -> None:
    from cam_repro.data import check_images, data_config, read_split  # not needed for --help
    from cam_repro.data.check import describe_split, shared_images

    if not cfg.splits:
        raise ConfigError("splits: no split named; give one or more, e.g. splits=[train,val]")
    spec = data_config(cfg.data)
    failed, splits = [], {}
    for split in cfg.splits:
        data = splits[split] = read_split(spec, split)
        print(describe_split(data))
        check = check_images(
            data, cfg.decode, spec.num_workers, cfg.progress, spec.max_image_pixels
        )
        print(check.describe(listed=None))
        if check.bad:
            failed.append(f"{len(check.bad)} of {check.checked} images in {split}")
    for line in shared_images(splits):
        print(f"warning: {line}")
    what = "answers" if data.questions is not None else "classes"
    names = ", ".join(
        c if c == n else f"{c} ({n})"
        for c, n in zip(data.classes[:3], data.class_names[:3], strict=True)
    )
    print(f"{what}: {len(data.classes)}: {names}{', ...' if len(data.classes) > 3 else ''}")
    if failed:
        raise InputFileError(
            f"{' and '.join(failed)} are unreadable (listed above); fix or remove them, or train "
            "with data.bad_images=skip"
        )


if __name__ == "__main__":
    main()
