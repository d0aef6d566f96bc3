"""configs/experiment/: every sweep composes, job by job, into the networks it says."""

from __future__ import annotations

import itertools

import pytest
from hydra import compose, initialize_config_dir

from cam_repro.evaluate.config import eval_config
from cam_repro.train.config import train_config
from cam_repro_cli import CONFIG_DIR

# experiment -> (app, overrides it needs, the networks of its jobs)
EXPERIMENTS = {
    "imagenet_cam": ("train", ["data.root=/data/ILSVRC2012"],
                     {"vgg16_gap", "googlenet_gap", "googlenet_gmp", "alexnet_gap",
                      "alexnet_star_gap"}),
    "imagenet_originals": ("eval", ["data.root=/data/ILSVRC2012"],
                           {"alexnet", "vgg16", "googlenet"}),
    "synthetic_gap_gmp": ("train", [], {"tiny_gap", "tiny_gmp"}),
    "synthetic_uniform": ("train", [], {"tiny_gap", "tiny_gmp"}),
    "synthetic_resolution": ("train", [], {"tiny_gap", "tiny_gap_8x8", "tiny_gmp", "tiny_gmp_8x8"}),
}  # fmt: skip


def sweep_jobs(app: str, experiment: str, extra: list[str]) -> list[list[str]]:
    """The overrides of each job of the experiment's sweep, as `-m` expands them."""
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose(app, [f"+experiment={experiment}", *extra], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    axes = [[f"{key}={value}" for value in str(params[key]).split(",")] for key in params]
    return [list(combo) for combo in itertools.product(*axes)]


@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
def test_experiment_jobs_compose(experiment: str) -> None:
    app, extra, networks = EXPERIMENTS[experiment]
    variants = set()
    for job in sweep_jobs(app, experiment, extra):
        with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
            cfg = compose(app, [f"+experiment={experiment}", *extra, *job])
        spec = train_config(cfg) if app == "train" else eval_config(cfg)
        model = spec.model
        variants.add(job[0].split("=", 1)[1])
        if experiment.startswith("imagenet"):
            assert model.pretrained is True  # torchvision's weights
            assert (spec.data.source if app == "train" else cfg.data.source) == "imagenet"
        if experiment == "imagenet_cam":
            assert (spec.optim.lr, spec.optim.step_epochs, spec.trainer.epochs) == (0.001, 2.0, 6)
        if experiment == "synthetic_uniform":
            assert spec.data.root == "data/synthetic-uniform"
    assert variants == networks
