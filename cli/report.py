"""`cam-report`: tables laid out like the paper's Tables 1 and 2 from cam-eval runs (table1.md,
table2.md, tables.csv: mean +- std over seeds; summary.csv: one row per run; comparisons.md/.csv:
GAP - GMP and larger - smaller map, paired by seed; thresholds.md), its Section 4 tables from
cam-features runs (table_finegrained.md, table_generic.md, features_summary.csv) and Section 4.2's
text detector and VQA runs (discovery.md, discovery.csv), with the paper's numbers beside ours on
its data (ILSVRC, CUB). `runs` takes run folders, their metrics.json, or sweep folders."""

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cam_repro_cli import CONFIG_DIR, register, user_errors
from cam_repro_cli.help import Page, command_help

register("report")  # this app's schema only: a light start

log = logging.getLogger("cam-report")

EXAMPLES = (
    "cam-report runs=[outputs/eval/RUN_A,outputs/eval/RUN_B]",
    "cam-report runs=[outputs/multirun/SWEEP] out=results/mine  # every run of a sweep",
    "cam-report runs=[outputs/eval/RUN_A,outputs/features/RUN_B] paper=false",
)


@command_help(Page("report", __doc__, EXAMPLES, "docs/evaluation.md"))
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="report")
@user_errors
def main(cfg: DictConfig) -> None:
    from cam_repro.present.report import write_report  # not needed for --help

    out = cfg.out or HydraConfig.get().runtime.output_dir
    done = write_report(list(cfg.runs), Path(out), cfg.paper)
    log.info("%d runs in %d rows -> %s", done["runs"], done["groups"], done["out"])


if __name__ == "__main__":
    main()
