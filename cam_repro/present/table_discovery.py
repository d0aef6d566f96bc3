"""Section 4.2's pattern discovery report (discovery.md, discovery.csv): the text detector's and
VQA's runs, mean +- std over seeds.

The text detector: cam-eval and cam-features runs whose data's task is text, which stay out of the
other tables (runs.in_tables); VQA: VQA models' cam-eval runs (`kind: vqa`). `discovery_rows`
flattens them to one row per run, `aggregate_discovery` groups the seeds of one method on one
dataset (one run per network: present/table_rows.py), `discovery_markdown` writes the tables.
The paper gives no numbers for Section 4.2: it shows these as figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cam_repro.present.runs import (
    PROTOCOL_DEFAULTS,
    VQA_MAPS,
    EvalRun,
    FeaturesRun,
    Run,
    VQARun,
    with_protocol,
)
from cam_repro.present.stats import group_by
from cam_repro.present.table_features import WEIGHTS_SHOWN
from cam_repro.present.table_rows import (
    Notes,
    RunGroup,
    markdown_table,
    seed_of,
    undefined_columns,
    undigested,
)
from cam_repro.runtime.metrics_file import VQAMetrics, VQATypeScores

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


def _text_method(run: EvalRun | FeaturesRun) -> str:
    """'linear SVM on Tiny-GAP GAP features (trained on synthetic (parts))' for a features run,
    'Tiny-GAP trained on text / no text' for a network trained on the text data."""
    if isinstance(run, EvalRun):
        return with_protocol(f"{run.model} trained on text / no text", run.protocol)
    m = run.record
    kind = str(m.classifier or "?")
    features = str(m.features).upper()
    name = f"{_CLASSIFIER_NAMES.get(kind, kind)} on {run.model} {features} features"
    notes = [] if m.crop == "full" else [f"crop {m.crop}"]
    weights, trained_on = m.weights, m.trained_on
    if weights not in (None, "checkpoint"):
        notes.append(WEIGHTS_SHOWN.get(weights, str(weights)))
    elif trained_on:
        notes.append(f"trained on {trained_on}")
    threshold = m.threshold
    if threshold is not None and threshold != PROTOCOL_DEFAULTS["threshold"]:
        notes.append(f"threshold {threshold}")
    return f"{name} ({', '.join(notes)})" if notes else name


def _text_numbers(run: EvalRun | FeaturesRun) -> dict[str, Any]:
    """Accuracy, localization (IoU >= the run's level) and pointing game (%) of a text run."""
    if isinstance(run, FeaturesRun):
        f, loc = run.record, run.record.localization
        return {
            "accuracy": f.accuracy,
            "loc_acc": None if loc is None else loc.gt_known_loc_acc,
            "pointing_game": None if loc is None else loc.pointing_game,
            "iou_threshold": None if loc is None else loc.iou_threshold,
            "num_images": f.num_test,
            "num_located": None if loc is None else loc.num_images,
        }
    m = run.record
    gt_known = m.gt_known_loc_err
    return {
        "accuracy": 100.0 - float(m.cls_top1_err),
        "loc_acc": None if gt_known is None else 100.0 - float(gt_known),
        "pointing_game": m.pointing_game,
        "iou_threshold": m.protocol.iou_threshold,
        "num_images": m.num_images,
        "num_located": m.num_loc_images,
    }


def _type_keys(kind: str) -> dict[str, tuple[str, ...]]:
    """_VQA_KEYS for the question type `kind` (a VQA metrics.json's by_type entry)."""
    return {key: tuple(f"by_type.{kind}.{name}" for name in names)
            for key, names in _VQA_KEYS.items()}  # fmt: skip


def _vqa_numbers(scores: VQAMetrics | VQATypeScores) -> dict[str, Any]:
    """Accuracies and each map's pointing game and IoU rate (%) of a VQA run's metrics.json, or
    of one of its `by_type` entries (which have no VQA accuracy)."""
    point, rate = scores.pointing_game, scores.iou_rate
    return {
        "answer_accuracy": scores.answer_accuracy,
        "vqa_accuracy": getattr(scores, "vqa_accuracy", None),
        **{f"pointing_{m}": point.get(m) for m in VQA_MAPS},
        **{f"iou_rate_{m}": rate.get(m) for m in VQA_MAPS},
    }


def _vqa_row(run: VQARun) -> dict[str, Any]:
    """A VQA run's discovery row (without the columns every row has); its per-type numbers ride
    along unwritten as `by_type`."""
    m = run.record
    by_type = {
        kind: {**_vqa_numbers(scores), "questions": scores.questions, "run": str(run.path),
               **undefined_columns(m.undefined, _type_keys(kind))}
        for kind, scores in m.by_type.items()
    }  # fmt: skip
    return {
        "section": _VQA, "kind": "vqa", "method": with_protocol(run.model, run.protocol),
        **_vqa_numbers(m), "iou_threshold": m.protocol.iou_threshold,
        "num_images": m.num_questions, "num_located": m.num_with_target,
        "by_type": by_type, **undefined_columns(m.undefined, _VQA_KEYS),
    }  # fmt: skip


def _text_row(run: EvalRun | FeaturesRun) -> dict[str, Any]:
    """A text-detector run's discovery row (without the columns every row has)."""
    kind = "features" if isinstance(run, FeaturesRun) else "eval"
    keys = _TEXT_FEATURES_KEYS if kind == "features" else _TEXT_EVAL_KEYS
    return {"section": _TEXT, "kind": kind, "method": _text_method(run), **_text_numbers(run),
            **undefined_columns(run.record.undefined, keys)}  # fmt: skip


def discovery_rows(runs: Iterable[Run]) -> list[dict[str, Any]]:
    """One row per text-detector run (eval and features runs whose data's task is text) and VQA
    run with DISCOVERY_COLUMNS (discovery.md is aggregated from these; a VQA row's per-type
    numbers ride along unwritten as `by_type`); other runs are passed over."""
    rows = []
    for run in runs:
        if not isinstance(run, VQARun) and run.task != "text":
            continue
        m = run.record
        base = {"dataset": run.data_name, "seed": m.seed, "run": str(run.path),
                "checkpoint_sha256": getattr(m, "checkpoint_sha256", None),
                "weights_sha256": getattr(m, "weights_sha256", None)}  # fmt: skip
        rows.append({**base, **(_vqa_row(run) if isinstance(run, VQARun) else _text_row(run))})
    # the text detector first, the paper's way (features) before networks trained on text
    order = {_TEXT: 0, _VQA: 1, "features": 0, "eval": 1, "vqa": 2}
    return sorted(rows, key=lambda r: (order[r["section"]], r["dataset"], order[r["kind"]],
                                       r["method"], seed_of(r)))  # fmt: skip


@dataclass
class DiscoveryGroup(RunGroup):
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

    @property
    def types(self) -> list[str]:
        return sorted({kind for r in self.rows for kind in r.get("by_type", {})})

    def seeds_with_count(self, notes: Notes) -> str:
        """'0 1 2 (n=3)': the seeds a row's runs were trained with, and how many networks it has
        (marked with its `run_notes`: duplicates folded, ...)."""
        seeds = " ".join(str(s) for s in self.seeds if s >= 0) or "-"
        return f"{seeds} (n={len(self.rows)})" + notes.marked(self.run_notes())


def aggregate_discovery(rows: Sequence[dict[str, Any]]) -> list[DiscoveryGroup]:
    """Group discovery rows by (section, dataset, method), in discovery_rows' order."""
    groups = []
    by_key = group_by(rows, lambda r: (r["section"], r["dataset"], r["method"]))
    for key, members in by_key.items():
        group = DiscoveryGroup(*key, rows=list(members))
        group.fold()
        groups.append(group)
    return groups


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
_TEXT_INTRO = (
    "Accuracy: % of test images classified right (text / no text). Loc. IoU>=0.5: % of "
    "the text images whose CAM of the text class, boxed by the paper's rule, has IoU >= "
    "0.5 (each run's level) with a word box. Pointing game: % of the text images whose "
    "text-class CAM peaks on a word box. The linear-SVM rows are the paper's way: an SVM "
    "on the GAP features of a network trained on another benchmark, its CAMs from the "
    "SVM's weights; the others are CAM networks trained on text / no text. Mean +- std "
    "over seeds (n runs); one row per run in discovery.csv."
)
_VQA_INTRO = (
    "Answer accuracy: % of questions whose top answer is the annotators' most common one; "
    "VQA accuracy: VQA's official measure, min(#annotators who gave it / 3, 1) averaged "
    "over the ten sets of nine annotators. Over the questions with a target box (the "
    "object the answer depends on): pointing: % whose map peaks on it; "
    "IoU>=0.5: % whose map's box under the paper's rule has IoU >= 0.5 (each run's level) "
    "with it. Maps: predicted, the predicted answer's CAM; other question, the predicted "
    "answer's CAM of another question about the same image whose target is another "
    "object (does the map follow the question?); centre, the image's centre (a centred "
    "box of the mean target size); true answer, the right answer's CAM. Mean +- std over "
    "seeds (n runs); one row per run in discovery.csv."
)


def _by_dataset(groups: Iterable[DiscoveryGroup]) -> dict[str, list[DiscoveryGroup]]:
    """The groups by dataset: one section of each table per dataset."""
    return group_by(groups, lambda g: g.dataset)


def _text_section(text: Sequence[DiscoveryGroup]) -> list[str]:
    """discovery.md's text-detector part: one table per dataset."""
    lines = ["## Text detector (Section 4.2)", "", _TEXT_INTRO, "", f"Note: {TEXT_NOTE}", ""]
    header = ["method", "accuracy", "loc. IoU>=0.5", "pointing game", "seeds"]
    for data, section in _by_dataset(text).items():
        notes = Notes()
        body = [
            [g.method, *[g.cell(k, name, notes) for k, name in zip(_TEXT_SCORES, header[1:],
                                                                   strict=False)],
             g.seeds_with_count(notes)]
            for g in section
        ]  # fmt: skip
        lines += [f"### {data}", "", *markdown_table(header, body), ""]
        lines += notes.lines() + undigested(section)
    return lines


def _vqa_section(vqa: Sequence[DiscoveryGroup]) -> list[str]:
    """discovery.md's VQA part: per dataset, a table of the runs and one per question type."""
    lines = ["## VQA: what the answer's CAM points at (Section 4.2)", "", _VQA_INTRO, "",
             f"Note: {VQA_NOTE}", ""]  # fmt: skip
    header = ["method", "answer acc.", "VQA acc.", *_SCORE_HEADER, "seeds"]
    named = list(zip(_SCORES, _SCORE_HEADER, strict=True))
    for data, section in _by_dataset(vqa).items():
        notes = Notes()
        body = [[g.method, g.cell("answer_accuracy", "answer acc.", notes),
                 g.cell("vqa_accuracy", "VQA acc.", notes),
                 *[g.cell(k, name, notes) for k, name in named], g.seeds_with_count(notes)]
                for g in section]  # fmt: skip
        lines += [f"### {data}", "", *markdown_table(header, body), ""]
        lines += notes.lines() + undigested(section) + _types_table(data, section)
    return lines


def _types_table(data: str, section: Sequence[DiscoveryGroup]) -> list[str]:
    """A VQA dataset's per-question-type table ([] if its runs have no types)."""
    header = ["method", "type", "questions", "answer acc.", *_SCORE_HEADER]
    named = list(zip(_SCORES, _SCORE_HEADER, strict=True))
    kinds, notes = [], Notes()
    for g in section:
        for kind in g.types:
            of = g.of_type(kind)
            questions = of.stat("questions")
            kinds.append([
                g.method, kind, "" if questions is None else f"{questions.mean:g}",
                of.cell("answer_accuracy", f"{kind}: answer acc.", notes),
                *[of.cell(k, f"{kind}: {name}", notes) for k, name in named],
            ])  # fmt: skip
    if not kinds:
        return []
    return [f"#### {data}, per question type (questions: per run)", "",
            *markdown_table(header, kinds), "", *notes.lines()]  # fmt: skip


def discovery_markdown(groups: Sequence[DiscoveryGroup]) -> str:
    """discovery.md: the text detector's and VQA's tables (Section 4.2), mean +- std over seeds,
    one section per dataset; VQA with a per-question-type table."""
    lines = ["# Pattern discovery (Section 4.2)", ""]
    text = [g for g in groups if g.section == _TEXT]
    if text:
        lines += _text_section(text)
    vqa = [g for g in groups if g.section == _VQA]
    if vqa:
        lines += _vqa_section(vqa)
    return "\n".join(lines)
