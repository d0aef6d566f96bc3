"""`cam-synth`: write the embedded synthetic localization benchmark to `out` (design and reasons:
docs/synthetic.md), in the ILSVRC Kaggle layout (layout=ilsvrc: JPEG images, XML boxes,
LOC_val_solution.csv, val masks; read it back with data=imagenet data.root=OUT, or data=synthetic
for the default out) or in CUB-200-2011's (layout=cub: images.txt, bounding_boxes.txt, ...; a box
for every train and test image, no masks; read it back with data=synthetic data.source=cub
data.root=OUT). task=text: the weakly supervised text-detection set of Section 4.2 (classes no_text
and text, an <object> per word; read it back with data=synthetic data.root=OUT). task=vqa: scenes
of 2-5 shapes in named colours with template questions, in VQA v2's format (read it back with
data=synthetic_vqa data.root=OUT, and train with cam-train task=vqa). Writes only `out`."""

import hydra
from omegaconf import DictConfig

from cam_repro_cli import CONFIG_DIR, register, user_errors
from cam_repro_cli.help import Page, command_help

register("synth")  # this app's schema only: a light start

EXAMPLES = (
    "cam-synth  # the benchmark, to data/synthetic",
    "cam-synth out=data/synthetic-uniform evidence=uniform",
    "cam-synth out=data/synthetic-fine evidence=fine layout=cub two_object_prob=0 image_size=128 "
    "object_side=[0.3,0.6] key_part_size=[0.15,0.25]",
    "cam-synth task=text out=data/synthetic-text train_per_class=1500 val_per_class=250",
    "cam-synth task=vqa out=data/synthetic-vqa vqa.train_images=1000 vqa.val_images=200",
)


@command_help(Page("synth", __doc__, EXAMPLES, "docs/synthetic.md"))
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="synth")
@user_errors
def main(cfg: DictConfig) -> None:
    from cam_repro.data.synth_writer import generate  # numpy, Pillow: not needed for --help

    summary = generate(cfg)
    print(
        f"wrote {summary.train_images} train and {summary.val_images} val images "
        f"({summary.val_objects} val boxes) to {summary.out} in {summary.seconds:.1f} s\n"
        f"read it with: {summary.read_with}"
    )


if __name__ == "__main__":
    main()
