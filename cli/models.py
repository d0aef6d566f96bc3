"""`cam-models`: build networks from their configs (configs/model/), run an input_size image through
them, and print their parameter counts, last conv maps and whether they have a CAM. With no model=,
the whole zoo; model.* overrides (e.g. model.width_mult=0.25) apply to each. Writes nothing."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from cam_repro.apps import variants
from cam_repro_cli import CONFIG_DIR, register, user_errors
from cam_repro_cli.help import Page, command_help

register("models")  # this app's schema only: a light start

EXAMPLES = (
    "cam-models  # the whole zoo at 224 px",
    "cam-models model=vgg16_gap model.width_mult=0.25 input_size=160",
    "cam-models model=tiny_gap num_classes=10 input_size=64  # the CPU benchmark network",
    "cam-models model=torchvision model.name=resnet18  # any torchvision classifier",
)


@command_help(Page("models", __doc__, EXAMPLES, "docs/models.md"))
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="models")
@user_errors
def main(cfg: DictConfig) -> None:
    from cam_repro.models import build_model, model_config  # torch: not needed for --help
    from cam_repro.models.summary import summarize, summary_table, zoo_order

    if OmegaConf.is_missing(cfg.model, "arch"):  # no model=: every variant, with model.* overrides
        overrides = [o for o in HydraConfig.get().overrides.task if o.startswith("model.")]
        models = [
            hydra.compose("models", overrides=[f"model={v}", *overrides]).model for v in variants()
        ]
    else:
        models = [cfg.model]
    rows = []
    for model_cfg in models:
        spec = model_config(model_cfg)
        rows.append(summarize(build_model(spec, cfg.num_classes), spec, cfg.input_size))
    print(summary_table(sorted(rows, key=zoo_order), cfg.input_size))


if __name__ == "__main__":
    main()
