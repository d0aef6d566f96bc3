"""`cam-train`: train a network and validate it each epoch: one of the paper's networks (or the CPU
benchmark network, tiny_gap) on ILSVRC, CUB, any image folder or the synthetic set, with
checkpoints, resume, TensorBoard logs and torchrun (DDP). Every run writes into its own run folder
(hydra.run.dir): config.yaml, train.log, metrics.json, checkpoints/{last,best}.pt, tb/. The
defaults train tiny_gap on the synthetic set (cam-synth) with the measured recipe; for the paper's
networks pick model=, data= and optim=sgd (the released solver) or optim=finetune."""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cam_repro_cli import CONFIG_DIR, register, user_errors
from cam_repro_cli.help import Page, command_help

register("train")  # this app's schema only: a light start

EXAMPLES = (
    "cam-train  # tiny_gap on data/synthetic (write it first with cam-synth)",
    "cam-train -m model=tiny_gap,tiny_gmp seed=0,1,2  # a sweep: 6 runs, one folder each",
    "cam-train model=vgg16_gap model.pretrained=true optim=finetune data=imagenet "
    "data.root=/data/ILSVRC2012 trainer.epochs=10",
    "torchrun --nproc_per_node=8 $(which cam-train) model=googlenet_gap data=imagenet "
    "data.root=/data/ILSVRC2012 optim=sgd trainer.epochs=6  # DDP on 8 GPUs",
    "cam-train hydra.run.dir=outputs/train/my-run trainer.resume=auto  # continue a default run "
    "(any other run: its refusal prints the command that continues it)",
)


@command_help(Page("train", __doc__, EXAMPLES, "docs/training.md"))
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@user_errors
def main(cfg: DictConfig) -> None:
    from cam_repro.train.trainer import train  # torch: not needed for --help

    hydra = HydraConfig.get()
    train(cfg, Path(hydra.runtime.output_dir), overrides=list(hydra.overrides.task))


if __name__ == "__main__":
    main()
