"""`cam-reproduce`: the embedded CAM reproduction in one command: write the synthetic set, train
every model (tiny_gap and tiny_gmp by default) with the same measured recipe, evaluate the last
checkpoints with cam-eval, draw the figures and write the paper's tables, then compare the rows
with the committed record (record_check.md). The defaults are the README's main job (GAP vs GMP
on the parts design, one seed); features=true and discovery=true add the Section 4 and 4.2
studies."""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cam_repro_cli import CONFIG_DIR, register, user_errors
from cam_repro_cli.help import Page, command_help

register("reproduce")  # this app's schema only: a light start

EXAMPLES = (
    "cam-reproduce  # the README's main job",
    "cam-reproduce designs=[parts,uniform] seeds=[0,1,2] ablation=[tiny_gap_8x8,tiny_gmp_8x8]",
    "cam-reproduce out=results/mine seeds=[0,1] jobs=1",
    "cam-reproduce features=true discovery=true  # Sections 4 and 4.2 too",
)


@command_help(Page("reproduce", __doc__, EXAMPLES, "docs/reproduction.md"))
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="reproduce")
@user_errors
def main(cfg: DictConfig) -> None:
    from cam_repro.reproduce.run import reproduce  # torch: not needed for --help

    reproduce(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
