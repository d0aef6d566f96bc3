"""Reading and classifying cam-report's run folders: cam-eval, cam-features and VQA runs, how an
eval run was measured, and its sweep's errors at the thresholds a table shows.

`collect_runs` reads runs' metrics.json through runtime.metrics_file.read_metrics (its `kind`
tells an eval run from a features run or a VQA model's eval run; cam-features' value checks:
features.outputs.check_features). `in_tables` says which runs belong in the Section 3 / 4 tables;
the text detector's and VQA's go to discovery.md (present/table_discovery.py). The table modules
format what is read here; they read no file themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cam_repro.evaluate.outputs import read_sweep
from cam_repro.features.outputs import check_features
from cam_repro.localize.posthoc_methods import POSTHOC_METHODS
from cam_repro.runtime.errors import ConfigError, InputFileError
from cam_repro.runtime.metrics_file import (
    EvalData,
    EvalMetrics,
    FeaturesData,
    FeaturesMetrics,
    Record,
    ThresholdChoice,
    VQAData,
    VQAMetrics,
    read_metrics,
)

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
# A VQA model's maps and baselines (cam_repro.evaluate.vqa), in the tables' order.
VQA_MAPS = ("predicted", "other_question", "centre", "true_answer")
REPORTED = ("eval", "vqa", "features")  # the metrics.json kinds cam-report reads


def posthoc_changes(torchcam: Any) -> list[str]:
    """A torch-cam run's settings that differ from torch-cam's defaults (metrics.json's
    protocol.torchcam): its layer if named, its options' values, its noise seed if not 0."""
    if torchcam is None:
        return []
    method = POSTHOC_METHODS.get(torchcam.method)
    parts = [f"torchcam layer {torchcam.layer}"] if torchcam.layer is not None else []
    for key, default in method.defaults.items() if method else ():
        value = getattr(torchcam, key, None)
        if key != "batch_size" and value is not None and value != default:
            parts.append(f"{key.replace('_', ' ')} {value}")
    if getattr(torchcam, "seed", None):
        parts.append(f"noise seed {torchcam.seed}")
    return parts


def with_protocol(name: str, protocol: str) -> str:
    """A row's name: the model's, with the protocol changes in parentheses ('' : none)."""
    return f"{name} ({protocol})" if protocol else name


@dataclass
class _RunFolder:
    """A run folder and its metrics.json record."""

    path: Path
    record: Any  # the subclass's record type

    @property
    def data(self) -> EvalData | FeaturesData | VQAData:
        """What the run's numbers are on (metrics.json's `data`)."""
        return self.record.data

    @property
    def data_name(self) -> str:
        """data.name ('CUB-200-2011', 'synthetic text', ...), else its kind."""
        return str(self.data.name or self.data.kind or "?")

    @property
    def model(self) -> str:
        """The paper's name of the model (cam_repro.models.config.paper_name), else its variant."""
        return str(self.record.paper_name or self.record.variant or "?")

    @property
    def task(self) -> str:
        """What the data serves (dataset_kind's "task"): classes | text | vqa."""
        return str(self.data.task)

    @property
    def protocol(self) -> str:
        """The protocol settings that differ from the paper's, e.g. 'threshold 0.3', or ''; a
        threshold chosen on a held-out run reads 'threshold from val of X' (its seeds' values
        differ, and are one row). A VQA run records some of these keys; a features run none."""
        given = getattr(self.record, "protocol", None)  # cam-features records none
        paper = self.record.thresholds.paper_rule if isinstance(self.record, EvalMetrics) else None
        parts = []
        for key, default in PROTOCOL_DEFAULTS.items():
            if key == "threshold" and paper is not None and paper.chosen == "heldout":
                parts.append(f"threshold from {source_label(paper)}")
            elif hasattr(given, key) and getattr(given, key) != default:
                parts.append(f"{key.replace('_', ' ')} {getattr(given, key)}")
        parts += posthoc_changes(getattr(given, "torchcam", None))
        return ", ".join(parts)


@dataclass
class EvalRun(_RunFolder):
    """One cam-eval run."""

    record: EvalMetrics

    @property
    def dataset(self) -> str:
        """'ILSVRC', 'CUB', 'synthetic (parts)', 'synthetic (parts, family 1)' or a folder
        dataset's name: what the numbers are on (the paper's numbers go with 'ILSVRC')."""
        kind = self.data.kind
        if kind in ("synthetic", "folder", "wsol"):  # wsolevaluation's: "CUB test (wsolevaluation)"
            return str(self.data.name)
        return {"ilsvrc": "ILSVRC", "cub": "CUB"}.get(kind, kind)

    @property
    def method(self) -> str:
        """The WSOL method the network was trained with (models/method_config.py's METHODS);
        cam for runs written before methods, which record none."""
        return self.record.method or "cam"

    @property
    def name(self) -> str:
        """The paper's name of the model, with the protocol changes in parentheses."""
        return with_protocol(self.model, self.protocol)


@dataclass
class FeaturesRun(_RunFolder):
    """One cam-features run."""

    record: FeaturesMetrics

    @property
    def dataset(self) -> str:
        """data.name: 'CUB-200-2011', 'SUN397', 'synthetic (fine)', ..."""
        return self.data_name


@dataclass
class VQARun(_RunFolder):
    """One cam-eval run of a VQA model (cam_repro.evaluate.vqa; metrics.json `kind: vqa`)."""

    record: VQAMetrics


Run = EvalRun | FeaturesRun | VQARun


def _run(path: Path, record: Record) -> Run:
    """The run of metrics.json `path` with its record (cam-features': value-checked)."""
    if isinstance(record, FeaturesMetrics):
        return FeaturesRun(path.parent, check_features(path, record))
    if isinstance(record, VQAMetrics):
        return VQARun(path.parent, record)
    return EvalRun(path.parent, record)


def read_run(path: Path) -> Run:
    """The cam-eval (classification or VQA) or cam-features run whose metrics.json is `path`
    (one-line errors naming it otherwise: runtime.metrics_file.read_metrics)."""
    return _run(path, read_metrics(path, REPORTED))


def in_tables(run: Run) -> bool:
    """An eval or features run of the Section 3 / 4 tables: not VQA, not the text detector
    (those go to discovery.md)."""
    return not isinstance(run, VQARun) and run.task not in ("text", "vqa")


def collect_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Every cam-eval (classification or VQA) and cam-features run in `paths`: run folders,
    metrics.json files, or folders (e.g. a multirun sweep) searched recursively. Folder searches
    pass over cam-train runs' metrics.json (`"kind": "train"`); one that cannot be read or
    parsed, or is of an older schema, found or named, is an error naming it (never a run silently
    left out of a mean)."""
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
                record = read_metrics(p)  # a corrupt, unreadable or older file stops the report
                if record.kind in REPORTED:
                    hits[p] = record
            if not hits:
                raise InputFileError(
                    f"{path}: no cam-eval or cam-features metrics.json in this folder or below "
                    "(cam-train runs have their own: run cam-eval or cam-features on their "
                    "checkpoints and report those runs)"
                )
            for p, record in hits.items():
                found.setdefault(p, _run(p, record))
        else:
            raise InputFileError(f"{path}: no such file or folder")
    return list(found.values())


# --- how an eval run was measured ----------------------------------------------------------------


def source_label(entry: ThresholdChoice) -> str:
    """Where a held-out threshold came from, from its `thresholds` entry: 'val of CUB', or the
    dataset's name alone when it names the split ('CUB val (wsolevaluation)')."""
    split, data = entry.split, entry.data
    if not data:
        return str(split or entry.from_ or "?")
    if not split or str(split) in str(data).split():
        return str(data)
    return f"{split} of {data}"


def run_provenance(record: EvalMetrics) -> dict[str, Any]:
    """How an eval run was measured, as PROVENANCE_COLUMNS: the paper rule's threshold and how it
    was chosen (fixed | heldout, from where), MaxBoxAcc's (oracle | heldout), the normalisation,
    box rule and blacklist."""
    paper = record.thresholds.paper_rule
    box = record.thresholds.maxboxacc or {}
    box_chosen = sorted({entry.chosen for entry in box.values()})
    box_heldout = [e for e in box.values() if e.chosen == "heldout"]
    listing, left_out = record.data.blacklist, record.num_blacklisted
    blacklist = "none"
    if listing:
        blacklist = Path(str(listing)).name + (f" ({left_out} images)" if left_out else "")
    return {
        "threshold_chosen": paper.chosen,
        "threshold": paper.value,
        "threshold_from": source_label(paper) if paper.chosen == "heldout" else None,
        "maxboxacc_threshold_chosen": " / ".join(box_chosen) or None,
        "maxboxacc_threshold_from": source_label(box_heldout[0]) if box_heldout else None,
        "normalize": record.protocol.normalize,
        "box_rule": record.protocol.box_rule,
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
