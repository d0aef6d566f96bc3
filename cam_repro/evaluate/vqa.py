"""`cam-eval` of a VQA model (cam-train task=vqa; paper Section 4.2): answer accuracy, and whether
the CAM of the answer points at the object the answer depends on.

The answer's CAM is M_a = sum_k W_img[a, k] f_k (cam_repro.models.vqa.answer_cams), upsampled to
the evaluated image like cam-eval's maps. Where a question has a target box (the synthetic set's
targets file), two localization scores, each for the predicted answer's map and for the true
answer's:
- the pointing game: the map's peak lies on the target box (cam_repro.localize.loc_error);
- IoU >= iou_threshold between the paper rule's box (box_rule, threshold, normalize) and it.
Against two baselines: the predicted answer's map of ANOTHER question about the same image whose
target is another object (does the map follow the question, or just the image's salient object?),
and the centre (the image's centre point; a centred box of the split's mean target size).

A run folder gets config.yaml, eval.log, metrics.json (`kind: vqa`) and predictions.csv (one row
per question). Under torchrun every process evaluates its shard and rank 0 merges.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from tqdm import tqdm

from cam_repro.data import DataSplit, dataset_kind, model_input
from cam_repro.data.dataset import SkipLog
from cam_repro.data.loaders import eval_loader, extra_inputs
from cam_repro.data.samples import original_sizes
from cam_repro.data.vqa import read_vqa_split, vqa_accuracy
from cam_repro.evaluate.config import EvalConfig, box_rule
from cam_repro.evaluate.localizer import TRUE, BatchMaps, check_batch
from cam_repro.evaluate.network import load_network
from cam_repro.evaluate.outputs import with_undefined
from cam_repro.localize.cam import upsample_cams
from cam_repro.localize.loc_error import rate
from cam_repro.localize.scoring import score_against, score_maps
from cam_repro.models.vqa import answer_cams
from cam_repro.runtime import distributed as D
from cam_repro.runtime.errors import ConfigError, InputFileError
from cam_repro.runtime.files import write_text_atomic
from cam_repro.runtime.metrics_file import save_metrics
from cam_repro.runtime.precision import autocast

log = logging.getLogger(__name__)

MAPS = ("predicted", "true_answer")  # whose answer's CAM: the model's answer, the right one


@dataclass
class QuestionRow:
    """One question: the answers, and per map (predicted, true answer) its peak and box in the
    original image (x, y; 0-based inclusive box)."""

    index: int
    label: int
    predicted: int
    score: float
    peaks: list[list[float]]  # (2, 2)
    boxes: list[list[int]]  # (2, 4)


def _check_options(spec: EvalConfig) -> None:
    if spec.localizer != "cam" or spec.ten_crop:
        raise ConfigError(
            "a VQA model is evaluated with its answers' CAMs, single crop: localizer=cam and "
            "ten_crop=false"
        )


class VQAEvaluator:
    """A VQA checkpoint (already loaded) and the split's questions; `run()` over them."""

    def __init__(self, spec: EvalConfig, state: dict[str, Any], env: D.Dist) -> None:
        _check_options(spec)
        self.spec, self.state, self.env = spec, state, env
        self.net = load_network(spec.checkpoint, None, spec.data, env.device,
                                spec.runtime.channels_last, state=state)  # fmt: skip
        self.model, self.model_cfg, self.data_cfg = self.net.model, self.net.config, self.net.data
        if self.data_cfg.source != "vqa":
            raise ConfigError(
                f"{spec.checkpoint} is a VQA model: evaluate it on VQA data (data.source=vqa), "
                f"not data.source={self.data_cfg.source}"
            )
        read = read_vqa_split(
            self.data_cfg, spec.split, vocab=self.net.question_vocab, answers=self.net.classes
        )
        self.data: DataSplit = read.data
        self.unanswerable = len(read.unanswerable)  # their answer is none the model knows
        self.skips = SkipLog(self.data)
        self.rule = box_rule(spec)
        self.frame = self.data_cfg.image_size

    def run(self) -> list[QuestionRow]:
        spec, env, cfg = self.spec, self.env, self.data_cfg
        rows: list[QuestionRow] = []
        loader = eval_loader(self.data, cfg, env)
        show = spec.runtime.progress and env.is_main
        for images, labels, index, skipped in tqdm(
            loader, desc=spec.split, leave=False, disable=not show
        ):
            self.skips.add(skipped)
            if images is None:
                continue
            x = model_input(images.to(env.device), cfg.mean, cfg.std, spec.runtime.channels_last)
            tokens = extra_inputs(self.data, index, env.device)[0]
            with torch.no_grad(), autocast(env.device, spec.runtime.amp):  # predicted, true
                out = answer_cams(self.model, x, tokens, topk=1, append=labels)
            maps = upsample_cams(out.cams.float(), (self.frame, self.frame))
            first = self.data.samples[int(index[0])].path
            batch = BatchMaps(out.logits.float(), out.classes, maps, maps[:, TRUE])
            check_batch(batch, f"{spec.checkpoint}, batch from {first}", spec.runtime.amp)
            scores = out.logits.float().softmax(dim=1).gather(1, out.classes[:, :1])
            rows += self._rows(maps.cpu().numpy(), out.classes.cpu().numpy(), scores, index)
        gathered = D.gather_objects(rows, env)
        self.skips.merge(D.gather_objects(dict(self.skips.at_load), env))
        return sorted((r for part in gathered for r in part), key=lambda r: r.index)

    def _rows(self, maps, classes, scores, index) -> list[QuestionRow]:
        samples = [self.data.samples[int(i)] for i in index]
        sizes = original_sizes(samples, self.data_cfg.max_image_pixels)
        b = len(samples)
        # Boxes and peaks only (no ground truth here): scored later, per pair of questions.
        no_boxes, no_labels = [np.zeros((0, 4), np.int64)] * b, [np.zeros(0, np.int64)] * b
        scored = score_maps(maps, classes, sizes, no_boxes, no_labels, self.rule)
        boxes, peaks = scored.boxes, scored.peaks.reshape(b * 2, 2)
        return [
            QuestionRow(
                index=int(i),
                label=int(classes[n, 1]),
                predicted=int(classes[n, 0]),
                score=float(scores[n, 0]),
                peaks=peaks[2 * n : 2 * n + 2].tolist(),
                boxes=boxes[n].tolist(),
            )
            for n, i in enumerate(index.tolist())
        ]


# Why a rate has no value (loc_error.rate): over no question with a target box, or (the
# other-question baseline) no other question about the same image with another target.
_NO_TARGET = "no question has a target box"
_NO_OTHER = "no image has two questions with different target boxes"


def localization_scores(
    data: DataSplit, rows: list[QuestionRow], iou_threshold: float
) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """The pointing game and IoU >= iou_threshold rates (%) of each map and baseline over the
    questions with a target box, and per question its own outcomes (for predictions.csv)."""
    targets = {r.index: data.samples[r.index].own_boxes for r in rows}
    located = [r for r in rows if len(targets[r.index])]
    per_question: dict[int, dict[str, Any]] = {}
    point: dict[str, list[bool]] = defaultdict(list)
    overlap: dict[str, list[bool]] = defaultdict(list)
    for r in located:
        gt = targets[r.index]
        own: dict[str, Any] = {}
        values, hits = score_against(np.array(r.boxes), np.array(r.peaks), gt)
        for m, name in enumerate(MAPS):
            hit, value = bool(hits[m]), float(values[m])
            point[name].append(hit)
            overlap[name].append(value >= iou_threshold)
            own[name] = (hit, value)
        per_question[r.index] = own
    # The other-question baseline: the predicted answer's map of each other question about the
    # same image whose target is another object, scored against this question's target.
    by_image: dict[Path, list[QuestionRow]] = defaultdict(list)
    for r in located:
        by_image[data.samples[r.index].path].append(r)
    for group in by_image.values():
        for r in group:
            gt = targets[r.index]
            for other in group:
                if other is r or np.array_equal(targets[other.index], gt):
                    continue
                values, hits = score_against(
                    np.array(other.boxes[:1]), np.array(other.peaks[:1]), gt
                )
                point["other_question"].append(bool(hits[0]))
                overlap["other_question"].append(float(values[0]) >= iou_threshold)
    # The centre baseline: the centre point; a centred box of the mean target size.
    if located:
        sizes = np.array([data.samples[r.index].size for r in located], dtype=np.float64)
        first = np.stack([targets[r.index][0] for r in located]).astype(np.float64)
        wh = (first[:, 2:] - first[:, :2] + 1).mean(axis=0)
        for r, size in zip(located, sizes, strict=True):
            gt = targets[r.index]
            centre = (size - 1) / 2
            lo = np.round(centre - (wh - 1) / 2)
            box = np.concatenate([lo, lo + np.round(wh) - 1]).clip(0, np.tile(size - 1, 2))
            values, hits = score_against(box[None].astype(np.int64), centre[None], gt)
            point["centre"].append(bool(hits[0]))
            overlap["centre"].append(float(values[0]) >= iou_threshold)
    names = (*MAPS, "other_question", "centre")
    none = {n: _NO_OTHER if located and n == "other_question" else _NO_TARGET for n in names}
    scores = {
        "pointing_game": {n: rate(point[n], none[n]) for n in names},
        "iou_rate": {n: rate(overlap[n], none[n]) for n in names},
        "num_other_question_pairs": len(point["other_question"]),
    }
    return scores, per_question


def vqa_metrics(
    spec: EvalConfig, ev: VQAEvaluator, rows: list[QuestionRow], seconds: float
) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    data, q = ev.data, ev.data.questions
    if not rows:
        raise InputFileError(f"{data.root} {spec.split}: no question could be evaluated")
    correct = np.array([r.predicted == r.label for r in rows])
    accuracy = np.array([vqa_accuracy(data.classes[r.predicted], q.answers[r.index]) for r in rows])
    # The questions whose answer the model cannot give count as wrong here (a lower bound: an
    # answer outside the model's can still match some annotators)
    every = len(rows) + ev.unanswerable
    scores, per_question = localization_scores(data, rows, spec.iou_threshold)
    by_type: dict[str, Any] = {}
    kinds = np.array([q.kinds[r.index] for r in rows])
    for kind in sorted(set(kinds.tolist())):
        chosen = [r for r, k in zip(rows, kinds, strict=True) if k == kind]
        kind_scores, _ = localization_scores(data, chosen, spec.iou_threshold)
        by_type[kind] = {
            "questions": len(chosen),
            "answer_accuracy": rate(correct[kinds == kind], "no question of this type"),
            "pointing_game": kind_scores["pointing_game"],
            "iou_rate": kind_scores["iou_rate"],
        }
    trained = ev.state["config"]
    metrics = {  # its kind ("vqa") and schema: runtime.metrics_file.save_metrics
        # the top answer is the annotators' most common one (rows: at least one question)
        "answer_accuracy": rate(correct, "no question was evaluated"),
        "vqa_accuracy": 100.0 * float(accuracy.mean()),  # VQA's min(#humans / 3, 1) measure
        # the same two over every question of the split, the unanswerable ones scored 0
        "answer_accuracy_all": 100.0 * float(correct.sum()) / every,
        "vqa_accuracy_all": 100.0 * float(accuracy.sum()) / every,
        **scores,
        "by_type": by_type,
        "num_questions": len(rows),
        "num_unanswerable": ev.unanswerable,  # left out: their answer is not among the model's
        "num_images": len({data.samples[r.index].path for r in rows}),
        "num_with_target": len(per_question),
        "num_skipped": ev.skips.count,
        "num_answers": len(data.classes),
        "num_question_words": len(q.vocab),
        "variant": ev.net.variant,
        "paper_name": f"{ev.net.paper} + BoW (VQA)",
        "pool": ev.model_cfg.pool,
        "checkpoint": spec.checkpoint,
        "checkpoint_sha256": ev.net.weights_sha256,
        "seed": trained.get("seed"),
        "data": {
            "root": str(data.root),
            "split": spec.split,
            "source": data.source,
            "image_size": ev.data_cfg.image_size,
            **dataset_kind(ev.data_cfg),
        },
        "protocol": {
            "maps": "CAM of the predicted and of the true answer from the image part of the "
            "answer layer's weights, bilinear to the evaluated image",
            "box_rule": spec.box_rule,
            "threshold": spec.threshold,
            "normalize": spec.normalize,
            "iou_threshold": spec.iou_threshold,
            "pointing_game": "the map's peak lies on the target box (no tolerance)",
            "baselines": "other_question: the predicted answer's map of another question about "
            "the same image with another target; centre: the image centre, a centred box of the "
            "mean target size",
        },
        "world_size": ev.env.world_size,
        "seconds": round(seconds, 2),
    }
    return with_undefined(metrics), per_question


def _box_text(box) -> str:
    return " ".join(str(int(v)) for v in box)


def vqa_predictions_csv(
    data: DataSplit, rows: list[QuestionRow], per_question: dict[int, dict[str, Any]]
) -> str:
    q = data.questions
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["question_id", "image_id", "question", "type", "answer", "predicted", "score",
         "correct", "target_box", "peak", "peak_in_target", "cam_box", "cam_iou"]
    )  # fmt: skip
    for r in rows:
        sample = data.samples[r.index]
        own = per_question.get(r.index, {}).get("predicted")
        target = ";".join(_box_text(b) for b in sample.own_boxes)
        writer.writerow(
            [
                q.ids[r.index], sample.image_id, q.text[r.index], q.kinds[r.index],
                data.classes[r.label], data.classes[r.predicted], f"{r.score:.6f}",
                int(r.predicted == r.label), target,
                " ".join(f"{v:.1f}" for v in r.peaks[0]),
                "" if own is None else int(own[0]), _box_text(r.boxes[0]),
                "" if own is None else f"{own[1]:.6f}",
            ]
        )  # fmt: skip
    return out.getvalue()


def evaluate_vqa(spec: EvalConfig, state: dict[str, Any], run_dir: Path, env: D.Dist) -> dict:
    """Evaluate a loaded VQA checkpoint inside cam-eval's run context; metrics (rank 0)."""
    tick = time.perf_counter()
    ev = VQAEvaluator(spec, state, env)
    log.info(
        "evaluating the VQA model %s (%s) on %s %s: %d questions",
        ev.net.variant, spec.checkpoint, ev.data.root, spec.split, len(ev.data),
    )  # fmt: skip
    rows = ev.run()
    if not env.is_main:
        return {}
    metrics, per_question = vqa_metrics(spec, ev, rows, time.perf_counter() - tick)
    write_text_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.structured(spec)))
    write_text_atomic(run_dir / "predictions.csv", vqa_predictions_csv(ev.data, rows, per_question))
    metrics = save_metrics(run_dir / "metrics.json", "vqa", metrics)
    point, hit = metrics["pointing_game"], metrics["iou_rate"]
    log.info(
        "answer accuracy %.2f%%; pointing game %s (other question %s, centre %s); IoU >= %.2g "
        "%s (other question %s, centre %s)",
        metrics["answer_accuracy"], _fmt(point["predicted"]), _fmt(point["other_question"]),
        _fmt(point["centre"]), spec.iou_threshold, _fmt(hit["predicted"]),
        _fmt(hit["other_question"]), _fmt(hit["centre"]),
    )  # fmt: skip
    for key, reason in metrics["undefined"].items():
        log.warning("%s is undefined (null in metrics.json): %s", key, reason)
    return metrics


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"
