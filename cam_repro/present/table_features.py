"""Section 4's tables from cam-features runs: the fine-grained table (table_finegrained.md), the
generic-features table (table_generic.md) and their runs' rows (features_summary.csv).

`features_rows` flattens features runs to one row per run, `aggregate_features` groups the seeds
of one setting (one run per network: present/table_rows.py), `table_finegrained` and
`table_generic` write markdown with the paper's numbers (present/paper.py) as "(paper)" rows.
Features runs on text data are the text detector's (present/table_discovery.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cam_repro.features.outputs import CROPS
from cam_repro.present.paper import (
    PAPER_CHOICES,
    PAPER_FEATURES_ORDER,
    PAPER_FINEGRAINED,
    PAPER_GENERIC,
    paper_rank,
)
from cam_repro.present.runs import FeaturesRun, Run, in_tables
from cam_repro.present.stats import group_by
from cam_repro.present.table_rows import (
    Notes,
    RunGroup,
    markdown_table,
    seed_of,
    undefined_columns,
    undigested,
)
from cam_repro.runtime.config import check_choice

FEATURES_SUMMARY_COLUMNS = (
    "dataset", "paper_name", "variant", "features", "crop", "classifier", "C", "weights",
    "trained_on", "seed", "accuracy", "mean_class_accuracy", "crop_box_iou50",
    "gt_known_loc_acc", "top1_loc_acc", "num_train", "num_test", "run", "weights_sha256",
    "undefined",
)  # fmt: skip
# A features row's metrics and the metrics.json keys they are read from (their "undefined" keys).
_FEATURES_KEYS = {
    "accuracy": ("accuracy",), "mean_class_accuracy": ("mean_class_accuracy",),
    "crop_box_iou50": ("crop_box_iou50",),
    "gt_known_loc_acc": ("localization.gt_known_loc_acc", "localization"),
    "top1_loc_acc": ("localization.top1_loc_acc", "localization"),
}  # fmt: skip
# How a row names weights other than a checkpoint's (cam-features `weights`).
WEIGHTS_SHOWN = {"pretrained": "pretrained", "file": "weights file", "random": "random weights"}


def features_rows(runs: Iterable[Run]) -> list[dict[str, Any]]:
    """One row per features run with FEATURES_SUMMARY_COLUMNS (the features tables are aggregated
    from these; `data_kind` rides along unwritten); eval runs (table_cam.summary_rows) and features
    runs on text data (table_discovery.discovery_rows) are passed over."""
    rows = []
    for run in runs:
        if not isinstance(run, FeaturesRun) or not in_tables(run):
            continue
        m = run.record
        loc = m.localization
        rows.append(
            {
                "dataset": run.dataset,
                "paper_name": run.model,
                "variant": m.variant,
                "features": str(m.features),
                "crop": m.crop,
                "classifier": m.classifier,
                "C": m.C,
                "weights": m.weights,
                "trained_on": m.trained_on,
                "seed": m.seed,
                "accuracy": m.accuracy,
                "mean_class_accuracy": m.mean_class_accuracy,
                "crop_box_iou50": m.crop_box_iou50,
                "gt_known_loc_acc": None if loc is None else loc.gt_known_loc_acc,
                "top1_loc_acc": None if loc is None else loc.top1_loc_acc,
                "num_train": m.num_train,
                "num_test": m.num_test,
                "run": str(run.path),
                "weights_sha256": m.weights_sha256,
                "data_kind": run.data.kind,
                "checkpoint": m.checkpoint,
                **undefined_columns(m.undefined, _FEATURES_KEYS),
            }
        )
    return sorted(
        rows, key=lambda r: (r["dataset"], _features_rank(r), CROPS.index(r["crop"]), seed_of(r))
    )


def _features_rank(row: dict[str, Any]) -> tuple:
    """The paper's generic-table rows first, in its order; then the paper's model order
    (paper_rank); then features kind, classifier, C and weights."""
    model = f"{row['paper_name']} {row['features']}"
    order = PAPER_FEATURES_ORDER
    first = order.index(model) if model in order else len(order)
    c = -1.0 if row["C"] is None else float(row["C"])
    return (first, paper_rank(row["paper_name"]), row["features"], str(row["classifier"]), c,
            str(row["weights"]), str(row["trained_on"]))  # fmt: skip


@dataclass
class FeaturesGroup(RunGroup):
    """Features runs of one network on one dataset with one crop and classifier (seeds)."""

    dataset: str
    paper_name: str
    features: str
    crop: str
    classifier: str | None
    C: float | None
    weights: str | None  # checkpoint | pretrained | file | random: random features are not ours
    trained_on: str | None  # the checkpoint's training data (a transfer, or the data itself)
    rows: list[dict[str, Any]] = field(default_factory=list)
    folded: list[list[dict[str, Any]]] = field(default_factory=list)

    @property
    def base(self) -> str:
        """The paper's way to name a row: 'GoogLeNet-GAP gap', 'AlexNet fc7'."""
        return f"{self.paper_name} {self.features}"

    @property
    def model(self) -> str:
        """`base`, with weights other than a checkpoint's: 'AlexNet fc7 (pretrained)', and where a
        checkpoint was trained: 'Tiny-GAP gap (trained on synthetic (parts))'."""
        if self.weights in (None, "checkpoint"):
            if self.trained_on is None:
                return self.base
            where = "this data" if self.trained_on == self.dataset else self.trained_on
            return f"{self.base} (trained on {where})"
        return f"{self.base} ({WEIGHTS_SHOWN.get(self.weights, self.weights)})"

    @property
    def classifier_text(self) -> str:
        """'svm, C 1' ('svm' when the run did not record C)."""
        name = self.classifier or "?"
        return name if self.C is None else f"{name}, C {self.C:g}"

    @property
    def is_cub(self) -> bool:
        return any(r["data_kind"] == "cub" for r in self.rows)


def aggregate_features(rows: Sequence[dict[str, Any]]) -> list[FeaturesGroup]:
    """Group features rows by (dataset, model, features, crop, classifier, C, weights, the data
    a checkpoint was trained on): the seeds of one setting; by dataset, then in the paper's row
    order, then by crop."""
    keys = ("dataset", "paper_name", "features", "crop", "classifier", "C", "weights", "trained_on")
    groups = []
    for key, members in group_by(rows, lambda r: tuple(r[k] for k in keys)).items():
        group = FeaturesGroup(*key, rows=list(members))
        group.fold()
        groups.append(group)
    return sorted(groups, key=lambda g: (g.dataset, _features_rank(g.rows[0]), CROPS.index(g.crop)))


def _by_row(
    groups: Iterable[FeaturesGroup], column: Callable[[FeaturesGroup], str]
) -> dict[tuple, dict[str, FeaturesGroup]]:
    """Groups arranged as table rows, (base, model, classifier) -> {column(group): group}, in the
    paper's row order (rows of one base model stay together)."""
    ordered = sorted(groups, key=lambda g: _features_rank(g.rows[0]))
    by_row = group_by(ordered, lambda g: (g.base, g.model, g.classifier_text))
    return {row: {column(g): g for g in members} for row, members in by_row.items()}


def _with_paper(ours: Sequence[tuple[str, list[str]]], paper: dict[str, list[str]]) -> list:
    """Our rows (base model, cells), each paper row right after the last of ours with its base
    model; paper rows without one of ours at the end."""
    body, left = [], dict(paper)
    for i, (base, cells) in enumerate(ours):
        body.append(cells)
        if (i + 1 == len(ours) or ours[i + 1][0] != base) and base in left:
            body.append(left.pop(base))
    return body + list(left.values())


def _accuracies(by: dict[str, FeaturesGroup], columns: Iterable[str], notes: Notes) -> list[str]:
    """Accuracy mean +- std of the group in each column, '' where there is none (n/a, noted,
    where it is undefined)."""
    return [by[c].cell("accuracy", f"accuracy ({c})", notes) if c in by else "" for c in columns]


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _seeds_text(groups: Iterable[FeaturesGroup], notes: Notes) -> str:
    """The seeds of a table row's groups, marked with their `run_notes` (duplicates folded...)."""
    groups = list(groups)
    seeds = sorted({s for g in groups for s in g.seeds if s >= 0})
    extra = list(dict.fromkeys(n for g in groups for n in g.run_notes()))
    return (" ".join(map(str, seeds)) or "-") + notes.marked(extra)


def table_finegrained(groups: Sequence[FeaturesGroup], paper: str = "auto") -> str | None:
    """The paper's fine-grained table (Section 4.1): accuracy on the full image, the CAM crop, the
    ground-truth crop and both concatenated, and how often the CAM box hits (IoU >= 0.5); one
    section per dataset with a crop other than the full image, and CUB. With `paper` auto the
    paper's row stands in CUB's section only. None if no dataset qualifies."""
    check_choice(paper, "paper", PAPER_CHOICES)
    sections = {
        data: section
        for data, section in group_by(groups, lambda g: g.dataset).items()
        if any(g.crop != "full" or g.is_cub for g in section)
    }
    if not sections:
        return None
    header = ["model", "classifier", "full image", "CAM crop", "GT crop", "full + CAM",
              "CAM box IoU>=0.5", "seeds"]  # fmt: skip
    lines = [
        "# Fine-grained recognition: accuracy (%) of a linear classifier on the network's "
        "features, higher is better (Section 4.1)",
        "",
        "CAM crop: the image cropped to its CAM's box; GT crop: to the ground-truth box; full + "
        "CAM: both feature vectors side by side. CAM box IoU>=0.5: % of test images whose CAM box "
        "has IoU >= 0.5 with a ground-truth box. Mean +- std over seeds; empty: no run.",
        "",
    ]
    for data, section in sections.items():
        notes = Notes()
        show = paper == "true" or (paper == "auto" and any(g.is_cub for g in section))
        body = _with_paper(_finegrained_rows(section, notes), _finegrained_paper() if show else {})
        lines += [f"## {data}", "", *markdown_table(header, body), ""]
        lines += notes.lines() + undigested(section)
    return "\n".join(lines)


def _finegrained_rows(section: Sequence[FeaturesGroup], notes: Notes) -> list:
    """A fine-grained section's rows of ours: (base model, cells), one per model and classifier."""
    ours = []
    for (base, model, classifier), by_crop in _by_row(section, lambda g: g.crop).items():
        cam = by_crop.get("cam")
        cells = [model, classifier, *_accuracies(by_crop, CROPS, notes)]
        hits = cam.cell("crop_box_iou50", "CAM box IoU>=0.5", notes) if cam else ""
        cells += [hits, _seeds_text(by_crop.values(), notes)]
        ours.append((base, cells))
    return ours


def _finegrained_paper() -> dict[str, list[str]]:
    """The paper's fine-grained rows (PAPER_FINEGRAINED), keyed by their base model."""
    return {
        model: [f"{model} (paper)", "svm", *[_number(ref.get(k)) for k in (*CROPS, "iou50")], ""]
        for model, ref in PAPER_FINEGRAINED.items()
    }


def table_generic(groups: Sequence[FeaturesGroup], paper: str = "auto") -> str | None:
    """The paper's generic-features table (Section 4): accuracy on the full image, one column per
    dataset, mean +- std over seeds; then GT-known / top-1 localization accuracy from the linear
    classifier's weights where the runs measured it. PAPER_GENERIC's entries for these datasets
    stand as "(paper)" rows unless `paper` is false (auto and true alike: they are keyed by the
    paper's datasets). None if no run used the full image."""
    check_choice(paper, "paper", PAPER_CHOICES)
    full = [g for g in groups if g.crop == "full"]
    if not full:
        return None
    datasets = sorted({g.dataset for g in full})
    header = ["model", "classifier", *datasets]
    rows = _by_row(full, lambda g: g.dataset)
    notes = Notes()
    ours = [
        (base, [model, classifier, *_accuracies(by_data, datasets, notes)])
        for (base, model, classifier), by_data in rows.items()
    ]
    paper_rows = _generic_paper(datasets) if paper != "false" else {}
    lines = [
        "# Generic localizable features: a linear classifier on the network's features (Section 4)",
        "",
        "## Accuracy (%) on the full image, higher is better",
        "",
        "Mean +- std over seeds; empty: no run.",
        "",
        *markdown_table(header, _with_paper(ours, paper_rows)),
        "",
        *notes.lines(),
        *undigested(full),
    ]
    return "\n".join(lines + _located_section(rows, datasets, header))


def _generic_paper(datasets: Sequence[str]) -> dict[str, list[str]]:
    """PAPER_GENERIC's rows for `datasets` (those it has a number for), keyed by model, in the
    paper's row order."""
    refs: dict[str, dict[str, float]] = {}
    for (data, model), value in PAPER_GENERIC.items():
        if data in datasets:
            refs.setdefault(model, {})[data] = value
    return {
        model: [f"{model} (paper)", "svm", *(_number(refs[model].get(d)) for d in datasets)]
        for model in sorted(refs, key=lambda m: ([*PAPER_FEATURES_ORDER, m].index(m), m))
    }


def _located_section(
    rows: dict[tuple, dict[str, FeaturesGroup]], datasets: Sequence[str], header: list[str]
) -> list[str]:
    """table_generic's localization part: GT-known / top-1 accuracy per dataset of the rows whose
    runs measured it ([] if none did)."""
    located, notes = [], Notes()
    for (_, model, classifier), by_data in rows.items():
        cells = [_located(by_data.get(d), notes) for d in datasets]
        if any(cells):
            located.append([model, classifier, *cells])
    if not located:
        return []
    return [
        "## Localization from the linear classifier's weights",
        "",
        "GT-known / top-1 localization accuracy (%) of the boxes of the CAMs that the "
        "classifier's weights make (each run's threshold and IoU level), higher is better.",
        "",
        *markdown_table(header, located),
        "",
        *notes.lines(),
    ]


def _located(group: FeaturesGroup | None, notes: Notes) -> str:
    """'GT-known / top-1' localization accuracy of a group (n/a, noted, where undefined), or ''
    if its runs did not measure it."""
    if group is None:
        return ""
    keys = ("gt_known_loc_acc", "top1_loc_acc")
    if all(group.stat(k) is None and not group.undefined(k) for k in keys):
        return ""
    gt_known = group.cell("gt_known_loc_acc", "GT-known loc. accuracy", notes)
    return f"{gt_known} / {group.cell('top1_loc_acc', 'top-1 loc. accuracy', notes)}"
