"""Tables laid out like the paper's, from `cam-eval` and `cam-features` runs, with its numbers.

`collect_runs` reads runs' metrics.json: an eval run's records its protocol, a features run's says
`"kind": "features"`, a VQA model's eval run `"kind": "vqa"`. For eval runs (Tables 1 and 2),
`summary_rows` flattens them to one row per run (the summary.csv the tables are aggregated from);
`aggregate` groups runs of the same model, data and protocol (several seeds -> mean +- std);
`table1` / `table2` / `comparisons` write markdown. Every row of table2.md and tables.csv says how
it was measured (`Group.provenance`): the CAM threshold and how it was chosen (metrics.json's
`thresholds`: fixed, oracle on the scored split, or held out with threshold_from), the
normalisation, the box rule, the blacklist and its checkpoints' SHA-256. Paired comparisons give
the mean difference with a 95% t interval over seeds (cam_repro.present.stats).

What a seed is: one network's weights (metrics.json's `checkpoint_sha256`, cam-features'
`weights_sha256`). Every group folds repeated evaluations of one checkpoint into one run
(`_Runs.fold`), noted with the folders it folded, so they never count as extra seeds nor make a
spread; two different checkpoints that claim one seed number stay two runs, noted; runs without a
digest cannot be told apart and each counts, noted too. A metric a run could not measure is null
in its metrics.json with a reason under "undefined" (evaluate.outputs.with_undefined): its cell is
n/a with the reason in a note under the table, a mean over the runs that have it says over how
many ("12.34 +- 0.56 (2 of 3 runs)"), and the run's other metrics stay. A threshold is called held
out only when cam-eval checked that its images were disjoint from the scored ones
(outputs.is_held_out); older runs' read "not checked".
For features runs (Section 4), `features_rows`, `aggregate_features`, `table_finegrained` and
`table_generic` do the same.
Section 4.2's pattern discovery has its own report, discovery.md / .csv (`discovery_rows`,
`aggregate_discovery`, `discovery_markdown`): the text detector (eval and features runs whose data's
task is text, which stay out of the other tables) and VQA runs. The paper's numbers live here and
nowhere else (PAPER_TABLE1, PAPER_TABLE2, PAPER_FINEGRAINED, PAPER_GENERIC; it gives none for
Section 4.2).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cam_repro.evaluate.outputs import (
    check_metrics,
    is_held_out,
    read_sweep,
    read_thresholds,
    undefined_reasons,
)
from cam_repro.features.outputs import CROPS, check_features_metrics, is_features_metrics
from cam_repro.present.stats import Paired, paired
from cam_repro.runtime.config import check_choice
from cam_repro.runtime.errors import ConfigError, InputFileError
from cam_repro.runtime.files import make_dir, read_json, write_text_atomic

# Zhou et al., CVPR 2016, ILSVRC 2012 val, error % (top-1, top-5). Keys are our paper names
# (cam_repro.models.config.paper_name; "Backprop on X" for cam-eval localizer=backprop;
# "Grad-CAM on X" for localizer=gradcam has no paper numbers: Grad-CAM came after the paper).
PAPER_TABLE1: dict[str, tuple[float, float]] = {  # classification
    "VGGnet-GAP": (33.4, 12.2),
    "GoogLeNet-GAP": (35.0, 13.2),
    "AlexNet*-GAP": (44.9, 20.9),
    "AlexNet-GAP": (51.1, 26.3),
    "GoogLeNet-GMP": (35.6, 13.9),
    "VGGnet": (31.2, 11.4),
    "GoogLeNet": (31.9, 11.3),
    "AlexNet": (42.6, 19.5),
    "NIN": (41.9, 19.6),
}
PAPER_TABLE2: dict[str, tuple[float, float]] = {  # localization (GoogLeNet: CAM at 7x7)
    "GoogLeNet-GAP": (56.40, 43.00),
    "VGGnet-GAP": (57.20, 45.14),
    "GoogLeNet": (60.09, 49.34),
    "AlexNet*-GAP": (63.75, 49.53),
    "AlexNet-GAP": (67.19, 52.16),
    "NIN": (65.47, 54.19),
    "Backprop on GoogLeNet": (61.31, 50.55),
    "Backprop on VGGnet": (61.12, 51.46),
    "Backprop on AlexNet": (65.17, 52.64),
    "GoogLeNet-GMP": (57.78, 45.26),
}
# Zhou et al. 2016, Section 4.1 and its fine-grained table (Table 5 in arXiv 1512.04150):
# CUB-200-2011, a linear SVM on GoogLeNet-GAP's GAP features, accuracy % on the full image
# ("full"), the CAM crop ("cam") and the ground-truth box ("gt"); "iou50": % of test images whose
# CAM box has IoU >= 0.5 with the ground-truth box (Section 4.1's text). Keys are the tables' row
# models: paper name + features kind.
PAPER_FINEGRAINED: dict[str, dict[str, float]] = {
    "GoogLeNet-GAP gap": {"full": 63.0, "cam": 67.8, "gt": 70.5, "iou50": 41.0},
}
# The paper's generic-features table (Section 4: SUN397, MIT Indoor67, Scene15, SUN Attribute,
# Caltech101, Caltech256, Stanford Action40, UIUC Event8; rows AlexNet fc7, GoogLeNet avgpool,
# GoogLeNet-GAP gap), accuracy %. Empty on purpose: no copy of the paper's text was at hand to
# check its numbers against, and none is quoted from memory. To add one, check it against the
# paper and key it by (the dataset's name as cam-features writes data.name, the row's model):
# ("SUN397", "GoogLeNet-GAP gap"): ACCURACY. table_generic shows each as a "(paper)" row.
PAPER_GENERIC: dict[tuple[str, str], float] = {}
_CUB = PAPER_FINEGRAINED["GoogLeNet-GAP gap"]
# The paper's other figures, quoted in reports' notes: ILSVRC test top-5 localization error and
# CUB-200-2011 accuracy from GoogLeNet-GAP features.
PAPER_NOTES = (
    "Paper, ILSVRC 2014 test top-5 loc. error: GoogLeNet-GAP 42.9 (37.1 with the two-box "
    "heuristic), Backprop 46.4; fully supervised GoogLeNet 26.7, OverFeat 29.9, AlexNet 34.2. "
    f"CUB-200-2011 (GoogLeNet-GAP features): {_CUB['full']:.1f}% accuracy on the full image, "
    f"{_CUB['cam']:.1f}% on the CAM crop, {_CUB['gt']:.1f}% on the ground-truth box."
)

# How a run was measured (Group.provenance): after the metrics in summary.csv and tables.csv.
PROVENANCE_COLUMNS = (
    "threshold_chosen", "threshold", "threshold_from", "maxboxacc_threshold_chosen",
    "maxboxacc_threshold_from", "normalize", "box_rule", "blacklist",
)  # fmt: skip
SUMMARY_COLUMNS = (
    "variant", "pool", "seed", "cls_top1_err", "cls_top5_err", "loc_top1_err", "loc_top5_err",
    "gt_known_loc_err", "maxboxacc_v2", "evidence", "map_size", "paper_name", "data", "protocol",
    "run", "maxboxacc_v2_heldout", *PROVENANCE_COLUMNS, "checkpoint_sha256", "undefined",
)  # fmt: skip
METRICS = (
    "cls_top1_err", "cls_top5_err", "loc_top1_err", "loc_top5_err", "gt_known_loc_err",
    "maxboxacc_v2",
)  # fmt: skip
# Protocol settings that make runs incomparable; a row's name shows those that differ from the
# paper's defaults.
_PROTOCOL_DEFAULTS = {
    "box_rule": "paper", "threshold": 0.2, "normalize": "max", "all_boxes": False,
    "ten_crop": False, "iou_threshold": 0.5, "gradcam_layer": None,
}  # fmt: skip
PAPER_CHOICES = ("auto", "true", "false")  # show the paper's numbers: auto = on its data only
# Row order: the paper's rows first, in its order; then ours by name.
_ORDER = list(dict.fromkeys([*PAPER_TABLE2, *PAPER_TABLE1]))

# cam-features runs: the keys the tables need, the crops (the fine-grained table's columns), the
# summary's columns, and the paper's generic-table rows, first in the features tables.
FEATURES_SUMMARY_COLUMNS = (
    "dataset", "paper_name", "variant", "features", "crop", "classifier", "C", "weights",
    "trained_on", "seed", "accuracy", "mean_class_accuracy", "crop_box_iou50",
    "gt_known_loc_acc", "top1_loc_acc", "num_train", "num_test", "run", "weights_sha256",
    "undefined",
)  # fmt: skip
_FEATURES_ORDER = ["AlexNet fc7", "GoogLeNet avgpool", "GoogLeNet-GAP gap"]
# A features row's metrics and the metrics.json keys they are read from (their "undefined" keys).
_FEATURES_KEYS = {
    "accuracy": ("accuracy",), "mean_class_accuracy": ("mean_class_accuracy",),
    "crop_box_iou50": ("crop_box_iou50",),
    "gt_known_loc_acc": ("localization.gt_known_loc_acc", "localization"),
    "top1_loc_acc": ("localization.top1_loc_acc", "localization"),
}  # fmt: skip


@dataclass
class ReportConfig:
    """`cam-report`: collect cam-eval runs into tables laid out like the paper's Tables 1 and 2,
    and cam-features runs into its fine-grained and generic-features tables (Section 4)."""

    runs: list[str] = field(default_factory=list)  # eval/features run folders, metrics.json, sweeps
    out: str | None = None  # null: the run dir
    paper: str = "auto"  # the paper's numbers beside ours: auto (its data only) | true | false


@dataclass
class _RunFolder:
    """A run folder and its metrics.json."""

    path: Path
    metrics: dict[str, Any]

    @property
    def data(self) -> dict[str, Any]:
        """What the run's numbers are on (metrics.json's `data`)."""
        return self.metrics.get("data") or {}

    @property
    def task(self) -> str:
        """What the data serves (dataset_kind's "task"): classes | text | vqa; runs written
        before the task was recorded served classes."""
        return str(self.data.get("task") or "classes")

    @property
    def protocol(self) -> str:
        """The protocol settings that differ from the paper's, e.g. 'threshold 0.3', or ''; a
        threshold chosen on a held-out run reads 'threshold from val of X' (its seeds' values
        differ, and are one row)."""
        given = self.metrics.get("protocol") or {}
        paper = (self.metrics.get("thresholds") or {}).get("paper_rule") or {}
        parts = []
        for key, default in _PROTOCOL_DEFAULTS.items():
            if key == "threshold" and paper.get("chosen") == "heldout":
                parts.append(f"threshold from {source_label(paper)}")
            elif key in given and given[key] != default:
                parts.append(f"{key.replace('_', ' ')} {given[key]}")
        return ", ".join(parts)


@dataclass
class EvalRun(_RunFolder):
    """One cam-eval run."""

    @property
    def dataset(self) -> str:
        """'ILSVRC', 'CUB', 'synthetic (parts)', 'synthetic (parts, family 1)' or a folder
        dataset's name: what the numbers are on (the paper's numbers go with 'ILSVRC')."""
        kind = self.data.get("kind")
        if kind is None:  # written before cam-eval recorded it: tell real data by its reader
            kind = "cub" if str(self.data.get("source", "")).startswith("CUB") else "ilsvrc"
        if kind == "synthetic":  # the name tells the families apart (older runs have none)
            return self.data.get("name") or f"synthetic ({self.data.get('evidence') or 'unknown'})"
        if kind in ("folder", "wsol"):  # wsolevaluation's: "CUB test (wsolevaluation)"
            return str(self.data.get("name") or kind)
        return {"ilsvrc": "ILSVRC", "cub": "CUB"}.get(kind, kind)

    @property
    def name(self) -> str:
        """The paper's name of the model, with the protocol changes in parentheses."""
        name = str(self.metrics.get("paper_name") or self.metrics.get("variant") or "?")
        return f"{name} ({self.protocol})" if self.protocol else name


@dataclass
class FeaturesRun(_RunFolder):
    """One cam-features run."""

    @property
    def dataset(self) -> str:
        """data.name: 'CUB-200-2011', 'SUN397', 'synthetic (fine)', ..."""
        return str(self.data.get("name") or self.data.get("kind") or "?")


@dataclass
class VQARun(_RunFolder):
    """One cam-eval run of a VQA model (cam_repro.evaluate.vqa; metrics.json `kind: vqa`)."""


Run = EvalRun | FeaturesRun | VQARun

# A VQA model's cam-eval metrics.json (cam_repro.evaluate.vqa.vqa_metrics writes it; checked here,
# without torch, for cam-report): its kind, and what discovery.md reads.
VQA_KIND = "vqa"
VQA_REQUIRED = ("answer_accuracy", "vqa_accuracy", "pointing_game", "iou_rate", "data")
VQA_MAPS = ("predicted", "other_question", "centre", "true_answer")  # in the tables' order


def is_vqa_metrics(metrics: Any) -> bool:
    """A VQA model's cam-eval metrics.json (`"kind": "vqa"`)."""
    return isinstance(metrics, dict) and metrics.get("kind") == VQA_KIND


def check_vqa_metrics(path: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """`metrics` (read from `path`, a VQA cam-eval metrics.json) if it has what discovery.md
    reads; one-line errors naming `path` if not."""
    missing = [key for key in VQA_REQUIRED if key not in metrics]
    if missing:
        raise InputFileError(f"{path}: lacks {', '.join(missing)}")
    for key in ("pointing_game", "iou_rate", "data", "by_type"):
        if key in metrics and not isinstance(metrics[key], dict):
            raise InputFileError(f"{path}: {key} is not a mapping")
    for key in ("answer_accuracy", "vqa_accuracy"):
        value = metrics[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputFileError(f"{path}: {key} {value!r} is not a number")
    return metrics


def _run(path: Path, metrics: Any) -> Run:
    """The run of metrics.json `path` with content `metrics` (clear errors if it is not one)."""
    if is_features_metrics(metrics):
        return FeaturesRun(path.parent, check_features_metrics(path, metrics))
    if is_vqa_metrics(metrics):
        return VQARun(path.parent, check_vqa_metrics(path, metrics))
    return EvalRun(path.parent, check_metrics(path, metrics))


def read_run(path: Path) -> Run:
    """The cam-eval (classification or VQA) or cam-features run whose metrics.json is `path`
    (clear errors otherwise)."""
    return _run(path, read_json(path))


def _is_eval_run(metrics: Any) -> bool:
    """A cam-eval metrics.json, a VQA model's too: it records the protocol (a cam-train run's
    does not)."""
    return isinstance(metrics, dict) and "protocol" in metrics


def _in_tables(run: Run) -> bool:
    """An eval or features run of the Section 3 / 4 tables: not VQA, not the text detector
    (those go to discovery.md)."""
    return not isinstance(run, VQARun) and run.task not in ("text", "vqa")


def collect_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Every cam-eval (classification or VQA) and cam-features run in `paths`: run folders,
    metrics.json files, or folders (e.g. a multirun sweep) searched recursively. Folder searches
    pass over metrics.json files that are neither (cam-train runs'); one that cannot be read or
    parsed, found or named, is an error naming it (never a run silently left out of a mean)."""
    if not paths:
        raise ConfigError(
            "no runs given: cam-report runs=[DIR, ...] (eval or features run folders, or sweeps)"
        )
    found: dict[Path, Run] = {}  # each file read once, in the order given
    for given in paths:
        path = Path(given)
        if path.is_file():
            found.setdefault(path, read_run(path))
        elif path.is_dir():
            hits = {}
            for p in sorted(path.rglob("metrics.json")):
                metrics = read_json(p)  # a corrupt or unreadable file stops the report
                if _is_eval_run(metrics) or is_features_metrics(metrics):
                    hits[p] = metrics
            if not hits:
                raise InputFileError(
                    f"{path}: no cam-eval or cam-features metrics.json in this folder or below "
                    "(cam-train runs have their own: run cam-eval or cam-features on their "
                    "checkpoints and report those runs)"
                )
            for p, metrics in hits.items():
                found.setdefault(p, _run(p, metrics))
        else:
            raise InputFileError(f"{path}: no such file or folder")
    return list(found.values())


def summary_rows(runs: Iterable[Run]) -> list[dict[str, Any]]:
    """One row per eval run with SUMMARY_COLUMNS (the tables are aggregated from these); features
    runs (`features_rows`) and text and VQA runs (`discovery_rows`) are passed over."""
    rows = []
    for run in runs:
        if not isinstance(run, EvalRun) or not _in_tables(run):
            continue
        m = run.metrics
        rows.append(
            {
                "variant": m.get("variant"),
                "pool": m.get("pool"),
                "seed": m.get("seed"),
                **{key: m.get(key) for key in METRICS},
                "evidence": run.data.get("evidence"),
                "map_size": m.get("map_size"),
                "paper_name": m.get("paper_name"),
                "data": run.dataset,
                "protocol": run.protocol,
                "run": str(run.path),
                "maxboxacc_v2_heldout": m.get("maxboxacc_v2_heldout"),
                **run_provenance(m),
                "checkpoint_sha256": m.get("checkpoint_sha256"),
                "checkpoint": m.get("checkpoint"),  # rides along unwritten: "-" without one
                **_undefined_columns(m, {k: (k,) for k in (*METRICS, "maxboxacc_v2_heldout")}),
            }
        )
    return sorted(rows, key=lambda r: (r["data"], _rank(r["paper_name"]), r["protocol"], _seed(r)))


def _undefined_columns(metrics: dict[str, Any], keys: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """A row's `undefined` column ('key: reason; ...', None if none) and its `reasons` (rides
    along unwritten: {row key: reason}) from metrics.json's "undefined"; `keys` maps each row key
    to the metrics.json keys it is read from (the first one listed there counts)."""
    why = undefined_reasons(metrics)
    reasons = {}
    for row_key, names in keys.items():
        found = [why[name] for name in names if name in why]
        if found:
            reasons[row_key] = found[0]
    text = "; ".join(f"{key}: {reason}" for key, reason in why.items())
    return {"undefined": text or None, "reasons": reasons}


def _chosen(entry: dict[str, Any]) -> str | None:
    """A `thresholds` entry's `chosen`, "unchecked" for a threshold from another run whose images
    were not checked to be disjoint from the scored ones (cam-eval before that check)."""
    chosen = entry.get("chosen")
    return "unchecked" if chosen == "heldout" and not is_held_out(entry) else chosen


def source_label(entry: dict[str, Any]) -> str:
    """Where a held-out threshold came from, from its `thresholds` entry: 'val of CUB', or the
    dataset's name alone when it names the split ('CUB val (wsolevaluation)')."""
    split, data = entry.get("split"), entry.get("data")
    if not data:
        return str(split or entry.get("from") or "?")
    if not split or str(split) in str(data).split():
        return str(data)
    return f"{split} of {data}"


def run_provenance(metrics: dict[str, Any]) -> dict[str, Any]:
    """How an eval run was measured, as PROVENANCE_COLUMNS: the paper rule's threshold and how it
    was chosen (fixed | heldout, from where), MaxBoxAcc's (oracle | heldout), the normalisation,
    box rule and blacklist. metrics.json without `thresholds` (older runs): the paper rule fixed at
    protocol.threshold, MaxBoxAcc the oracle."""
    record = read_thresholds(metrics)
    paper = record["paper_rule"]
    box = record.get("maxboxacc") or {}
    box_chosen = sorted({str(_chosen(entry)) for entry in box.values()})
    if not box and metrics.get("maxboxacc_v2") is not None:  # no best_threshold: the oracle's
        box_chosen = ["oracle"]
    box_heldout = [e for e in box.values() if e.get("chosen") == "heldout"]
    given = metrics.get("protocol") or {}
    data = metrics.get("data") or {}
    listing, left_out = data.get("blacklist"), metrics.get("num_blacklisted")
    blacklist = "none"
    if listing:
        blacklist = Path(str(listing)).name + (f" ({left_out} images)" if left_out else "")
    return {
        "threshold_chosen": _chosen(paper),
        "threshold": paper.get("value"),
        "threshold_from": source_label(paper) if paper.get("chosen") == "heldout" else None,
        "maxboxacc_threshold_chosen": " / ".join(box_chosen) or None,
        "maxboxacc_threshold_from": source_label(box_heldout[0]) if box_heldout else None,
        "normalize": given.get("normalize"),
        "box_rule": given.get("box_rule"),
        "blacklist": blacklist,
    }


def _seed(row: dict[str, Any]) -> int:
    return -1 if row["seed"] is None else int(row["seed"])


def _rank(name: str) -> tuple[int, str]:
    return (_ORDER.index(name), "") if name in _ORDER else (len(_ORDER), name)


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV text of `rows` with `columns`; floats to 4 decimals, None as empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            ["" if row.get(c) is None else f"{row[c]:.4f}" if isinstance(row[c], float) else row[c]
             for c in columns]
        )  # fmt: skip
    return out.getvalue()


# --- aggregation --------------------------------------------------------------------------------


@dataclass
class Stat:
    """Mean and sample standard deviation (None with one value) of a metric over seeds; `of`:
    the runs it was taken over, when some of them have no value (undefined there)."""

    values: list[float]
    of: int | None = None

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def std(self) -> float | None:
        n = len(self.values)
        if n < 2:
            return None
        return math.sqrt(sum((v - self.mean) ** 2 for v in self.values) / (n - 1))

    def text(self, digits: int = 2) -> str:
        """'12.34' or '12.34 +- 0.56', then '(2 of 3 runs)' when taken over fewer than `of`."""
        text = f"{self.mean:.{digits}f}"
        if self.std is not None:
            text += f" +- {self.std:.{digits}f}"
        if self.of is not None and len(self.values) < self.of:
            text += f" ({len(self.values)} of {self.of} runs)"
        return text


def _stat(rows: Sequence[dict[str, Any]], metric: str) -> Stat | None:
    """The Stat of `metric` over the rows that have it (saying over how many of the rows); None
    if none has."""
    values = [float(r[metric]) for r in rows if r.get(metric) is not None]
    return Stat(values, len(rows)) if values else None


def _weights_digest(row: dict[str, Any]) -> str | None:
    """What makes a seed: the SHA-256 of the network's weights (cam-eval's checkpoint_sha256,
    cam-features' weights_sha256); None when the run recorded none."""
    return row.get("checkpoint_sha256") or row.get("weights_sha256") or None


def _undigested(groups: Iterable[_Runs]) -> list[str]:
    """The line under a table for its rows of several runs where some recorded no weights
    digest: repeated evaluations among those cannot be found, so each counts ([] if none)."""
    count = sum(sum(_weights_digest(r) is None for r in g.rows) for g in groups if len(g.rows) > 1)
    if not count:
        return []
    return [
        f"{count} runs of rows with several runs recorded no weights digest (zoo models, or "
        "runs written before digests): repeated evaluations of one network among them cannot be "
        "told apart, so each is counted as a seed.",
        "",
    ]


class _Notes:
    """Numbered notes under a table: `mark(text)` gives the text's '[n]' (one per distinct text),
    `lines()` the notes."""

    def __init__(self) -> None:
        self.marks: dict[str, str] = {}

    def mark(self, text: str) -> str:
        return self.marks.setdefault(text, f"[{len(self.marks) + 1}]")

    def lines(self) -> list[str]:
        return [f"- {mark} {text}" for text, mark in self.marks.items()] + [""] * bool(self.marks)


class _Runs:
    """What every table group of runs (one per seed, usually) offers: a metric's mean +- std and
    the seeds; `rows` is its runs' flat rows, one per network (`fold`), `folded` the repeated
    evaluations folded into them."""

    rows: list[dict[str, Any]]
    folded: list[list[dict[str, Any]]]

    def stat(self, metric: str) -> Stat | None:
        return _stat(self.rows, metric)

    @property
    def seeds(self) -> list[int]:
        return sorted(_seed(r) for r in self.rows)

    def undefined(self, metric: str) -> dict[str, list[str]]:
        """{reason: the runs' folders} of the runs where `metric` is undefined."""
        out: dict[str, list[str]] = {}
        for r in self.rows:
            reason = (r.get("reasons") or {}).get(metric)
            if reason is not None and r.get(metric) is None:
                out.setdefault(reason, []).append(str(r["run"]))
        return out

    def fold(self) -> None:
        """Keep one run per network weights (`_weights_digest`; the first in row order): repeated
        evaluations of one checkpoint are one seed, not several, and make no spread. The folded
        ones stay in `folded`, each list headed by the run kept."""
        kept, by_digest = [], {}
        for row in self.rows:
            digest = _weights_digest(row)
            if digest is None or digest not in by_digest:
                kept.append(row)
            if digest is not None:
                by_digest.setdefault(digest, []).append(row)
        self.rows = kept
        self.folded = [rows for rows in by_digest.values() if len(rows) > 1]

    def run_notes(self) -> list[str]:
        """What a reader must know about the runs counted: duplicates folded, one seed number
        claimed by different networks (runs without a digest: `_undigested`, under the table)."""
        notes = []
        for first, *others in self.folded:
            metrics = [k for k, v in first.items() if isinstance(v, float)]
            differ = [k for k in metrics if any(o.get(k) != first[k] for o in others)]
            agree = f"they differ in {', '.join(differ)}" if differ else "the same numbers"
            notes.append(
                f"checkpoint {_weights_digest(first)[:12]} evaluated {len(others) + 1} times "
                f"({', '.join(str(r['run']) for r in (first, *others))}): counted once, the first "
                f"folder's numbers shown ({agree})"
            )
        by_seed: dict[int, list[str]] = {}
        for r in self.rows:
            if r.get("seed") is not None:
                by_seed.setdefault(int(r["seed"]), []).append((_weights_digest(r) or "?")[:12])
        for seed, digests in by_seed.items():
            if len(digests) > 1:
                notes.append(
                    f"seed {seed} is claimed by {len(digests)} different networks (checkpoints "
                    f"{', '.join(digests)}): each counted as a run"
                )
        return notes

    def seeds_cell(self, notes: _Notes) -> str:
        """The number of runs (networks), marked with `run_notes` when there are any."""
        extra = self.run_notes()
        return str(len(self.rows)) + (f" {notes.mark('; '.join(extra))}" if extra else "")

    def cell(self, metric: str, label: str, notes: _Notes) -> str:
        """`metric`'s mean +- std, or n/a; marked with a note where it is undefined in some run
        (the reasons and those runs' folders)."""
        text = _cell(self.stat(metric))
        why = self.undefined(metric)
        if why:
            count = sum(len(runs) for runs in why.values())
            reasons = "; ".join(f"{reason} ({', '.join(runs)})" for reason, runs in why.items())
            text += " " + notes.mark(f"{label} undefined in {count} of {len(self.rows)} runs: "
                                     f"{reasons}")  # fmt: skip
        return text


@dataclass
class Group(_Runs):
    """Runs of one model on one dataset under one protocol (usually several seeds)."""

    data: str
    name: str  # paper name, with protocol changes
    paper_name: str
    variant: str
    pool: str | None
    map_size: str | None
    evidence: str | None
    protocol: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    folded: list[list[dict[str, Any]]] = field(default_factory=list)

    def shared(self, key: str) -> str | None:
        """A provenance item over the group's runs: their distinct values joined by ' / '."""
        values = [str(r[key]) for r in self.rows if r.get(key) is not None]
        return " / ".join(dict.fromkeys(values)) or None

    @property
    def thresholds(self) -> str:
        """The paper rule's threshold of each run, in seed order ('-': box_rule=release)."""
        return " ".join("-" if r.get("threshold") is None else f"{r['threshold']:g}"
                        for r in self.rows)  # fmt: skip

    @property
    def checkpoints(self) -> str:
        """The first 12 hex digits of each run's checkpoint SHA-256, in seed order: '-' for a
        run without a checkpoint (a zoo model), '?' for one evaluated before digests."""
        return " ".join(
            r["checkpoint_sha256"][:12] if r.get("checkpoint_sha256")
            else "?" if r.get("checkpoint") else "-"
            for r in self.rows
        )  # fmt: skip

    @property
    def provenance(self) -> dict[str, str | None]:
        """PROVENANCE_COLUMNS and `checkpoints` of the group (tables.csv's columns)."""
        out = {key: self.shared(key) for key in PROVENANCE_COLUMNS}
        return {**out, "threshold": self.thresholds, "checkpoints": self.checkpoints}

    def note(self) -> str:
        """table2.md's footnote: how the row was measured, in words."""
        p = self.provenance
        values = sorted(set(p["threshold"].split()), key=lambda v: (v == "-", v))
        if p["box_rule"] == "release":
            threshold = "the release rule's thresholds (20, 100, 110 of 255)"
        elif p["threshold_chosen"] in ("heldout", "unchecked"):
            per_seed = " (per seed)" if len(self.rows) > 1 and len(values) > 1 else ""
            how = ("held out" if p["threshold_chosen"] == "heldout" else "another run, not "
                   "checked to be held out: written by cam-eval before it checked")  # fmt: skip
            threshold = (f"threshold {p['threshold']}{per_seed}, each the best GT-known "
                         f"accuracy on {p['threshold_from']} ({how})")  # fmt: skip
        else:
            threshold = f"threshold {' / '.join(values)}, fixed"
        box = p["maxboxacc_threshold_chosen"]
        if box is None:
            box_text = "no MaxBoxAccV2"
        elif box == "heldout":
            box_text = (f"MaxBoxAccV2 at the best thresholds on the scored split (oracle), its "
                        f"held-out column at those of {p['maxboxacc_threshold_from']}")  # fmt: skip
        elif box is not None and "unchecked" in box:
            box_text = (f"MaxBoxAccV2 at the best thresholds on the scored split (oracle), its "
                        f"other column at those of {p['maxboxacc_threshold_from']} (not checked "
                        "to be held out)")  # fmt: skip
        else:
            box_text = "MaxBoxAccV2 at the best thresholds on the scored split (oracle)"
        blacklist = "no blacklist" if p["blacklist"] == "none" else f"blacklist {p['blacklist']}"
        return (f"{threshold}; {box_text}; normalize {p['normalize']}; box rule "
                f"{p['box_rule']}; {blacklist}; checkpoints {p['checkpoints']}")  # fmt: skip


def aggregate(rows: Sequence[dict[str, Any]]) -> list[Group]:
    """Group summary rows by (data, paper name, protocol), in the paper's row order; one run per
    checkpoint in each (`_Runs.fold`)."""
    groups: dict[tuple, Group] = {}
    for row in rows:
        key = (row["data"], row["paper_name"], row["protocol"])
        if key not in groups:
            name = row["paper_name"] + (f" ({row['protocol']})" if row["protocol"] else "")
            groups[key] = Group(
                row["data"], name, row["paper_name"], row["variant"], row["pool"],
                row["map_size"], row["evidence"], row["protocol"],
            )  # fmt: skip
        groups[key].rows.append(row)
    for group in groups.values():
        group.fold()
    return sorted(
        groups.values(), key=lambda g: (g.data, _rank(g.paper_name), g.protocol)
    )  # fmt: skip


def _cell(stat: Stat | None) -> str:
    return "n/a" if stat is None else stat.text()


def _paper_cells(group: Group, table: dict[str, tuple[float, float]], top1: str, top5: str):
    """'paper top-1 / top-5' and 'ours - paper' cells (only when the protocol is the paper's)."""
    ref = table.get(group.paper_name)
    if ref is None or group.protocol:
        return ["-", "-"]
    ours = [group.stat(top1), group.stat(top5)]
    pairs = zip(ours, ref, strict=True)
    diffs = [f"{s.mean - r:+.2f}" if s is not None else "n/a" for s, r in pairs]
    return [f"{ref[0]:.2f} / {ref[1]:.2f}", " / ".join(diffs)]


def _markdown(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in body]


def _show_paper(groups: Sequence[Group], paper: str) -> bool:
    """Whether to print the paper's numbers: 'auto' (on ILSVRC only), 'true' or 'false'."""
    check_choice(paper, "paper", PAPER_CHOICES)
    return paper == "true" or (paper == "auto" and any(g.data == "ILSVRC" for g in groups))


def _sections(groups: Sequence[Group]) -> dict[str, list[Group]]:
    out: dict[str, list[Group]] = {}
    for g in groups:
        out.setdefault(g.data, []).append(g)
    return out


def table1(groups: Sequence[Group], paper: str = "auto") -> str:
    """Table 1 (classification error, top-1 / top-5), one section per dataset."""
    lines = ["# Table 1: classification error (%), lower is better", ""]
    for data, section in _sections(groups).items():
        show = _show_paper(section, paper)
        header = ["model", "top-1 err", "top-5 err", "seeds"]
        if show:
            header += ["paper top-1 / top-5", "ours - paper"]
        body, notes = [], _Notes()
        for g in section:
            row = [g.name, g.cell("cls_top1_err", "top-1 err", notes),
                   g.cell("cls_top5_err", "top-5 err", notes), g.seeds_cell(notes)]  # fmt: skip
            if show:
                row += _paper_cells(g, PAPER_TABLE1, "cls_top1_err", "cls_top5_err")
            body.append(row)
        lines += [f"## {data}", "", *_markdown(header, body), ""]
        lines += notes.lines() + _undigested(section)
    return "\n".join(lines)


TABLE2_NOTE = (
    "protocol: how each row was measured, in its note under the table: the CAM threshold of the "
    "paper's box rule and how it was chosen (fixed: the `threshold` key, the paper's 0.2; held "
    "out: the best on another split, cam-eval threshold_from), MaxBoxAccV2's thresholds (oracle: "
    "the best on the scored split itself, an upper bound; a held-out column when a row has one), "
    "the normalisation, the box rule, the blacklist, and the first 12 hex digits of each run's "
    "checkpoint SHA-256 in seed order ('-': no checkpoint, '?': not recorded). seeds: the "
    "networks counted (repeated evaluations of one checkpoint count once, noted); n/a: undefined "
    "on that data, the reason in a note."
)


# How table1.md / table2.md name a metric in their notes.
COLUMN_NAMES = {
    "cls_top1_err": "top-1 cls err", "cls_top5_err": "top-5 cls err",
    "loc_top1_err": "top-1 loc err", "loc_top5_err": "top-5 loc err",
    "gt_known_loc_err": "GT-known loc err", "maxboxacc_v2": "MaxBoxAccV2",
    "maxboxacc_v2_heldout": "MaxBoxAccV2 at threshold_from's thresholds",
}  # fmt: skip


def table2(groups: Sequence[Group], paper: str = "auto") -> str:
    """Table 2 (localization error, top-1 / top-5, plus GT-known and MaxBoxAccV2), each row with
    a protocol note (Group.note) under its section's table."""
    lines = ["# Table 2: localization error (%), lower is better (MaxBoxAccV2: higher)", "",
             TABLE2_NOTE, ""]  # fmt: skip
    for data, section in _sections(groups).items():
        show = _show_paper(section, paper)
        heldout = [g for g in section if g.stat("maxboxacc_v2_heldout") is not None]
        header = ["model", "top-1 loc err", "top-5 loc err", "GT-known loc err", "MaxBoxAccV2"]
        # "held-out" only when every run's thresholds were checked (outputs.is_held_out)
        checked = all(g.provenance["maxboxacc_threshold_chosen"] == "heldout" for g in heldout)
        header += [f"MaxBoxAccV2, {'held-out' if checked else 'other run'} thr."] * bool(heldout)
        header += ["top-1 cls err", "seeds"]
        if show:
            header += ["paper top-1 / top-5", "ours - paper"]
        header.append("protocol")
        body, notes = [], _Notes()
        for g in section:
            shown = ["loc_top1_err", "loc_top5_err", "gt_known_loc_err", "maxboxacc_v2"]
            shown += ["maxboxacc_v2_heldout"] if heldout else []
            cells = [g.cell(m, COLUMN_NAMES[m], notes) for m in [*shown, "cls_top1_err"]]
            row = [g.name, *cells, g.seeds_cell(notes)]
            if show:
                row += _paper_cells(g, PAPER_TABLE2, "loc_top1_err", "loc_top5_err")
            body.append([*row, notes.mark(g.note())])
        lines += [f"## {data}", "", *_markdown(header, body), ""]
        lines += notes.lines() + _undigested(section)
    if any(_show_paper(s, paper) for s in _sections(groups).values()):
        lines += [PAPER_NOTES, ""]
    return "\n".join(lines)


def group_csv(groups: Sequence[Group]) -> str:
    """The tables' numbers as CSV: one row per group, mean and std of every metric (over the runs
    that have it), then how the row was measured (PROVENANCE_COLUMNS: distinct values joined by
    ' / '; `threshold` and `checkpoints`, the short SHA-256s, one per run in seed order), then
    `undefined` (which metrics are undefined in how many runs, and why) and `runs_note`
    (duplicates folded, seed numbers claimed twice, runs without a digest)."""
    rows = []
    for g in groups:
        row: dict[str, Any] = {"data": g.data, "model": g.name, "variant": g.variant,
                               "seeds": " ".join(map(str, g.seeds)), "n": len(g.rows)}  # fmt: skip
        for metric in METRICS:
            stat = g.stat(metric)
            row[f"{metric}_mean"] = stat.mean if stat else None
            row[f"{metric}_std"] = stat.std if stat else None
        for table, key in ((PAPER_TABLE1, "paper_cls"), (PAPER_TABLE2, "paper_loc")):
            ref = table.get(g.paper_name) if g.data == "ILSVRC" and not g.protocol else None
            row[f"{key}_top1"], row[f"{key}_top5"] = ref if ref else (None, None)
        heldout = g.stat("maxboxacc_v2_heldout")
        row["maxboxacc_v2_heldout_mean"] = heldout.mean if heldout else None
        row["maxboxacc_v2_heldout_std"] = heldout.std if heldout else None
        notes = _Notes()
        for metric in (*METRICS, "maxboxacc_v2_heldout"):
            g.cell(metric, metric, notes)
        row["undefined"] = " | ".join(notes.marks) or None
        row["runs_note"] = " | ".join(g.run_notes()) or None
        rows.append({**row, **g.provenance})
    columns = ["data", "model", "variant", "seeds", "n"]
    columns += [f"{m}_{s}" for m in METRICS for s in ("mean", "std")]
    columns += ["paper_cls_top1", "paper_cls_top5", "paper_loc_top1", "paper_loc_top5"]
    columns += ["maxboxacc_v2_heldout_mean", "maxboxacc_v2_heldout_std"]
    return to_csv(rows, [*columns, *PROVENANCE_COLUMNS, "checkpoints", "undefined", "runs_note"])


# --- paired comparisons -------------------------------------------------------------------------

_DIFF_METRICS = ("cls_top1_err", "loc_top1_err", "gt_known_loc_err", "maxboxacc_v2")


@dataclass
class Comparison:
    """a - b over the seeds both groups have: the claim's numbers beside classification's."""

    data: str
    what: str  # e.g. "GAP - GMP (16x16)"
    a: Group
    b: Group
    seeds: list[int]
    diffs: dict[str, list[float]]  # a - b per seed, for the seeds where both have the metric
    # seeds both have but that cannot be paired: different networks claim them in a or b
    ambiguous: list[int] = field(default_factory=list)

    @property
    def seeds_text(self) -> str:
        """'0 1 2', with the seeds left out and why."""
        text = " ".join(map(str, self.seeds))
        if self.ambiguous:
            left = " ".join(map(str, self.ambiguous))
            text += f" (left out: {left}, claimed by several networks)"
        return text

    def stat(self, metric: str) -> Paired | None:
        """The mean difference, its 95% t interval over seeds and the signs; None without any."""
        values = self.diffs[metric]
        return paired(values) if values else None


def _by_seed(group: Group) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for r in group.rows:
        out.setdefault(_seed(r), []).append(r)
    return out


def _paired(a: Group, b: Group, what: str) -> Comparison | None:
    """a - b paired by seed, over the seeds that name one network in each (groups are folded:
    one row per network); a seed claimed by two networks in either is left out, and said."""
    by_seed_a, by_seed_b = _by_seed(a), _by_seed(b)
    common = set(by_seed_a) & set(by_seed_b)
    ambiguous = sorted(s for s in common if len(by_seed_a[s]) > 1 or len(by_seed_b[s]) > 1)
    seeds = sorted(common - set(ambiguous))
    if not seeds:
        return None
    diffs = {}
    for metric in _DIFF_METRICS:
        pairs = [(by_seed_a[s][0].get(metric), by_seed_b[s][0].get(metric)) for s in seeds]
        diffs[metric] = [float(x) - float(y) for x, y in pairs if x is not None and y is not None]
    return Comparison(a.data, what, a, b, seeds, diffs, ambiguous)


def comparisons(groups: Sequence[Group]) -> list[Comparison]:
    """GAP vs GMP at the same map size, and a larger vs a smaller map with the same pooling, for
    every architecture, dataset and protocol that has both; paired by seed."""
    out = []
    # the protocol includes the localizer (the name's "Backprop on " / "Grad-CAM on "): a network's
    # CAM rows and its Grad-CAM rows are compared among themselves, never across
    keyed = {(g.data, g.variant.split("_")[0], g.pool, g.map_size,
              (g.paper_name.rpartition(" on ")[0], g.protocol)): g for g in groups}  # fmt: skip
    for (data, arch, pool, size, protocol), g in keyed.items():
        if pool == "gap":
            other = keyed.get((data, arch, "gmp", size, protocol))
            if other is not None:
                out.append(_paired(g, other, f"{g.name} - {other.name}"))
        for (data2, arch2, pool2, size2, protocol2), h in keyed.items():
            if (data2, arch2, pool2, protocol2) == (data, arch, pool, protocol) and _side(
                size
            ) > _side(size2):
                out.append(_paired(g, h, f"{g.name} - {h.name}"))
    return [c for c in out if c is not None]


def _side(size: str | None) -> int:
    return int(size.split("x")[0]) if size else 0


COMPARISONS_NOTE = (
    "Each cell: the mean of a - b over the seeds both have, its 95% t interval over seeds "
    "[low, high] (mean +- t_{0.975, n-1} * sd / sqrt(n), sd the seeds' sample standard "
    "deviation), and how many seeds share the mean's sign (e.g. 3/3 < 0); one seed: no interval "
    "(n=1). An interval that holds 0 means these seeds do not show a difference. Negative error "
    "differences mean a has less error; a positive MaxBoxAccV2 difference means a localizes "
    "better. The classification difference stands beside the localization ones because the "
    "claim is better localization at similar classification."
)
# comparisons.csv: per metric, these columns after `<metric>_diff_` (ci_*: None with one seed)
COMPARISON_STATS = ("mean", "std", "ci_low", "ci_high", "n", "n_positive", "n_negative")


def comparisons_markdown(items: Sequence[Comparison]) -> str:
    """The paired differences: classification beside localization (negative: a has less error)."""
    header = ["comparison (a - b)", "seeds", "top-1 cls err", "top-1 loc err",
              "GT-known loc err", "MaxBoxAccV2"]  # fmt: skip
    lines = [
        "# Paired differences, a - b, over the seeds both have (mean and 95% t interval over "
        "seeds)",
        "",
        COMPARISONS_NOTE,
        "",
    ]
    for data in dict.fromkeys(c.data for c in items):
        body = [
            [c.what, c.seeds_text] + [_signed(c.stat(m)) for m in _DIFF_METRICS]
            for c in items
            if c.data == data
        ]
        lines += [f"## {data}", "", *_markdown(header, body), ""]
    return "\n".join(lines)


def comparisons_csv(items: Sequence[Comparison]) -> str:
    """One row per comparison: data, a, b, seeds, then per metric COMPARISON_STATS."""
    rows = []
    for c in items:
        row: dict[str, Any] = {"data": c.data, "a": c.a.name, "b": c.b.name,
                               "seeds": " ".join(map(str, c.seeds))}  # fmt: skip
        for metric in _DIFF_METRICS:
            stat = c.stat(metric)
            values = {"mean": stat.mean, "std": stat.sd, "ci_low": stat.ci_low,
                      "ci_high": stat.ci_high, "n": stat.n, "n_positive": stat.n_positive,
                      "n_negative": stat.n_negative} if stat else {}  # fmt: skip
            for key in COMPARISON_STATS:
                row[f"{metric}_diff_{key}"] = values.get(key)
        rows.append(row)
    columns = ["data", "a", "b", "seeds"]
    columns += [f"{m}_diff_{s}" for m in _DIFF_METRICS for s in COMPARISON_STATS]
    return to_csv(rows, columns)


def _signed(stat: Paired | None) -> str:
    return "n/a" if stat is None else stat.text()


# --- the box threshold ------------------------------------------------------------------------

SWEEP_POINTS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)  # CAM thresholds shown in thresholds.md


def _sweep_at(path: Path, points: Sequence[float]) -> list[float] | None:
    """GT-known localization error (%) at the given thresholds, from a run's sweep.csv; None if
    the run has no readable sweep with those thresholds."""
    try:
        thresholds, gt_known, _ = read_sweep(path)
    except InputFileError:
        return None
    acc = dict(zip(np.round(thresholds, 6).tolist(), gt_known.tolist(), strict=True))
    if not all(round(t, 6) in acc for t in points):
        return None
    return [100.0 - acc[round(t, 6)] for t in points]


def threshold_table(groups: Sequence[Group], points: Sequence[float] = SWEEP_POINTS) -> str | None:
    """GT-known localization error of the paper's box rule at several CAM thresholds (the paper
    fixes 0.2), mean +- std over seeds, from each run's sweep.csv; None if no run has one."""
    header = ["model", *[f"{t:g}" for t in points]]
    lines = ["# GT-known localization error (%) vs the CAM threshold (paper's rule; 0.2 is the "
             "paper's)", ""]  # fmt: skip
    found = False
    for data, section in _sections(groups).items():
        body = []
        for g in section:
            curves = [_sweep_at(Path(r["run"]) / "sweep.csv", points) for r in g.rows]
            curves = [c for c in curves if c is not None]
            if curves:
                body.append(
                    [g.name] + [Stat([c[i] for c in curves]).text() for i in range(len(points))]
                )
        if body:
            found = True
            lines += [f"## {data}", "", *_markdown(header, body), ""]
    return "\n".join(lines) if found else None


# --- cam-features runs: the fine-grained and generic-features tables (Section 4) ----------------


def features_rows(runs: Iterable[Run]) -> list[dict[str, Any]]:
    """One row per features run with FEATURES_SUMMARY_COLUMNS (the features tables are aggregated
    from these; `data_kind` rides along unwritten); eval runs (`summary_rows`) and features runs
    on text data (`discovery_rows`) are passed over."""
    rows = []
    for run in runs:
        if not isinstance(run, FeaturesRun) or not _in_tables(run):
            continue
        m = run.metrics
        loc = m.get("localization") or {}
        rows.append(
            {
                "dataset": run.dataset,
                "paper_name": str(m.get("paper_name") or m.get("variant") or "?"),
                "variant": m.get("variant"),
                "features": str(m["features"]),
                "crop": m["crop"],
                "classifier": m.get("classifier"),
                "C": m.get("C"),
                "weights": m.get("weights"),
                "trained_on": m.get("trained_on"),
                "seed": m.get("seed"),
                "accuracy": m["accuracy"],
                "mean_class_accuracy": m.get("mean_class_accuracy"),
                "crop_box_iou50": m.get("crop_box_iou50"),
                "gt_known_loc_acc": loc.get("gt_known_loc_acc"),
                "top1_loc_acc": loc.get("top1_loc_acc"),
                "num_train": m.get("num_train"),
                "num_test": m.get("num_test"),
                "run": str(run.path),
                "weights_sha256": m.get("weights_sha256"),
                "data_kind": run.data.get("kind"),
                "checkpoint": m.get("checkpoint"),
                **_undefined_columns(m, _FEATURES_KEYS),
            }
        )
    return sorted(
        rows, key=lambda r: (r["dataset"], _features_rank(r), CROPS.index(r["crop"]), _seed(r))
    )


def _features_rank(row: dict[str, Any]) -> tuple:
    """The paper's generic-table rows first, in its order; then the paper's model order (_rank);
    then features kind, classifier, C and weights."""
    model = f"{row['paper_name']} {row['features']}"
    first = _FEATURES_ORDER.index(model) if model in _FEATURES_ORDER else len(_FEATURES_ORDER)
    c = -1.0 if row["C"] is None else float(row["C"])
    return (first, _rank(row["paper_name"]), row["features"], str(row["classifier"]), c,
            str(row["weights"]), str(row["trained_on"]))  # fmt: skip


_WEIGHTS_SHOWN = {"pretrained": "pretrained", "file": "weights file", "random": "random weights"}


@dataclass
class FeaturesGroup(_Runs):
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
        return f"{self.base} ({_WEIGHTS_SHOWN.get(self.weights, self.weights)})"

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
    a checkpoint was trained on): the seeds
    of one setting; by dataset, then in the paper's row order, then by crop."""
    groups: dict[tuple, FeaturesGroup] = {}
    for row in rows:
        key = (row["dataset"], row["paper_name"], row["features"], row["crop"],
               row["classifier"], row["C"], row["weights"], row["trained_on"])  # fmt: skip
        if key not in groups:
            groups[key] = FeaturesGroup(*key)
        groups[key].rows.append(row)
    for group in groups.values():
        group.fold()
    return sorted(
        groups.values(),
        key=lambda g: (g.dataset, _features_rank(g.rows[0]), CROPS.index(g.crop)),
    )


def _by_row(groups: Iterable[FeaturesGroup], column) -> dict[tuple, dict[str, FeaturesGroup]]:
    """Groups arranged as table rows, (base, model, classifier) -> {column(group): group}, in the
    paper's row order (rows of one base model stay together)."""
    rows: dict[tuple, dict[str, FeaturesGroup]] = {}
    for g in sorted(groups, key=lambda g: _features_rank(g.rows[0])):
        rows.setdefault((g.base, g.model, g.classifier_text), {})[column(g)] = g
    return rows


def _with_paper(ours: Sequence[tuple[str, list[str]]], paper: dict[str, list[str]]) -> list:
    """Our rows (base model, cells), each paper row right after the last of ours with its base
    model; paper rows without one of ours at the end."""
    body, left = [], dict(paper)
    for i, (base, cells) in enumerate(ours):
        body.append(cells)
        if (i + 1 == len(ours) or ours[i + 1][0] != base) and base in left:
            body.append(left.pop(base))
    return body + list(left.values())


def _accuracies(by: dict[str, FeaturesGroup], columns: Iterable[str], notes: _Notes) -> list[str]:
    """Accuracy mean +- std of the group in each column, '' where there is none (n/a, noted,
    where it is undefined)."""
    return [by[c].cell("accuracy", f"accuracy ({c})", notes) if c in by else "" for c in columns]


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _seeds_text(groups: Iterable[FeaturesGroup], notes: _Notes) -> str:
    """The seeds of a table row's groups, marked with their `run_notes` (duplicates folded...)."""
    groups = list(groups)
    seeds = sorted({s for g in groups for s in g.seeds if s >= 0})
    extra = list(dict.fromkeys(n for g in groups for n in g.run_notes()))
    mark = f" {notes.mark('; '.join(extra))}" if extra else ""
    return (" ".join(map(str, seeds)) or "-") + mark


def _feature_sections(groups: Sequence[FeaturesGroup]) -> dict[str, list[FeaturesGroup]]:
    out: dict[str, list[FeaturesGroup]] = {}
    for g in groups:
        out.setdefault(g.dataset, []).append(g)
    return out


def table_finegrained(groups: Sequence[FeaturesGroup], paper: str = "auto") -> str | None:
    """The paper's fine-grained table (Section 4.1): accuracy on the full image, the CAM crop, the
    ground-truth crop and both concatenated, and how often the CAM box hits (IoU >= 0.5); one
    section per dataset with a crop other than the full image, and CUB. With `paper` auto the
    paper's row stands in CUB's section only. None if no dataset qualifies."""
    check_choice(paper, "paper", PAPER_CHOICES)
    sections = {
        data: section
        for data, section in _feature_sections(groups).items()
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
        ours, notes = [], _Notes()
        for (base, model, classifier), by_crop in _by_row(section, lambda g: g.crop).items():
            cam = by_crop.get("cam")
            cells = [model, classifier, *_accuracies(by_crop, CROPS, notes)]
            hits = cam.cell("crop_box_iou50", "CAM box IoU>=0.5", notes) if cam else ""
            cells += [hits, _seeds_text(by_crop.values(), notes)]
            ours.append((base, cells))
        show = paper == "true" or (paper == "auto" and any(g.is_cub for g in section))
        paper_rows = {}
        for model, ref in PAPER_FINEGRAINED.items() if show else ():
            numbers = [_number(ref.get(key)) for key in (*CROPS, "iou50")]
            paper_rows[model] = [f"{model} (paper)", "svm", *numbers, ""]
        lines += [f"## {data}", "", *_markdown(header, _with_paper(ours, paper_rows)), ""]
        lines += notes.lines() + _undigested(section)
    return "\n".join(lines)


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
    notes = _Notes()
    ours = [
        (base, [model, classifier, *_accuracies(by_data, datasets, notes)])
        for (base, model, classifier), by_data in rows.items()
    ]
    refs: dict[str, dict[str, float]] = {}
    for (data, model), value in PAPER_GENERIC.items():
        if paper != "false" and data in datasets:
            refs.setdefault(model, {})[data] = value
    paper_rows = {
        model: [f"{model} (paper)", "svm", *(_number(refs[model].get(d)) for d in datasets)]
        for model in sorted(refs, key=lambda m: ([*_FEATURES_ORDER, m].index(m), m))
    }
    lines = [
        "# Generic localizable features: a linear classifier on the network's features (Section 4)",
        "",
        "## Accuracy (%) on the full image, higher is better",
        "",
        "Mean +- std over seeds; empty: no run.",
        "",
        *_markdown(header, _with_paper(ours, paper_rows)),
        "",
        *notes.lines(),
        *_undigested(full),
    ]
    located, notes = [], _Notes()
    for (_, model, classifier), by_data in rows.items():
        cells = [_located(by_data.get(d), notes) for d in datasets]
        if any(cells):
            located.append([model, classifier, *cells])
    if located:
        lines += [
            "## Localization from the linear classifier's weights",
            "",
            "GT-known / top-1 localization accuracy (%) of the boxes of the CAMs that the "
            "classifier's weights make (each run's threshold and IoU level), higher is better.",
            "",
            *_markdown(header, located),
            "",
            *notes.lines(),
        ]
    return "\n".join(lines)


def _located(group: FeaturesGroup | None, notes: _Notes) -> str:
    """'GT-known / top-1' localization accuracy of a group (n/a, noted, where undefined), or ''
    if its runs did not measure it."""
    if group is None:
        return ""
    keys = ("gt_known_loc_acc", "top1_loc_acc")
    if all(group.stat(k) is None and not group.undefined(k) for k in keys):
        return ""
    gt_known = group.cell("gt_known_loc_acc", "GT-known loc. accuracy", notes)
    return f"{gt_known} / {group.cell('top1_loc_acc', 'top-1 loc. accuracy', notes)}"


# --- Section 4.2, pattern discovery: the text detector and VQA ----------------------------------

# discovery.csv: one row per text-detector or VQA run; kind: features (cam-features), eval
# (cam-eval of a network trained on the text data), vqa (cam-eval of a VQA model). Text:
# classification accuracy, the rate of text images whose CAM box has IoU >= iou_threshold with a
# word box, the pointing game. VQA: answer and VQA accuracy, then the pointing game and the IoU
# rate of each map (VQA_MAPS). num_images: test images (VQA: questions); num_located: those
# scored for localization (text images; questions with a target box).
DISCOVERY_COLUMNS = (
    "section", "kind", "method", "dataset", "seed", "accuracy", "loc_acc", "pointing_game",
    "answer_accuracy", "vqa_accuracy",
    *[f"pointing_{m}" for m in VQA_MAPS], *[f"iou_rate_{m}" for m in VQA_MAPS],
    "iou_threshold", "num_images", "num_located", "run", "undefined",
)  # fmt: skip
_TEXT, _VQA = "text detector", "VQA"
# A discovery row's metrics and the metrics.json keys they are read from (their "undefined" keys):
# a VQA run's, a text-detector eval run's, a text-detector features run's.
_VQA_KEYS = {
    "answer_accuracy": ("answer_accuracy",), "vqa_accuracy": ("vqa_accuracy",),
    **{f"pointing_{m}": (f"pointing_game.{m}", "pointing_game") for m in VQA_MAPS},
    **{f"iou_rate_{m}": (f"iou_rate.{m}", "iou_rate") for m in VQA_MAPS},
}  # fmt: skip
_TEXT_EVAL_KEYS = {"accuracy": ("cls_top1_err",), "loc_acc": ("gt_known_loc_err",),
                   "pointing_game": ("pointing_game",)}  # fmt: skip
_TEXT_FEATURES_KEYS = {
    "accuracy": ("accuracy",),
    "loc_acc": ("localization.gt_known_loc_acc", "localization"),
    "pointing_game": ("localization.pointing_game", "localization"),
}
_CLASSIFIER_NAMES = {"svm": "linear SVM", "logistic": "logistic regression"}


def _with_protocol(name: str, run: Run) -> str:
    return f"{name} ({run.protocol})" if run.protocol else name


def _text_method(run: EvalRun | FeaturesRun) -> str:
    """'linear SVM on Tiny-GAP GAP features (trained on synthetic (parts))' for a features run,
    'Tiny-GAP trained on text / no text' for a network trained on the text data."""
    m = run.metrics
    model = str(m.get("paper_name") or m.get("variant") or "?")
    if isinstance(run, EvalRun):
        return _with_protocol(f"{model} trained on text / no text", run)
    kind = str(m.get("classifier") or "?")
    name = f"{_CLASSIFIER_NAMES.get(kind, kind)} on {model} {str(m['features']).upper()} features"
    notes = [] if m["crop"] == "full" else [f"crop {m['crop']}"]
    weights, trained_on = m.get("weights"), m.get("trained_on")
    if weights not in (None, "checkpoint"):
        notes.append(_WEIGHTS_SHOWN.get(weights, str(weights)))
    elif trained_on:
        notes.append(f"trained on {trained_on}")
    threshold = m.get("threshold")
    if threshold is not None and threshold != _PROTOCOL_DEFAULTS["threshold"]:
        notes.append(f"threshold {threshold}")
    return f"{name} ({', '.join(notes)})" if notes else name


def _text_numbers(run: EvalRun | FeaturesRun) -> dict[str, Any]:
    """Accuracy, localization (IoU >= the run's level) and pointing game (%) of a text run."""
    m = run.metrics
    if isinstance(run, FeaturesRun):
        loc = m.get("localization") or {}
        return {
            "accuracy": m["accuracy"],
            "loc_acc": loc.get("gt_known_loc_acc"),
            "pointing_game": loc.get("pointing_game"),
            "iou_threshold": loc.get("iou_threshold"),
            "num_images": m.get("num_test"),
            "num_located": loc.get("num_images"),
        }
    gt_known = m.get("gt_known_loc_err")
    return {
        "accuracy": 100.0 - float(m["cls_top1_err"]),
        "loc_acc": None if gt_known is None else 100.0 - float(gt_known),
        "pointing_game": m.get("pointing_game"),
        "iou_threshold": (m.get("protocol") or {}).get("iou_threshold"),
        "num_images": m.get("num_images"),
        "num_located": m.get("num_loc_images"),
    }


def _type_keys(kind: str) -> dict[str, tuple[str, ...]]:
    """_VQA_KEYS for the question type `kind` (a VQA metrics.json's by_type entry)."""
    return {key: tuple(f"by_type.{kind}.{name}" for name in names)
            for key, names in _VQA_KEYS.items()}  # fmt: skip


def _vqa_numbers(scores: dict[str, Any]) -> dict[str, Any]:
    """Accuracies and each map's pointing game and IoU rate (%) of a VQA run's metrics.json, or
    of one of its `by_type` entries (which have no VQA accuracy)."""
    point, rate = scores.get("pointing_game") or {}, scores.get("iou_rate") or {}
    return {
        "answer_accuracy": scores.get("answer_accuracy"),
        "vqa_accuracy": scores.get("vqa_accuracy"),
        **{f"pointing_{m}": point.get(m) for m in VQA_MAPS},
        **{f"iou_rate_{m}": rate.get(m) for m in VQA_MAPS},
    }


def discovery_rows(runs: Iterable[Run]) -> list[dict[str, Any]]:
    """One row per text-detector run (eval and features runs whose data's task is text) and VQA
    run with DISCOVERY_COLUMNS (discovery.md is aggregated from these; a VQA row's per-type
    numbers ride along unwritten as `by_type`); other runs are passed over."""
    rows = []
    for run in runs:
        m = run.metrics
        base = {"dataset": str(run.data.get("name") or run.data.get("kind") or "?"),
                "seed": m.get("seed"), "run": str(run.path),
                "checkpoint_sha256": m.get("checkpoint_sha256"),
                "weights_sha256": m.get("weights_sha256")}  # fmt: skip
        if isinstance(run, VQARun):
            name = str(m.get("paper_name") or m.get("variant") or "?")
            by_type = {
                kind: {**_vqa_numbers(scores), "questions": scores.get("questions"), "run":
                       str(run.path), **_undefined_columns(m, _type_keys(kind))}
                for kind, scores in (m.get("by_type") or {}).items()
                if isinstance(scores, dict)
            }  # fmt: skip
            rows.append({
                **base, "section": _VQA, "kind": "vqa", "method": _with_protocol(name, run),
                **_vqa_numbers(m), "iou_threshold": (m.get("protocol") or {}).get("iou_threshold"),
                "num_images": m.get("num_questions"), "num_located": m.get("num_with_target"),
                "by_type": by_type, **_undefined_columns(m, _VQA_KEYS),
            })  # fmt: skip
        elif run.task == "text":
            kind = "features" if isinstance(run, FeaturesRun) else "eval"
            keys = _TEXT_FEATURES_KEYS if kind == "features" else _TEXT_EVAL_KEYS
            rows.append({**base, "section": _TEXT, "kind": kind, "method": _text_method(run),
                         **_text_numbers(run), **_undefined_columns(m, keys)})  # fmt: skip
    # the text detector first, the paper's way (features) before networks trained on text
    order = {_TEXT: 0, _VQA: 1, "features": 0, "eval": 1, "vqa": 2}
    return sorted(rows, key=lambda r: (order[r["section"]], r["dataset"], order[r["kind"]],
                                       r["method"], _seed(r)))  # fmt: skip


@dataclass
class DiscoveryGroup(_Runs):
    """Text-detector or VQA runs of one method on one dataset (usually several seeds)."""

    section: str  # text detector | VQA
    dataset: str
    method: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    folded: list[list[dict[str, Any]]] = field(default_factory=list)

    def of_type(self, kind: str) -> DiscoveryGroup:
        """The group's question type `kind` (VQA runs' by_type) as a group of its own."""
        rows = [r["by_type"][kind] for r in self.rows if kind in r.get("by_type", {})]
        return DiscoveryGroup(self.section, self.dataset, self.method, rows)

    def type_stat(self, kind: str, metric: str) -> Stat | None:
        """`metric` of question type `kind` (VQA runs' by_type), over the runs that have it."""
        return self.of_type(kind).stat(metric)

    @property
    def types(self) -> list[str]:
        return sorted({kind for r in self.rows for kind in r.get("by_type", {})})


def aggregate_discovery(rows: Sequence[dict[str, Any]]) -> list[DiscoveryGroup]:
    """Group discovery rows by (section, dataset, method), in discovery_rows' order."""
    groups: dict[tuple, DiscoveryGroup] = {}
    for row in rows:
        key = (row["section"], row["dataset"], row["method"])
        groups.setdefault(key, DiscoveryGroup(*key)).rows.append(row)
    for group in groups.values():
        group.fold()
    return list(groups.values())


def _seeds_cell(group: DiscoveryGroup, notes: _Notes) -> str:
    """'0 1 2' (n=3): the seeds a row's runs were trained with, and how many networks it has
    (marked with its `run_notes`: duplicates folded, ...)."""
    seeds = " ".join(str(s) for s in group.seeds if s >= 0) or "-"
    extra = group.run_notes()
    return f"{seeds} (n={len(group.rows)})" + (f" {notes.mark('; '.join(extra))}" if extra else "")


def _by_dataset(groups: Iterable[DiscoveryGroup]) -> dict[str, list[DiscoveryGroup]]:
    out: dict[str, list[DiscoveryGroup]] = {}
    for g in groups:
        out.setdefault(g.dataset, []).append(g)
    return out


_MAP_NAMES = {"predicted": "predicted", "other_question": "other question", "centre": "centre",
              "true_answer": "true answer"}  # fmt: skip
_SCORE_HEADER = [*[f"pointing: {_MAP_NAMES[m]}" for m in VQA_MAPS],
                 *[f"IoU>=0.5: {_MAP_NAMES[m]}" for m in VQA_MAPS]]  # fmt: skip
_SCORES = [*[f"pointing_{m}" for m in VQA_MAPS], *[f"iou_rate_{m}" for m in VQA_MAPS]]
_TEXT_SCORES = ("accuracy", "loc_acc", "pointing_game")

TEXT_NOTE = (
    "The paper reports no number for the text detector: it shows the CAMs of its text class on "
    "text images only, as a figure (Section 4.2). These are ours, to check what the figure shows."
)
VQA_NOTE = (
    "The paper reports no localization number for VQA: it shows the predicted answers' CAMs as "
    "a figure only (Section 4.2). These are ours."
)


def discovery_markdown(groups: Sequence[DiscoveryGroup]) -> str:
    """discovery.md: the text detector's and VQA's tables (Section 4.2), mean +- std over seeds,
    one section per dataset; VQA with a per-question-type table."""
    lines = ["# Pattern discovery (Section 4.2)", ""]
    text = [g for g in groups if g.section == _TEXT]
    if text:
        lines += [
            "## Text detector (Section 4.2)",
            "",
            "Accuracy: % of test images classified right (text / no text). Loc. IoU>=0.5: % of "
            "the text images whose CAM of the text class, boxed by the paper's rule, has IoU >= "
            "0.5 (each run's level) with a word box. Pointing game: % of the text images whose "
            "text-class CAM peaks on a word box. The linear-SVM rows are the paper's way: an SVM "
            "on the GAP features of a network trained on another benchmark, its CAMs from the "
            "SVM's weights; the others are CAM networks trained on text / no text. Mean +- std "
            "over seeds (n runs); one row per run in discovery.csv.",
            "",
            f"Note: {TEXT_NOTE}",
            "",
        ]
        header = ["method", "accuracy", "loc. IoU>=0.5", "pointing game", "seeds"]
        for data, section in _by_dataset(text).items():
            notes = _Notes()
            body = [
                [g.method, *[g.cell(k, name, notes) for k, name in zip(_TEXT_SCORES, header[1:],
                                                                       strict=False)],
                 _seeds_cell(g, notes)]
                for g in section
            ]  # fmt: skip
            lines += [f"### {data}", "", *_markdown(header, body), ""]
            lines += notes.lines() + _undigested(section)
    vqa = [g for g in groups if g.section == _VQA]
    if vqa:
        lines += [
            "## VQA: what the answer's CAM points at (Section 4.2)",
            "",
            "Answer accuracy: % of questions whose top answer is the annotators' most common one; "
            "VQA accuracy: VQA's official measure, min(#annotators who gave it / 3, 1) averaged "
            "over the ten sets of nine annotators. Over the questions with a target box (the "
            "object the answer depends on): pointing: % whose map peaks on it; "
            "IoU>=0.5: % whose map's box under the paper's rule has IoU >= 0.5 (each run's level) "
            "with it. Maps: predicted, the predicted answer's CAM; other question, the predicted "
            "answer's CAM of another question about the same image whose target is another "
            "object (does the map follow the question?); centre, the image's centre (a centred "
            "box of the mean target size); true answer, the right answer's CAM. Mean +- std over "
            "seeds (n runs); one row per run in discovery.csv.",
            "",
            f"Note: {VQA_NOTE}",
            "",
        ]
        header = ["method", "answer acc.", "VQA acc.", *_SCORE_HEADER, "seeds"]
        kinds_header = ["method", "type", "questions", "answer acc.", *_SCORE_HEADER]
        named = list(zip(_SCORES, _SCORE_HEADER, strict=True))
        for data, section in _by_dataset(vqa).items():
            notes = _Notes()
            body = [[g.method, g.cell("answer_accuracy", "answer acc.", notes),
                     g.cell("vqa_accuracy", "VQA acc.", notes),
                     *[g.cell(k, name, notes) for k, name in named], _seeds_cell(g, notes)]
                    for g in section]  # fmt: skip
            lines += [f"### {data}", "", *_markdown(header, body), ""]
            lines += notes.lines() + _undigested(section)
            kinds, notes = [], _Notes()
            for g in section:
                for kind in g.types:
                    of = g.of_type(kind)
                    questions = of.stat("questions")
                    kinds.append([
                        g.method, kind, "" if questions is None else f"{questions.mean:g}",
                        of.cell("answer_accuracy", f"{kind}: answer acc.", notes),
                        *[of.cell(k, f"{kind}: {name}", notes) for k, name in named],
                    ])  # fmt: skip
            if kinds:
                lines += [f"#### {data}, per question type (questions: per run)", "",
                          *_markdown(kinds_header, kinds), "", *notes.lines()]  # fmt: skip
    return "\n".join(lines)


# --- the report folder --------------------------------------------------------------------------


def write_eval_tables(runs: Sequence[Run], out: Path, paper: str = "auto") -> dict[str, Any]:
    """Write the eval runs among `runs` into `out`: summary.csv (one row per run), table1.md /
    table2.md and tables.csv (grouped, mean +- std), thresholds.md (GT-known error vs the CAM
    threshold, from the runs' sweep.csv), comparisons.md / .csv (paired differences, when the runs
    have pairs). Returns the number of groups and comparisons and the files written."""
    rows = summary_rows(runs)
    groups = aggregate(rows)
    make_dir(out)
    files = {
        "summary.csv": to_csv(rows, SUMMARY_COLUMNS),
        "table1.md": table1(groups, paper),
        "table2.md": table2(groups, paper),
        "tables.csv": group_csv(groups),
    }
    by_threshold = threshold_table(groups)
    if by_threshold:
        files["thresholds.md"] = by_threshold
    pairs = comparisons(groups)
    if pairs:
        files["comparisons.md"] = comparisons_markdown(pairs)
        files["comparisons.csv"] = comparisons_csv(pairs)
    for name, text in files.items():
        write_text_atomic(out / name, text)
    return {"groups": len(groups), "comparisons": len(pairs), "files": list(files)}


def write_features_tables(runs: Sequence[Run], out: Path, paper: str = "auto") -> dict[str, Any]:
    """Write the features runs among `runs` into `out`: features_summary.csv (one row per run),
    table_finegrained.md (datasets with crops, and CUB) and table_generic.md (full-image accuracy
    per dataset, and localization from the classifier's weights), each when it has rows. Returns
    the number of groups and the files written."""
    rows = features_rows(runs)
    if not rows:
        return {"groups": 0, "files": []}
    groups = aggregate_features(rows)
    make_dir(out)
    files = {"features_summary.csv": to_csv(rows, FEATURES_SUMMARY_COLUMNS)}
    for name, text in (("table_finegrained.md", table_finegrained(groups, paper)),
                       ("table_generic.md", table_generic(groups, paper))):  # fmt: skip
        if text:
            files[name] = text
    for name, text in files.items():
        write_text_atomic(out / name, text)
    return {"groups": len(groups), "files": list(files)}


def write_discovery_tables(runs: Sequence[Run], out: Path) -> dict[str, Any]:
    """Write the text-detector and VQA runs among `runs` into `out`: discovery.csv (one row per
    run) and discovery.md (grouped, mean +- std), when there are any. Returns the number of
    groups and the files written."""
    rows = discovery_rows(runs)
    if not rows:
        return {"groups": 0, "files": []}
    groups = aggregate_discovery(rows)
    make_dir(out)
    files = {
        "discovery.csv": to_csv(rows, DISCOVERY_COLUMNS),
        "discovery.md": discovery_markdown(groups),
    }
    for name, text in files.items():
        write_text_atomic(out / name, text)
    return {"groups": len(groups), "files": list(files)}


def write_report(paths: Sequence[str | Path], out: str | Path, paper: str = "auto") -> dict:
    """Collect the eval and features runs in `paths` and write their tables into `out`
    (`write_eval_tables`, `write_features_tables`, `write_discovery_tables`: each only for runs
    of its kind). Returns what was written, for the caller to log."""

    check_choice(paper, "paper", PAPER_CHOICES)  # a bad value fails before any reading
    runs = collect_runs(paths)  # every file read and checked before anything is written
    out = Path(out)
    make_dir(out)
    done: dict[str, Any] = {"runs": len(runs), "groups": 0, "comparisons": 0, "files": []}
    if any(isinstance(run, EvalRun) and _in_tables(run) for run in runs):
        written = write_eval_tables(runs, out, paper)
        done["groups"] += written["groups"]
        done["comparisons"] = written["comparisons"]
        done["files"] += written["files"]
    for written in (write_features_tables(runs, out, paper), write_discovery_tables(runs, out)):
        done["groups"] += written["groups"]
        done["files"] += written["files"]
    return {**done, "out": out}
