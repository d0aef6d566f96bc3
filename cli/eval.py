"""`cam-eval`: classification and localization errors of a trained network (the paper's Table 2
protocol on ILSVRC), MaxBoxAccV2 and PxAP (Choe et al. 2020) and, with sweep=true, the paper rule's
accuracy at every CAM threshold. The network, its classes and data config come from a cam-train
checkpoint (data.* keys given here replace the checkpoint's), or from model= and data= (any
classifier: model=torchvision|module|file). Writes into its run folder: metrics.json,
predictions.csv, table.md, eval.log, config.yaml; sweep.csv with sweep=true."""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cam_repro_cli import CONFIG_DIR, register, user_errors
from cam_repro_cli.help import Page, command_help

register("eval")  # this app's schema only: a light start

EXAMPLES = (
    "cam-eval checkpoint=outputs/train/RUN/checkpoints/best.pt",
    "cam-eval checkpoint=RUN/checkpoints/best.pt normalize=minmax threshold=0.3 all_boxes=true",
    "cam-eval checkpoint=RUN/checkpoints/best.pt sweep=true hydra.run.dir=outputs/eval/VAL_RUN",
    "cam-eval checkpoint=RUN/checkpoints/best.pt threshold_from=outputs/eval/VAL_RUN  "
    "# thresholds chosen on another run",
    "cam-eval model=vgg16 model.pretrained=true localizer=backprop data=imagenet "
    "data.root=/data/ILSVRC2012",
)


@command_help(Page("eval", __doc__, EXAMPLES, "docs/evaluation.md"))
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
@user_errors
def main(cfg: DictConfig) -> None:
    from cam_repro.evaluate.loop import evaluate_run  # torch: not needed for --help

    evaluate_run(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
