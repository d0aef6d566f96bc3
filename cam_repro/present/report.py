"""`cam-report`: collect runs (present/runs.py) and write the report folder, the only module of
cam-report that writes files.

Each family of runs gets its files, only when it has runs: eval runs the Section 3 tables
(present/table_cam.py, table_comparisons.py; the WSOL methods beside CAM: table_methods.py;
torch-cam's post-hoc maps beside CAM, cam-eval localizer=torchcam: table_posthoc.py), features
runs the Section 4 tables (table_features.py), text-detector and VQA runs Section 4.2's
discovery.md (table_discovery.py).
Every run is read and checked before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cam_repro.present.paper import PAPER_CHOICES
from cam_repro.present.runs import EvalRun, Run, collect_runs, in_tables, read_sweeps
from cam_repro.present.table_cam import (
    SUMMARY_COLUMNS,
    SWEEP_POINTS,
    aggregate,
    group_csv,
    summary_rows,
    table1,
    table2,
    threshold_table,
)
from cam_repro.present.table_comparisons import comparisons, comparisons_csv, comparisons_markdown
from cam_repro.present.table_discovery import (
    DISCOVERY_COLUMNS,
    aggregate_discovery,
    discovery_markdown,
    discovery_rows,
)
from cam_repro.present.table_features import (
    FEATURES_SUMMARY_COLUMNS,
    aggregate_features,
    features_rows,
    table_finegrained,
    table_generic,
)
from cam_repro.present.table_methods import (
    method_rows,
    method_sections,
    methods_csv,
    methods_markdown,
)
from cam_repro.present.table_posthoc import (
    posthoc_csv,
    posthoc_markdown,
    posthoc_rows,
    posthoc_sections,
)
from cam_repro.present.table_rows import to_csv
from cam_repro.runtime.config import check_choice
from cam_repro.runtime.files import make_dir, write_text_atomic


@dataclass
class ReportConfig:
    """`cam-report`: collect cam-eval runs into tables laid out like the paper's Tables 1 and 2,
    and cam-features runs into its fine-grained and generic-features tables (Section 4)."""

    runs: list[str] = field(default_factory=list)  # eval/features run folders, metrics.json, sweeps
    out: str | None = None  # null: the run dir
    paper: str = "auto"  # the paper's numbers beside ours: auto (its data only) | true | false


def _write(out: Path, files: dict[str, str]) -> list[str]:
    """Write `files` ({name: text}) into the folder `out`; their names, in order."""
    make_dir(out)
    for name, text in files.items():
        write_text_atomic(out / name, text)
    return list(files)


def write_eval_tables(runs: Sequence[Run], out: Path, paper: str = "auto") -> dict[str, Any]:
    """Write the eval runs among `runs` into `out`: summary.csv (one row per run), table1.md /
    table2.md and tables.csv (grouped, mean +- std), thresholds.md (GT-known error vs the CAM
    threshold, from the runs' sweep.csv), comparisons.md / .csv (paired differences, when the runs
    have pairs), table_methods.md / .csv (when the runs include WSOL methods other than CAM),
    table_posthoc.md / .csv (when the runs include torch-cam's maps, cam-eval localizer=torchcam:
    beside our CAM's and Grad-CAM's of the same networks). Returns the number of groups,
    comparisons, methods sections and post-hoc sections and the files written."""
    rows = summary_rows(runs)
    groups = aggregate(rows)
    files = {
        "summary.csv": to_csv(rows, SUMMARY_COLUMNS),
        "table1.md": table1(groups, paper),
        "table2.md": table2(groups, paper),
        "tables.csv": group_csv(groups),
    }
    curves = read_sweeps([r["run"] for g in groups for r in g.rows], SWEEP_POINTS)
    by_threshold = threshold_table(groups, curves, SWEEP_POINTS)
    if by_threshold:
        files["thresholds.md"] = by_threshold
    # GAP - GMP and map sizes between CAM's own networks: a method's runs share their network's
    # variant, pool and map size, and are compared with CAM in table_methods.md instead
    trained = {str(run.path) for run in runs if isinstance(run, EvalRun) and run.method != "cam"}
    pairs = comparisons([g for g in groups if not any(r["run"] in trained for r in g.rows)])
    if pairs:
        files["comparisons.md"] = comparisons_markdown(pairs)
        files["comparisons.csv"] = comparisons_csv(pairs)
    sections = method_sections(method_rows(runs))
    if sections:  # runs of WSOL methods beside CAM's
        files["table_methods.md"] = methods_markdown(sections)
        files["table_methods.csv"] = methods_csv(sections)
    posthoc = posthoc_sections(posthoc_rows(runs))
    if posthoc:  # torch-cam's maps beside our CAM's
        files["table_posthoc.md"] = posthoc_markdown(posthoc)
        files["table_posthoc.csv"] = posthoc_csv(posthoc)
    return {"groups": len(groups), "comparisons": len(pairs), "methods": len(sections),
            "posthoc": len(posthoc), "files": _write(out, files)}  # fmt: skip


def write_features_tables(runs: Sequence[Run], out: Path, paper: str = "auto") -> dict[str, Any]:
    """Write the features runs among `runs` into `out`: features_summary.csv (one row per run),
    table_finegrained.md (datasets with crops, and CUB) and table_generic.md (full-image accuracy
    per dataset, and localization from the classifier's weights), each when it has rows. Returns
    the number of groups and the files written."""
    rows = features_rows(runs)
    if not rows:
        return {"groups": 0, "files": []}
    groups = aggregate_features(rows)
    files = {"features_summary.csv": to_csv(rows, FEATURES_SUMMARY_COLUMNS)}
    for name, text in (("table_finegrained.md", table_finegrained(groups, paper)),
                       ("table_generic.md", table_generic(groups, paper))):  # fmt: skip
        if text:
            files[name] = text
    return {"groups": len(groups), "files": _write(out, files)}


def write_discovery_tables(runs: Sequence[Run], out: Path) -> dict[str, Any]:
    """Write the text-detector and VQA runs among `runs` into `out`: discovery.csv (one row per
    run) and discovery.md (grouped, mean +- std), when there are any. Returns the number of
    groups and the files written."""
    rows = discovery_rows(runs)
    if not rows:
        return {"groups": 0, "files": []}
    groups = aggregate_discovery(rows)
    files = {
        "discovery.csv": to_csv(rows, DISCOVERY_COLUMNS),
        "discovery.md": discovery_markdown(groups),
    }
    return {"groups": len(groups), "files": _write(out, files)}


def write_report(paths: Sequence[str | Path], out: str | Path, paper: str = "auto") -> dict:
    """Collect the eval and features runs in `paths` and write their tables into `out`
    (`write_eval_tables`, `write_features_tables`, `write_discovery_tables`: each only for runs
    of its kind). Returns what was written, for the caller to log."""

    check_choice(paper, "paper", PAPER_CHOICES)  # a bad value fails before any reading
    runs = collect_runs(paths)  # every file read and checked before anything is written
    out = Path(out)
    make_dir(out)
    done: dict[str, Any] = {"runs": len(runs), "groups": 0, "comparisons": 0, "methods": 0,
                            "posthoc": 0, "files": []}  # fmt: skip
    if any(isinstance(run, EvalRun) and in_tables(run) for run in runs):
        written = write_eval_tables(runs, out, paper)
        done["groups"] += written["groups"]
        done["comparisons"] = written["comparisons"]
        done["methods"] = written["methods"]
        done["posthoc"] = written["posthoc"]
        done["files"] += written["files"]
    for written in (write_features_tables(runs, out, paper), write_discovery_tables(runs, out)):
        done["groups"] += written["groups"]
        done["files"] += written["files"]
    return {**done, "out": out}
