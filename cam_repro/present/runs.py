"""Reading and classifying cam-report's run folders: cam-eval, cam-features and VQA runs, how an
eval run was measured, and its sweep's errors at the thresholds a table shows.

`collect_runs` reads runs' metrics.json: an eval run's records its protocol, a features run's says
`"kind": "features"`, a VQA model's eval run `"kind": "vqa"` (checked here, without torch:
`check_vqa_metrics`). `in_tables` says which runs belong in the Section 3 / 4 tables; the text
detector's and VQA's go to discovery.md (present/table_discovery.py). A threshold is called held
out only when cam-eval checked that its images were disjoint from the scored ones
(evaluate.outputs.is_held_out); older runs' read "unchecked" (`run_provenance`). The table
modules format what is read here; they read no file themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cam_repro.evaluate.outputs import check_metrics, is_held_out, read_sweep, read_thresholds
from cam_repro.features.outputs import check_features_metrics, is_features_metrics
from cam_repro.runtime.errors import ConfigError, InputFileError
from cam_repro.runtime.files import read_json

# Protocol settings that make runs incomparable; a row's name shows those that differ from the
# paper's defaults.
PROTOCOL_DEFAULTS = {
    "box_rule": "paper", "threshold": 0.2, "normalize": "max", "all_boxes": False,
    "ten_crop": False, "iou_threshold": 0.5, "gradcam_layer": None,
}  # fmt: skip
# How a run was measured (`run_provenance`): after the metrics in summary.csv and tables.csv.
PROVENANCE_COLUMNS = (
    "threshold_chosen", "threshold", "threshold_from", "maxboxacc_threshold_chosen",
    "maxboxacc_threshold_from", "normalize", "box_rule", "blacklist",
)  # fmt: skip
# A VQA model's cam-eval metrics.json (cam_repro.evaluate.vqa.vqa_metrics writes it; checked here,
# without torch, for cam-report): its kind, and what discovery.md reads.
VQA_KIND = "vqa"
VQA_REQUIRED = ("answer_accuracy", "vqa_accuracy", "pointing_game", "iou_rate", "data")
VQA_MAPS = ("predicted", "other_question", "centre", "true_answer")  # in the tables' order


def with_protocol(name: str, protocol: str) -> str:
    """A row's name: the model's, with the protocol changes in parentheses ('' : none)."""
    return f"{name} ({protocol})" if protocol else name


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
    def data_name(self) -> str:
        """data.name ('CUB-200-2011', 'synthetic text', ...), else its kind."""
        return str(self.data.get("name") or self.data.get("kind") or "?")

    @property
    def model(self) -> str:
        """The paper's name of the model (cam_repro.models.config.paper_name), else its variant."""
        return str(self.metrics.get("paper_name") or self.metrics.get("variant") or "?")

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
        for key, default in PROTOCOL_DEFAULTS.items():
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
        return with_protocol(self.model, self.protocol)


@dataclass
class FeaturesRun(_RunFolder):
    """One cam-features run."""

    @property
    def dataset(self) -> str:
        """data.name: 'CUB-200-2011', 'SUN397', 'synthetic (fine)', ..."""
        return self.data_name


@dataclass
class VQARun(_RunFolder):
    """One cam-eval run of a VQA model (cam_repro.evaluate.vqa; metrics.json `kind: vqa`)."""


Run = EvalRun | FeaturesRun | VQARun


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


def in_tables(run: Run) -> bool:
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


# --- how an eval run was measured ----------------------------------------------------------------


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


# --- the threshold sweep ------------------------------------------------------------------------


def sweep_errors(path: Path, points: Sequence[float]) -> list[float] | None:
    """GT-known localization error (%) at the thresholds `points`, from a run's sweep.csv `path`;
    None if the run has no readable sweep with those thresholds."""
    try:
        thresholds, gt_known, _ = read_sweep(path)
    except InputFileError:
        return None
    acc = dict(zip(np.round(thresholds, 6).tolist(), gt_known.tolist(), strict=True))
    if not all(round(t, 6) in acc for t in points):
        return None
    return [100.0 - acc[round(t, 6)] for t in points]


def read_sweeps(runs: Iterable[str | Path], points: Sequence[float]) -> dict[str, list[float]]:
    """{run folder: GT-known localization error (%) at `points`} of the run folders `runs` whose
    sweep.csv has them (cam-eval sweep=true); the others are left out."""
    curves = {str(run): sweep_errors(Path(run) / "sweep.csv", points) for run in runs}
    return {run: curve for run, curve in curves.items() if curve is not None}
