"""`cam-eval`: classification and localization errors of a network on a labelled split.

The protocol is the paper's (DESIGN.md, "Localization protocol"): for every image, the top-k
classes; for each of them and for the true class, a localization map (the class activation map,
or the Backprop saliency), upsampled bilinearly to the evaluated image; a box from it (the paper's
rule, or the released code's generator); the box moved to the original image's coordinates and
compared with the ground-truth boxes of that class there. From these come the five errors of
`cam_repro.metrics`. Beside them: MaxBoxAccV2 and, where the data has masks, PxAP (Choe et al.
2020) from the true class's map, and the threshold sweep of the paper's rule.

A run dir gets: config.yaml, eval.log, metrics.json, predictions.csv (one row per image),
table.md (one row in the layout of the paper's Table 2) and sweep.csv (accuracy per threshold).
Under torchrun every process evaluates its shard; rank 0 merges them once and writes.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from PIL import Image
from torch import Tensor, nn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from cam_repro.boxes import (
    component_boxes,
    largest_component_boxes,
    normalize_maps,
    release_boxes,
    scale_boxes,
)
from cam_repro.cam import backprop_saliency, cam_model, class_activation_maps, unwrap
from cam_repro.data import DataSplit, dataset_kind, normalize, read_split
from cam_repro.data.annotations import read_blacklist
from cam_repro.data.samples import read_image_size
from cam_repro.data.transforms import resize_transform
from cam_repro.engine import distributed as D
from cam_repro.engine.checkpoint import load_model, write_text_atomic
from cam_repro.engine.loaders import eval_loader
from cam_repro.engine.trainer import attach_log_file, autocast, write_json
from cam_repro.errors import ConfigError, InputFileError
from cam_repro.eval_config import EvalConfig, eval_config, resolve_data, resolve_model
from cam_repro.metrics import best_ious, error_rates, image_outcomes
from cam_repro.models import build_model, model_config, paper_name, variant_name
from cam_repro.models.summary import summarize as summarize_model
from cam_repro.wsol import BoxAccMeter, PxAPMeter

log = logging.getLogger(__name__)


# --- the maps of a batch -----------------------------------------------------------------------


def ten_crop_windows(full: int, crop: int) -> list[tuple[int, int, bool]]:
    """(top, left, mirrored) of the ten crops of a full x full image: the four corners and the
    centre, then the same five mirrored (the released evaluation's ten crops)."""
    far, mid = full - crop, (full - crop) // 2
    five = [(0, 0), (0, far), (far, 0), (far, far), (mid, mid)]
    return [(t, left, False) for t, left in five] + [(t, left, True) for t, left in five]


class Localizer:
    """Logits of a batch and localization maps for chosen classes, at the input's resolution."""

    def __init__(self, model: nn.Module, kind: str, amp: str, device: torch.device) -> None:
        self.kind = kind
        self.amp = amp
        self.device = device
        self.net = cam_model(model) if kind == "cam" else unwrap(model)
        self._features: Tensor | None = None

    def logits(self, x: Tensor) -> Tensor:
        with torch.no_grad(), autocast(self.device, self.amp):
            if self.kind == "cam":
                self._features = self.net.features(x)  # (B, K, h, w)
                out = self.net.logits_from_features(self._features)
            else:
                out = self.net(x)
        return out.float()

    def raw_maps(self, x: Tensor, classes: Tensor) -> Tensor:
        """(B, j) classes -> (B, j, h, w): CAMs at the last conv map's size, or saliency (S x S)."""
        if self.kind == "cam":
            assert self._features is not None, "logits() first"
            weight = self.net.classifier.weight.float()
            with torch.no_grad():
                return class_activation_maps(self._features.float(), weight, classes)
        return backprop_saliency(self.net, x.float(), classes).float()


def _upsample(maps: Tensor, size: int, mode: str) -> Tensor:
    if maps.shape[-1] == size and maps.shape[-2] == size:
        return maps
    return F.interpolate(maps, size=(size, size), mode=mode, align_corners=False)


@dataclass
class BatchMaps:
    """One batch's outputs: logits, the chosen classes and their maps in the evaluation frame."""

    logits: Tensor  # (B, C)
    classes: Tensor  # (B, k + 1): the top-k, then the true class
    maps: Tensor  # (B, k + 1, F, F): bilinear (the paper's upsampling), F the frame's side
    wsol_maps: Tensor | None  # (B, F, F): the true class's map for MaxBoxAccV2/PxAP


def localize_batch(
    loc: Localizer, x: Tensor, labels: Tensor, topk: int, wsol: bool = True
) -> BatchMaps:
    """A single view: x (B, 3, S, S) normalised. With `wsol`, also the true class's map resized
    bicubically, as wsolevaluation resizes it (the paper's maps are bilinear)."""
    logits = loc.logits(x)
    k = min(topk, logits.shape[1])
    classes = torch.cat([logits.topk(k, dim=1).indices, labels[:, None]], dim=1)
    raw = loc.raw_maps(x, classes)
    size = x.shape[-1]
    maps = _upsample(raw, size, "bilinear")
    wsol_maps = _upsample(raw[:, -1:], size, "bicubic")[:, 0] if wsol else None
    return BatchMaps(logits, classes, maps, wsol_maps)


def localize_ten_crop(loc: Localizer, x: Tensor, labels: Tensor, topk: int, crop: int) -> BatchMaps:
    """Ten crops of x (B, 3, R, R): logits averaged; each crop's maps (upsampled to the crop,
    mirrored back) averaged where the crops overlap, so the frame is the R x R image."""
    b, full = x.shape[0], x.shape[-1]
    windows = ten_crop_windows(full, crop)
    views = []
    for top, left, mirrored in windows:
        view = x[..., top : top + crop, left : left + crop]
        views.append(view.flip(-1) if mirrored else view)
    stacked = torch.cat(views)  # (10 B, 3, S, S), crop-major
    logits = loc.logits(stacked).view(len(windows), b, -1).mean(dim=0)
    k = min(topk, logits.shape[1])
    classes = torch.cat([logits.topk(k, dim=1).indices, labels[:, None]], dim=1)
    raw = loc.raw_maps(stacked, classes.repeat(len(windows), 1))
    crops = _upsample(raw, crop, "bilinear").view(len(windows), b, classes.shape[1], crop, crop)
    total = torch.zeros(b, classes.shape[1], full, full, device=x.device)
    count = torch.zeros(full, full, device=x.device)
    for (top, left, mirrored), m in zip(windows, crops, strict=True):
        total[..., top : top + crop, left : left + crop] += m.flip(-1) if mirrored else m
        count[top : top + crop, left : left + crop] += 1
    maps = total / count.clamp(min=1)
    return BatchMaps(logits, classes, maps, maps[:, -1])


# --- boxes --------------------------------------------------------------------------------------


def located_boxes(
    maps: np.ndarray,
    classes: np.ndarray,
    sizes: np.ndarray,
    gt_boxes: list[np.ndarray],
    gt_labels: list[np.ndarray],
    spec: EvalConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Each map's box in its original image, and its IoU with the ground truth of its class.

    maps (B, j, F, F) in the evaluation frame, classes (B, j), sizes (B, 2) original (W, H)
    -> boxes (B, j, 4) inclusive, ious (B, j). With all_boxes, a map's answer is its candidate
    with the best IoU (the largest component when none overlaps).
    """
    b, j, frame = maps.shape[0], maps.shape[1], maps.shape[-1]
    flat = maps.reshape(b * j, frame, frame)
    if spec.box_rule == "release":
        in_frame = np.stack([release_boxes(m)[0] for m in flat]).reshape(b, j, 4)
    elif not spec.all_boxes:
        in_frame = largest_component_boxes(flat, spec.threshold, spec.normalize).reshape(b, j, 4)
    else:
        candidates = component_boxes(flat, spec.threshold, spec.normalize)
        owner = np.repeat(np.arange(b * j), [len(c) for c in candidates])  # map of a candidate
        image = owner // j
        boxes = scale_boxes(np.concatenate(candidates), (frame, frame), sizes[image])
        ious = best_ious(
            boxes[:, None], classes.reshape(-1)[owner][:, None],
            [gt_boxes[i] for i in image], [gt_labels[i] for i in image],
        )[:, 0]  # fmt: skip
        order = np.lexsort((-ious, owner))  # per map, best IoU first; ties keep the larger
        first = np.ones(len(order), dtype=bool)
        first[1:] = owner[order][1:] != owner[order][:-1]
        pick = order[first]
        return boxes[pick].reshape(b, j, 4), ious[pick].reshape(b, j)
    boxes = scale_boxes(in_frame, (frame, frame), sizes[:, None, :])
    return boxes, best_ious(boxes, classes, gt_boxes, gt_labels)


# --- the run ------------------------------------------------------------------------------------


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


def _load_masks(data: DataSplit, indices: list[int], size: int) -> np.ndarray:
    """The foreground masks of these samples, resized to size x size (nearest): (n, S, S) bool."""
    masks = []
    for i in indices:
        path = data.samples[i].mask_path
        try:
            with Image.open(path) as im:
                mask = im.convert("L").resize((size, size), Image.NEAREST)
        except OSError as err:
            raise InputFileError(f"{path}: unreadable foreground mask ({err})") from None
        masks.append(np.asarray(mask) > 127)
    return np.stack(masks)


class Evaluator:
    """Builds the model and data from the config, then `run()`s over the split."""

    def __init__(self, spec: EvalConfig, env: D.Dist) -> None:
        self.spec = spec
        self.env = env
        self.state: dict[str, Any] | None = None
        if spec.checkpoint is not None:
            self.model, self.state = load_model(spec.checkpoint)
            trained = self.state["config"]
            self.model_cfg = model_config(trained["model"])
            self.data_cfg = resolve_data(spec.data, trained.get("data"))
            self.data = read_split(self.data_cfg, spec.split)
            self._check_classes()
        else:
            self.model_cfg = resolve_model(spec)
            self.data_cfg = resolve_data(spec.data, None)
            self.data = read_split(self.data_cfg, spec.split)
            self.model = build_model(self.model_cfg, len(self.data.classes))
        self.model.to(env.device).eval()
        if spec.trainer.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if spec.localizer == "cam":
            cam_model(self.model)  # a clear error now, not after loading the data
        self.blacklist = (
            read_blacklist(Path(self.data_cfg.blacklist)) if self.data_cfg.blacklist else set()
        )
        self.frame = self.data_cfg.resize_size if spec.ten_crop else self.data_cfg.image_size
        self.thresholds = np.arange(spec.sweep_thresholds, dtype=np.float64) / spec.sweep_thresholds
        self.sweep = BoxAccMeter(self.thresholds, [100 * spec.iou_threshold], spec.all_boxes)
        self.box_acc = BoxAccMeter(self.thresholds, spec.maxboxacc_iou, all_components=True)
        has_masks = all(s.mask_path is not None for s in self.data.samples)
        if spec.pxap == "true" and not has_masks:
            raise ConfigError(
                f"pxap=true but {self.data.root} {spec.split} has no foreground masks"
            )
        self.pxap = (
            PxAPMeter(self.thresholds)
            if spec.maxboxacc and spec.pxap != "false" and has_masks
            else None
        )

    def _check_classes(self) -> None:
        if self.state is None:
            return
        trained = list(self.state["classes"])
        if trained != list(self.data.classes):
            raise ConfigError(
                f"{self.spec.checkpoint} was trained on {len(trained)} classes "
                f"({', '.join(trained[:3])}, ...) but {self.data.root} has "
                f"{len(self.data.classes)} ({', '.join(self.data.classes[:3])}, ...): evaluate on "
                "data with the same classes"
            )

    def _loader(self):
        transform = resize_transform(self.frame) if self.spec.ten_crop else None
        return eval_loader(self.data, self.data_cfg, self.env, transform)

    def _input(self, images: Tensor) -> Tensor:
        x = normalize(images, self.data_cfg.mean, self.data_cfg.std)
        if self.spec.trainer.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def run(self) -> tuple[list[Row], dict[str, Any]]:
        """Evaluate this process's shard, merge all shards -> (rows, merged meters) on rank 0."""
        spec, env = self.spec, self.env
        loc = Localizer(self.model, spec.localizer, spec.trainer.amp, env.device)
        rows: list[Row] = []
        show = spec.trainer.progress and env.is_main
        for batch in tqdm(self._loader(), desc=spec.split, leave=False, disable=not show):
            if batch is None:
                continue
            images, labels, index = batch
            x = self._input(images.to(env.device))
            labels = labels.to(env.device)
            if spec.ten_crop:
                out = localize_ten_crop(loc, x, labels, spec.topk, self.data_cfg.image_size)
            else:
                out = localize_batch(loc, x, labels, spec.topk, wsol=spec.maxboxacc)
            rows += self._score(out, index.tolist())
        return self._merge(rows)

    def _score(self, out: BatchMaps, indices: list[int]) -> list[Row]:
        frame = self.frame
        samples = [self.data.samples[i] for i in indices]
        classes = out.classes.cpu().numpy()  # (B, k + 1)
        probs = out.logits.softmax(dim=1).gather(1, out.classes[:, :-1]).cpu().numpy()
        boxes, ious = located_boxes(
            out.maps.float().cpu().numpy(), classes,
            np.array([s.size or read_image_size(s.path) for s in samples]),
            [s.boxes for s in samples], [s.box_labels for s in samples], self.spec,
        )  # fmt: skip
        rows = [
            Row(
                index=index,
                label=sample.label,
                classes=classes[i, :-1].tolist(),
                scores=probs[i].tolist(),
                boxes=boxes[i, :-1].tolist(),
                ious=ious[i, :-1].tolist(),
                gt_known_box=boxes[i, -1].tolist(),
                gt_known_iou=float(ious[i, -1]),
            )
            for i, (index, sample) in enumerate(zip(indices, samples, strict=True))
        ]
        keep, gt_frame = [], []
        for i, sample in enumerate(samples):
            own = sample.boxes[sample.box_labels == sample.label]
            if len(own) and self._counts_for_loc(sample):
                keep.append(i)
                gt_frame.append(scale_boxes(own, sample.size, (frame, frame)))
        if keep:
            self._sweep_update(out, keep, gt_frame, indices)
        return rows

    def _counts_for_loc(self, sample) -> bool:
        return sample.image_id not in self.blacklist

    def _sweep_update(
        self, out: BatchMaps, keep: list[int], gt: list[np.ndarray], indices: list[int]
    ) -> None:
        """The paper's rule at every threshold (GT-known) and MaxBoxAccV2/PxAP, true class only."""
        known = out.maps[keep, -1].float().cpu().numpy()
        scaled, valid = normalize_maps(known, self.spec.normalize)
        scaled = np.clip(scaled, 0.0, 1.0)
        scaled[~valid] = 1.0  # an unusable map gives the whole-image box, as in boxes.py
        self.sweep.update(scaled, gt)
        if not self.spec.maxboxacc:
            return
        wsol, valid = normalize_maps(out.wsol_maps[keep].float().cpu().numpy(), "minmax")
        self.box_acc.update(wsol, gt)  # invalid maps stay zeros, as wsolevaluation's
        if self.pxap is not None:
            masks = _load_masks(self.data, [indices[i] for i in keep], self.frame)
            self.pxap.update(wsol, masks)

    def _merge(self, rows: list[Row]) -> tuple[list[Row], dict[str, Any]]:
        env = self.env
        gathered = D.gather_objects(rows, env)
        meters = [self.sweep, self.box_acc] + ([self.pxap] if self.pxap is not None else [])
        for meter in meters:
            meter.all_reduce(lambda t: D.all_reduce_sum(t.to(env.device), env).cpu())
        merged = sorted((r for part in gathered for r in part), key=lambda r: r.index)
        return merged, {"sweep": self.sweep, "box_acc": self.box_acc, "pxap": self.pxap}


# --- results ------------------------------------------------------------------------------------


def _outcomes(rows: list[Row], iou_threshold: float) -> dict[str, np.ndarray]:
    return image_outcomes(
        np.array([r.classes for r in rows]),
        np.array([r.label for r in rows]),
        np.array([r.ious for r in rows]),
        np.array([r.gt_known_iou for r in rows]),
        iou_threshold,
    )


def _box_text(boxes: np.ndarray | list) -> str:
    return ";".join(" ".join(str(int(v)) for v in box) for box in np.asarray(boxes).reshape(-1, 4))


def predictions_csv(rows: list[Row], data: DataSplit, loc_mask: np.ndarray) -> str:
    """One row per image: ids, ground truth, the top-k (class, score, box, IoU), GT-known."""
    k = len(rows[0].classes) if rows else 0
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    head = ["index", "image_id", "label", "gt_wnids", "gt_boxes", "loc_counted"]
    for r in range(1, k + 1):
        head += [f"pred{r}_wnid", f"pred{r}_score", f"pred{r}_box", f"pred{r}_iou"]
    writer.writerow([*head, "gt_known_box", "gt_known_iou"])
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
        writer.writerow([*line, _box_text(row.gt_known_box), f"{row.gt_known_iou:.6f}"])
    return out.getvalue()


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def table_row(name: str, metrics: dict[str, Any]) -> str:
    """The paper's Table 2 layout (localization error, top-1 / top-5), with our extra columns."""
    head = (
        "| Method | top-1 val. error | top-5 val. error | GT-known loc. error | MaxBoxAccV2 "
        "| cls. top-1 / top-5 error |\n|---|---|---|---|---|---|\n"
    )
    cls = f"{_fmt(metrics['cls_top1_err'])} / {_fmt(metrics['cls_top5_err'])}"
    return head + (
        f"| {name} | {_fmt(metrics['loc_top1_err'])} | {_fmt(metrics['loc_top5_err'])} "
        f"| {_fmt(metrics['gt_known_loc_err'])} | {_fmt(metrics['maxboxacc_v2'])} | {cls} |\n"
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


def summarize(
    spec: EvalConfig, ev: Evaluator, rows: list[Row], meters: dict[str, Any], seconds: float
) -> tuple[dict[str, Any], np.ndarray, dict[str, Any] | None]:
    """metrics.json's content, which images count for localization, and MaxBoxAcc's summary."""
    data = ev.data
    if not rows:
        raise InputFileError(f"{data.root} {spec.split}: no image could be evaluated")
    has_box = np.array(
        [bool((data.samples[r.index].box_labels == r.label).any()) for r in rows], dtype=bool
    )
    blacklisted = np.array([data.samples[r.index].image_id in ev.blacklist for r in rows], bool)
    loc_mask = has_box & ~blacklisted
    errors = error_rates(_outcomes(rows, spec.iou_threshold), loc_mask)
    located = int(loc_mask.sum())
    box_acc = meters["box_acc"].summary() if located and spec.maxboxacc else None
    pxap = meters["pxap"].value() if located and meters["pxap"] is not None else None
    name = paper_name(ev.model_cfg)
    shape = summarize_model(unwrap(ev.model), ev.model_cfg, ev.data_cfg.image_size)
    if spec.localizer == "backprop":
        name = f"Backprop on {name}"
    metrics: dict[str, Any] = {
        **errors,
        "maxboxacc_v2": box_acc["maxboxacc_v2"] if box_acc else None,
        "box_acc": {str(k): v for k, v in box_acc["box_acc"].items()} if box_acc else None,
        "best_threshold": (
            {str(k): v for k, v in box_acc["best_threshold"].items()} if box_acc else None
        ),
        "pxap": pxap,
        "num_images": len(rows),
        "num_loc_images": located,
        "num_blacklisted": int(blacklisted.sum()),
        "num_without_boxes": int((~has_box).sum()),
        "variant": variant_name(ev.model_cfg),
        "paper_name": name,
        "pool": ev.model_cfg.pool if shape.map_size else None,
        "map_size": "{}x{}".format(*shape.map_size) if shape.map_size else None,
        "checkpoint": spec.checkpoint,
        "seed": (ev.state or {}).get("config", {}).get("seed"),
        "data": {
            "root": str(data.root),
            "split": spec.split,
            "source": data.source,
            "num_classes": len(data.classes),
            "image_size": ev.data_cfg.image_size,
            "blacklist": ev.data_cfg.blacklist,
            **dataset_kind(ev.data_cfg),
        },
        "protocol": {
            "localizer": spec.localizer,
            "box_rule": spec.box_rule,
            "threshold": spec.threshold,
            "normalize": spec.normalize,
            "all_boxes": spec.all_boxes,
            "ten_crop": spec.ten_crop,
            "iou_threshold": spec.iou_threshold,
            "topk": spec.topk,
            "map_upsampling": "bilinear to the evaluated image (frame); boxes scaled to the "
            "original image, IoU there",
            "eval_frame": ev.frame,
            "maxboxacc": "true class's map, bicubic to the frame (single crop CAM), min-max "
            f"normalised, {spec.sweep_thresholds} thresholds, every 8-connected component, "
            f"IoU levels {list(spec.maxboxacc_iou)} (see cam_repro/wsol.py for the differences "
            "from wsolevaluation)",
        },
        "world_size": ev.env.world_size,
        "seconds": round(seconds, 2),
    }
    return metrics, loc_mask, box_acc


def evaluate_run(cfg: EvalConfig | Any, run_dir: str | Path) -> dict[str, Any]:
    """Evaluate as `cfg` says, writing into `run_dir`; returns metrics.json's content (rank 0)."""
    spec = eval_config(cfg)
    run_dir = Path(run_dir)
    env = D.setup(spec.trainer.device, spec.trainer.dist_backend)
    handler = None
    try:
        if spec.trainer.threads:
            torch.set_num_threads(spec.trainer.threads)
        if env.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            handler = attach_log_file(run_dir / "eval.log")
        else:
            logging.getLogger().setLevel(logging.WARNING)
        tick = time.perf_counter()
        ev = Evaluator(spec, env)
        log.info(
            "evaluating %s (%s) on %s %s: %d images, localizer=%s box_rule=%s",
            variant_name(ev.model_cfg), spec.checkpoint or "no checkpoint", ev.data.root,
            spec.split, len(ev.data), spec.localizer, spec.box_rule,
        )  # fmt: skip
        # only with a bar to keep clear of: the redirect adds a console handler of its own
        with logging_redirect_tqdm() if spec.trainer.progress else nullcontext():
            rows, meters = ev.run()
        if not env.is_main:
            return {}
        metrics, loc_mask, box_acc = summarize(spec, ev, rows, meters, time.perf_counter() - tick)
        config_text = OmegaConf.to_yaml(OmegaConf.structured(spec))
        write_text_atomic(run_dir / "config.yaml", config_text)
        write_text_atomic(
            run_dir / "predictions.csv",
            predictions_csv(rows, ev.data, loc_mask),
        )
        write_text_atomic(run_dir / "table.md", table_row(metrics["paper_name"], metrics))
        if metrics["num_loc_images"]:
            write_text_atomic(run_dir / "sweep.csv", sweep_csv(meters["sweep"].summary(), box_acc))
        write_json(run_dir / "metrics.json", metrics)
        log.info(
            "cls top-1/top-5 err %s / %s, loc top-1/top-5 err %s / %s, GT-known err %s, "
            "MaxBoxAccV2 %s%s",
            _fmt(metrics["cls_top1_err"]), _fmt(metrics["cls_top5_err"]),
            _fmt(metrics["loc_top1_err"]), _fmt(metrics["loc_top5_err"]),
            _fmt(metrics["gt_known_loc_err"]), _fmt(metrics["maxboxacc_v2"]),
            f", PxAP {metrics['pxap']:.2f}" if metrics["pxap"] is not None else "",
        )  # fmt: skip
        return metrics
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()
        D.teardown()
