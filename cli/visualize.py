"""`cam-visualize`: the paper's CAM figures: from a checkpoint, cam_<image>.png per image (the
image; the top-1 CAM with its box in red and the ground truth in green; the top-k classes' CAMs with
their names and scores), compare.png when compare=[...] names more runs, units_<variant>_<class>.png
(a class's largest-weight units); sweep.png from cam-eval runs' threshold sweeps (sweeps=[...]);
linear_cams.png from a cam-features run (features_run=DIR; on text data text_cams.png too); and a
VQA checkpoint's vqa_panels.png (questions with the predicted and true answers' CAMs)."""

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cam_repro_cli import CONFIG_DIR, register, user_errors
from cam_repro_cli.help import Page, command_help

register("visualize")  # this app's schema only: a light start

log = logging.getLogger("cam-visualize")

EXAMPLES = (
    "cam-visualize model=torchvision model.name=resnet50 model.pretrained=true images=[photos]",
    "cam-visualize checkpoint=RUN/checkpoints/last.pt num_images=8",
    "cam-visualize checkpoint=GAP/checkpoints/last.pt compare=[GMP/checkpoints/last.pt]",
    "cam-visualize sweeps=[outputs/eval/RUN_A,outputs/eval/RUN_B]",
    "cam-visualize features_run=outputs/features/TEXT_RUN",
)


@command_help(Page("visualize", __doc__, EXAMPLES, "docs/figures_tables.md"))
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="visualize")
@user_errors
def main(cfg: DictConfig) -> None:
    from cam_repro.visualize import visualize_run  # torch, matplotlib: not needed for --help

    out = Path(HydraConfig.get().runtime.output_dir)
    written = visualize_run(cfg, out)
    log.info("%d figure(s) in %s", len(written), out)


if __name__ == "__main__":
    main()
