"""cam-eval's output files, each with its writer (and reader where another stage reads it):
predictions.csv (one row per image), table.md (the paper's Table 2 layout), sweep.csv (accuracy
per CAM threshold; read by cam-report and cam-visualize), metrics.json's `thresholds` record
(where each CAM threshold came from; the file is runtime/metrics_file.py's) and the reader of
another run's best thresholds (`threshold_from`).

Undefined metrics (cam_repro.localize.loc_error.Undefined: a rate over no image, PxAP without
background pixels, ...) are null in metrics.json, each with its reason in the top-level mapping
`"undefined": {"<metric key>": "<reason>"}` (nested keys dotted: "pointing_game.centre"); cam-eval's
and its VQA model's metrics.json are written through `with_undefined`, and cam-features' follows
the same convention.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cam_repro.localize.loc_error import Undefined
from cam_repro.runtime.errors import ConfigError, InputFileError
from cam_repro.runtime.metrics_file import read_metrics
from cam_repro.runtime.typed_json import plain

if TYPE_CHECKING:
    from cam_repro.data import DataSplit


@dataclass
class Row:
    """One image's predictions (boxes in original-image inclusive coordinates)."""

    index: int
    label: int
    classes: list[int]  # top-k
    scores: list[float]  # softmax probabilities of the top-k
    boxes: list[list[int]]  # (k, 4)
    ious: list[float]  # (k,) with the ground truth of each predicted class
    gt_known_box: list[int]
    gt_known_iou: float
    gt_known_peak: list[float]  # (x, y): where the true class's map is highest
    peak_in_box: bool  # the pointing game: that peak lies in a box of the true class


def _box_text(boxes: np.ndarray | list) -> str:
    return ";".join(" ".join(str(int(v)) for v in box) for box in np.asarray(boxes).reshape(-1, 4))


def image_key(image_id: str, boxes: np.ndarray | list) -> tuple[str, str]:
    """What identifies an image across runs (`threshold_from`'s check that its images are held
    out): its id and its GT boxes as predictions.csv writes them. The boxes tell apart two
    datasets that reuse file names (every synthetic set's ILSVRC2012_val_00000001); a copy of a
    dataset at another path is still the same images."""
    return (str(image_id), _box_text(boxes))


def predictions_csv(rows: list[Row], data: DataSplit, loc_mask: np.ndarray) -> str:
    """One row per image: ids, ground truth, the top-k (class, score, box, IoU), GT-known."""
    k = len(rows[0].classes) if rows else 0
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    head = ["index", "image_id", "label", "gt_wnids", "gt_boxes", "loc_counted"]
    for r in range(1, k + 1):
        head += [f"pred{r}_wnid", f"pred{r}_score", f"pred{r}_box", f"pred{r}_iou"]
    writer.writerow([*head, "gt_known_box", "gt_known_iou", "gt_known_peak", "peak_in_box"])
    for row, counted in zip(rows, loc_mask, strict=True):
        sample = data.samples[row.index]
        line = [
            row.index,
            sample.image_id,
            data.classes[row.label],
            " ".join(data.classes[c] for c in sample.box_labels),
            _box_text(sample.boxes),
            int(counted),
        ]
        for c, s, box, v in zip(row.classes, row.scores, row.boxes, row.ious, strict=True):
            line += [data.classes[c], f"{s:.6f}", _box_text(box), f"{v:.6f}"]
        peak = " ".join(f"{v:.1f}" for v in row.gt_known_peak)
        line += [_box_text(row.gt_known_box), f"{row.gt_known_iou:.6f}", peak]
        writer.writerow([*line, int(row.peak_in_box)])
    return out.getvalue()


def fmt_number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def table_row(name: str, metrics: dict[str, Any]) -> str:
    """The paper's Table 2 layout (localization error, top-1 / top-5), with our extra columns;
    an undefined cell is n/a, its reason in a line under the table."""
    head = (
        "| Method | top-1 val. error | top-5 val. error | GT-known loc. error | MaxBoxAccV2 "
        "| cls. top-1 / top-5 error |\n|---|---|---|---|---|---|\n"
    )
    shown = ("loc_top1_err", "loc_top5_err", "gt_known_loc_err", "maxboxacc_v2", "cls_top1_err",
             "cls_top5_err")  # fmt: skip
    n = {key: fmt_number(metrics[key]) for key in shown}
    why = metrics["undefined"]
    notes = "".join(f"\nn/a: {key}: {why[key]}\n" for key in shown if key in why)
    return (
        head
        + (
            f"| {name} | {n['loc_top1_err']} | {n['loc_top5_err']} | {n['gt_known_loc_err']} "
            f"| {n['maxboxacc_v2']} | {n['cls_top1_err']} / {n['cls_top5_err']} |\n"
        )
        + notes
    )


def sweep_csv(sweep: dict[str, Any], box_acc: dict[str, Any] | None) -> str:
    """threshold, then the paper rule's GT-known accuracy (%), then MaxBoxAcc's per IoU level."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    curve = sweep["curve"]
    (level,) = [key for key in curve if key != "thresholds"]
    levels = [key for key in box_acc["curve"] if key != "thresholds"] if box_acc else []
    writer.writerow(["threshold", "gt_known_loc_acc", *[f"box_acc_{d:g}" for d in levels]])
    for i, t in enumerate(curve["thresholds"]):
        extra = [f"{box_acc['curve'][d][i]:.4f}" for d in levels] if box_acc else []
        writer.writerow([f"{t:.6g}", f"{curve[level][i]:.4f}", *extra])
    return out.getvalue()


def read_sweep(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """cam-eval's sweep.csv -> thresholds, GT-known accuracy, {IoU level: BoxAcc}."""
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        columns = rows[0].keys() if rows else ()
        thresholds = np.array([float(r["threshold"]) for r in rows])
        gt_known = np.array([float(r["gt_known_loc_acc"]) for r in rows])
        levels = {
            m.group(1): np.array([float(r[c]) for r in rows])
            for c in columns
            if (m := re.fullmatch(r"box_acc_(\d+)", c))
        }
    except OSError as err:
        raise InputFileError(f"{path}: cannot read ({err.strerror or err})") from None
    except (KeyError, ValueError, TypeError) as err:
        raise InputFileError(f"{path}: not a cam-eval sweep.csv ({err})") from None
    if not rows:
        raise InputFileError(f"{path}: empty sweep")
    return thresholds, gt_known, levels


def with_undefined(metrics: dict[str, Any]) -> dict[str, Any]:
    """metrics.json's content from values that may be Undefined (at any depth): each becomes null,
    its reason goes under the top-level "undefined" ({"<dotted key>": reason}, always present)."""
    reasons: dict[str, str] = {}

    def clean(value: Any, key: str) -> Any:
        if isinstance(value, Undefined):
            reasons[key] = value.reason
            return None
        if isinstance(value, dict):
            return {k: clean(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
        return value

    out = clean(metrics, "")
    return {**out, "undefined": reasons}


# --- where the CAM thresholds came from: threshold_from's run, metrics.json "thresholds" ---------


@dataclass
class HeldOut:
    """A finished cam-eval run's best CAM thresholds, for `threshold_from`: the paper rule's (the
    highest GT-known accuracy of its sweep.csv, the lowest threshold on ties) and MaxBoxAcc's per
    IoU level (its metrics.json `best_threshold`), with what it was scored on and how."""

    folder: Path
    split: str | None
    data: str | None  # the dataset's name (metrics.json data.name, else its kind)
    root: str | None
    protocol: dict[str, Any]  # its metrics.json `protocol`
    sweep: np.ndarray  # its sweep.csv thresholds (T,)
    paper_threshold: float
    paper_acc: float  # its GT-known accuracy (%) there
    box_thresholds: dict[str, float] | None  # {IoU level: threshold}; None: maxboxacc=false
    box_accs: dict[str, float] | None  # {IoU level: its BoxAcc (%) there}
    checkpoint_sha256: str | None = None  # of the network it evaluated (None: not recorded)
    # the images its thresholds were chosen on (image_key of its predictions.csv rows counted for
    # localization); `config.check_held_out` refuses a run that scores any of them
    images: frozenset[tuple[str, str]] = frozenset()
    checked: bool = False  # True once check_held_out found this run's images disjoint

    @property
    def source(self) -> dict[str, Any]:
        """The record's `from`, `split`, `data` and `root`."""
        return {"from": str(self.folder), "split": self.split, "data": self.data,
                "root": self.root}  # fmt: skip


def where_scored(data: dict[str, Any]) -> dict[str, Any]:
    """A run's split, dataset name and root from metrics.json's `data` (data=wsol: its own split
    name, val or test; the dataset's name, else its kind)."""
    return {"split": data.get("wsol_split") or data.get("split"),
            "data": data.get("name") or data.get("kind"), "root": data.get("root")}  # fmt: skip


def read_heldout(folder: str | Path, key: str = "threshold_from") -> HeldOut:
    """The best thresholds of the cam-eval run in `folder` (one-line errors naming `key` when it
    has no metrics.json or sweep.csv; InputFileErrors naming a malformed one)."""
    folder = Path(folder).expanduser().resolve()
    for name, why in (
        ("metrics.json", "the folder of a finished cam-eval run"),
        ("sweep.csv", "cam-eval writes it with sweep=true, on a split with boxes"),
        (
            "predictions.csv",
            "the folder of a finished cam-eval run; it says which images "
            "chose the thresholds, to check that they are held out",
        ),
    ):
        if not (folder / name).is_file():
            raise ConfigError(f"{key}: {folder} has no {name} ({why})")
    record = read_metrics(folder / "metrics.json", "eval")
    thresholds, gt_known, _ = read_sweep(folder / "sweep.csv")
    best = int(np.argmax(gt_known))  # the first (lowest threshold) on ties
    box, accs = record.best_threshold, record.box_acc
    return HeldOut(
        folder=folder,
        **where_scored(plain(record.data)),
        protocol=plain(record.protocol),
        sweep=thresholds,
        paper_threshold=float(thresholds[best]),
        paper_acc=float(gt_known[best]),
        box_thresholds={str(k): float(v) for k, v in box.items()} if box else None,
        box_accs={str(k): float(v) for k, v in accs.items()} if accs else None,
        checkpoint_sha256=record.checkpoint_sha256,
        images=read_scored_images(folder / "predictions.csv"),
    )


def read_scored_images(path: Path) -> frozenset[tuple[str, str]]:
    """The images a cam-eval run scored for localization (predictions.csv rows with
    loc_counted 1), as `image_key`s."""
    try:
        with path.open(newline="") as f:
            return frozenset(
                (row["image_id"], row["gt_boxes"])
                for row in csv.DictReader(f)
                if row["loc_counted"] == "1"
            )
    except OSError as err:
        raise InputFileError(f"{path}: cannot read ({err.strerror or err})") from None
    except (KeyError, csv.Error) as err:
        raise InputFileError(f"{path}: not a cam-eval predictions.csv ({err})") from None


def thresholds_record(
    threshold: float,
    box_rule: str,
    best_threshold: dict[str, float] | None,
    heldout: HeldOut | None,
    scored: dict[str, Any],
) -> dict[str, Any]:
    """metrics.json's `thresholds`: where the paper rule's CAM threshold and MaxBoxAcc's came from.

    paper_rule: {"value", "chosen": "fixed" (the `threshold` key) | "heldout", "from", "split",
    "data", "root", "metric"}; value null for box_rule=release (its thresholds are the release's).
    maxboxacc: {IoU level: the same, "chosen": "oracle" (best on the scored split: `scored`, this
    run's split, data and root) | "heldout" (best on threshold_from's run; "oracle_value" beside)};
    null without MaxBoxAcc. Held-out entries also give "heldout_acc", the accuracy (%) there, and
    "disjoint": true, the record that config.check_held_out found no image of this run among
    those that chose the threshold.
    """
    if heldout is not None and not heldout.checked:
        raise ValueError("thresholds_record: threshold_from's images were not checked")
    nowhere = {"from": None, "split": None, "data": None, "root": None}
    if heldout is None:
        paper = {"value": threshold, "chosen": "fixed", **nowhere, "metric": None}
    else:
        paper = {"value": threshold, "chosen": "heldout", **heldout.source,
                 "metric": "gt_known_loc_acc", "heldout_acc": heldout.paper_acc,
                 "disjoint": True}  # fmt: skip
    if box_rule == "release":
        paper["value"] = None
    if best_threshold is None:
        return {"paper_rule": paper, "maxboxacc": None}
    box: dict[str, Any] = {}
    for level, oracle in best_threshold.items():
        if heldout is None or heldout.box_thresholds is None:
            box[level] = {"value": oracle, "chosen": "oracle", "from": None, **scored,
                          "metric": f"box_acc_{level}"}  # fmt: skip
        else:
            box[level] = {"value": heldout.box_thresholds[level], "chosen": "heldout",
                          **heldout.source, "metric": f"box_acc_{level}",
                          "heldout_acc": (heldout.box_accs or {}).get(level),
                          "oracle_value": oracle, "disjoint": True}  # fmt: skip
    return {"paper_rule": paper, "maxboxacc": box}
