"""`cam-features`: a linear classifier (the paper's linear SVM) on a network's pooled features of
another dataset's train split, its test accuracy, and localization from its weights (Section 4:
generic features, fine-grained crops, CAMs from the classifier's weights). The network and its
data config come from a cam-train checkpoint (data.* keys given here replace the checkpoint's), or
from model=. Writes into its run folder: metrics.json, classifier.npz, per_class.csv,
predictions.csv, features.log, config.yaml, cache/features_<split>_<part>.npz."""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cam_repro_cli import CONFIG_DIR, register, user_errors
from cam_repro_cli.help import Page, command_help

register("features")  # this app's schema only: a light start

EXAMPLES = (
    "cam-features checkpoint=outputs/train/RUN/checkpoints/last.pt data.root=DIR",
    "cam-features checkpoint=RUN/checkpoints/last.pt data=folder data.root=DIR crop=cam",
    "cam-features model=googlenet_gap model.weights_path=FILE data=cub data.root=DIR crop=gt",
    "cam-features model=alexnet model.pretrained=true features=fc7 data=folder data.root=DIR",
    "cam-features -m checkpoint=RUN/checkpoints/last.pt crop=full,cam,gt classifier.C=0.1,1,10",
)


@command_help(Page("features", __doc__, EXAMPLES, "docs/features.md"))
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="features")
@user_errors
def main(cfg: DictConfig) -> None:
    from cam_repro.features.run import features_run  # torch, scikit-learn: not for --help

    features_run(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
