"""`cam-eval`: classification and localization errors of a network on a labelled split.

The protocol is the paper's (docs/design.md, "Localization protocol"; the network:
cam_repro.evaluate.network; the maps of a batch: cam_repro.evaluate.localizer; their boxes, IoUs
and peaks in the original image: cam_repro.localize.scoring; metrics.json's content:
cam_repro.evaluate.summary). From the boxes come the five errors of
cam_repro.localize.loc_error. Beside them: MaxBoxAccV2 and, where the data has masks, PxAP (Choe
et al. 2020) from the true class's map, and the threshold sweep of the paper's rule.

A run dir gets: config.yaml, eval.log, metrics.json, predictions.csv (one row per image),
table.md (one row in the layout of the paper's Table 2) and sweep.csv (accuracy per threshold);
their formats: cam_repro.evaluate.outputs. Under torchrun every process evaluates its shard;
rank 0 merges them once and writes. A folder that already holds a metrics.json is refused unless
`overwrite=true` (which removes the old results first).

With `threshold_from=DIR` (another run's folder, e.g. of a held-out val split), the paper rule's
threshold is that run's best (`config.heldout_thresholds`), and MaxBoxAcc is read off this run's
curves at that run's best thresholds too, beside the oracle (this split's best); metrics.json's
`thresholds` says where each threshold came from. A DIR that chose its thresholds on any image
scored here is refused (`config.check_held_out`): they would not be held out.

A metric without a value on this split (no image with a box, PxAP without background pixels,
top-5 over five classes or fewer, ...) is null in metrics.json with its reason under "undefined"
(`outputs.with_undefined`), logged as a warning; the other metrics are written as usual.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from torch import Tensor
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from cam_repro.data import model_input, read_split
from cam_repro.data.annotations import read_blacklist
from cam_repro.data.dataset import SkipLog
from cam_repro.data.loaders import eval_loader, prefetch_to_device
from cam_repro.data.masks import read_masks
from cam_repro.data.samples import original_sizes
from cam_repro.data.transforms import resize_transform
from cam_repro.evaluate.config import (
    EvalConfig,
    box_rule,
    check_held_out,
    eval_config,
    heldout_thresholds,
    posthoc_spec,
    resolve_data,
    sweep_grid,
)
from cam_repro.evaluate.localizer import (
    TOPK,
    TRUE,
    BatchMaps,
    Localizer,
    RawMaps,
    check_batch,
    forward_maps,
    hooked_layer,
    localize_ten_crop,
    posthoc_cost,
    posthoc_cost_line,
)
from cam_repro.evaluate.network import load_network
from cam_repro.evaluate.outputs import (
    Row,
    fmt_number,
    predictions_csv,
    sweep_csv,
    table_row,
)
from cam_repro.evaluate.summary import metrics_json
from cam_repro.evaluate.vqa import evaluate_vqa
from cam_repro.localize.boxes import normalize_maps, scale_boxes
from cam_repro.localize.cam import cam_model
from cam_repro.localize.gradcam import GradCAMLayerError, gradcam_layer
from cam_repro.localize.pxap import PxAPMeter
from cam_repro.localize.scoring import score_maps
from cam_repro.localize.wsol import (
    BoxAccMeter,
    resize_boxes_wsolevaluation,
    wsolevaluation_thresholds,
)
from cam_repro.models import variant_name
from cam_repro.models.checkpoint import load_checkpoint
from cam_repro.runtime import distributed as D
from cam_repro.runtime.background import Background
from cam_repro.runtime.context import run_context
from cam_repro.runtime.errors import ConfigError
from cam_repro.runtime.files import write_text_atomic
from cam_repro.runtime.metrics_file import save_metrics

log = logging.getLogger(__name__)

# What a finished run leaves, the marker of a finished run first.
RESULTS = ("metrics.json", "predictions.csv", "table.md", "sweep.csv")


class Evaluator:
    """Builds the model and data from the config, then `run()`s over the split."""

    def __init__(self, spec: EvalConfig, env: D.Dist, state: dict[str, Any] | None = None) -> None:
        """`state`: the checkpoint `spec.checkpoint`, already loaded (else it is loaded here)."""
        self.spec = spec
        self.env = env
        if spec.checkpoint is not None:
            self.net = load_network(spec.checkpoint, None, spec.data, env.device,
                                    spec.runtime.channels_last, state=state)  # fmt: skip
            self.data = read_split(self.net.data, spec.split)
            self._check_classes()
        else:  # the data first: the network gets as many classes as it has
            self.data = read_split(resolve_data(spec.data, None), spec.split)
            classes = len(self.data.classes)
            self.net = load_network(None, spec.model, spec.data, env.device,
                                    spec.runtime.channels_last, num_classes=classes)  # fmt: skip
        self.state, self.model = self.net.state, self.net.model
        self.model_cfg, self.data_cfg = self.net.config, self.net.data
        self.source = spec.checkpoint or self.net.variant  # for error messages
        if spec.localizer == "cam":
            cam_model(self.model)  # a clear error now, not after loading the data
        elif spec.localizer == "gradcam":
            try:
                gradcam_layer(self.model, spec.gradcam_layer)
            except GradCAMLayerError as err:
                raise ConfigError(f"gradcam_layer: {err}") from None
        self.posthoc = posthoc_spec(spec.localizer, spec.torchcam)
        self.posthoc_cost: dict[str, Any] | None = None
        if self.posthoc is not None:  # its layer checked now, not after loading the data
            self.posthoc_cost = posthoc_cost(self.model, self.posthoc, self.data_cfg.image_size)
            log.info("%s", posthoc_cost_line(self.posthoc, self.posthoc_cost, spec.topk))
        self.blacklist = (
            read_blacklist(Path(self.data_cfg.blacklist)) if self.data_cfg.blacklist else set()
        )
        self.skips = SkipLog(self.data)
        self.rule = box_rule(spec)
        self.frame = self.data_cfg.resize_size if spec.ten_crop else self.data_cfg.image_size
        self.thresholds = sweep_grid(spec.sweep_thresholds)
        # MaxBoxAccV2 and PxAP: our convention, or wsolevaluation's exactly (its thresholds
        # np.arange(0, 1, 1 / n), uint8 contours; GT boxes and masks resized by its rules)
        self.convention = "wsolevaluation" if spec.wsol_convention else "ours"
        self.wsol_grid = (
            wsolevaluation_thresholds(1.0 / spec.sweep_thresholds)
            if spec.wsol_convention
            else self.thresholds
        )
        self.mask_rule = "opencv" if spec.wsol_convention else "pil"
        has_masks = all(s.masks for s in self.data.samples)
        if spec.pxap == "true" and not has_masks:
            raise ConfigError(
                f"pxap=true but {self.data.root} {spec.split} has no foreground masks"
            )
        # PxAP: asked for, or (auto) beside MaxBoxAccV2 when every image has a mask
        self.with_pxap = has_masks and (
            spec.pxap == "true" or (spec.pxap == "auto" and spec.maxboxacc)
        )
        # the true class's bicubic map, for MaxBoxAccV2 and PxAP only
        self.with_wsol_maps = spec.maxboxacc or self.with_pxap
        self._local = threading.local()  # each scoring thread's own meters
        self._parts: list[Meters] = []
        self._lock = threading.Lock()

    def _new_meters(self) -> Meters:
        spec = self.spec
        sweep = (
            BoxAccMeter(self.thresholds, [100 * spec.iou_threshold], spec.all_boxes)
            if spec.sweep
            else None
        )
        box_acc = None
        if spec.maxboxacc:
            box_acc = BoxAccMeter(self.wsol_grid, spec.maxboxacc_iou, True, self.convention)
        return Meters(sweep, box_acc, PxAPMeter(self.wsol_grid) if self.with_pxap else None)

    def _thread_meters(self) -> Meters:
        """This scoring thread's meters (made on first use; `_merge` adds them up)."""
        meters = getattr(self._local, "meters", None)
        if meters is None:
            meters = self._local.meters = self._new_meters()
            with self._lock:
                self._parts.append(meters)
        return meters

    def _check_classes(self) -> None:
        trained = self.net.classes
        if trained is None:
            return
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
        cfg = self.data_cfg
        return model_input(images, cfg.mean, cfg.std, self.spec.runtime.channels_last)

    def run(self) -> tuple[list[Row], Meters]:
        """Evaluate this process's shard, merge all shards -> (rows, merged meters) on rank 0.

        The main thread loads batches and runs the forward pass; `spec.score_threads` worker
        threads score them (upsampling on the CPU, boxes, IoU, the sweeps, PxAP) while the next
        forward pass runs. Each thread fills its own meters (integer counts, added up at the
        end) and the rows come back in batch order: the results are those of a plain loop.
        On a GPU the maps are upsampled there and copied to pinned memory without blocking."""
        spec, env = self.spec, self.env
        posthoc = hooked_layer(self.posthoc, self.posthoc_cost)  # the checked layer, hooked
        loc = Localizer(self.model, spec.localizer, spec.runtime.amp, env.device,
                        spec.gradcam_layer, posthoc)  # fmt: skip
        show = spec.runtime.progress and env.is_main
        on_device = env.device.type == "cuda"
        threads = spec.score_threads
        # the Localizer's hooks (torch-cam's) go on every exit, errors and Ctrl-C included
        with loc, Background(threads, max(2, 2 * threads), "cam-eval") as scoring:
            batches = tqdm(self._loader(), desc=spec.split, leave=False, disable=not show)
            for images, labels, index, skipped in prefetch_to_device(batches, env):
                self.skips.add(skipped)
                if images is None:
                    continue
                x = self._input(images)
                where = f"{self.source}, batch from {self.data.samples[int(index[0])].path}"
                if spec.ten_crop:
                    out = localize_ten_crop(loc, x, labels, spec.topk, self.data_cfg.image_size)
                else:
                    out = forward_maps(loc, x, labels, spec.topk, wsol=self.with_wsol_maps)
                if on_device and isinstance(out, RawMaps):
                    out = out.upsampled()  # on the GPU: the CPU threads only sweep
                # the maps to the CPU without waiting (GPU), checked and scored in a thread
                out, arrived = out.to_host() if on_device else (out, None)
                scoring.submit(self._score, out, arrived, index.tolist(), where)
            rows = [row for part in scoring.results() for row in part]
        return self._merge(rows)

    def _score(
        self,
        out: BatchMaps | RawMaps,
        arrived: Callable[[], None] | None,
        indices: list[int],
        where: str,
    ) -> list[Row]:
        """One batch's rows, its counts added to this thread's meters (in a scoring thread).
        A NaN or infinite logit or map stops the run here (raised in the main thread at its next
        batch): checking on the device would make the main thread wait for the GPU."""
        if arrived is not None:
            arrived()  # the copy from the GPU has landed
        check_batch(out, where, self.spec.runtime.amp)
        if isinstance(out, RawMaps):
            out = out.upsampled()
        meters = self._thread_meters()
        frame = self.frame
        samples = [self.data.samples[i] for i in indices]
        classes = out.classes.cpu().numpy()  # (B, k + 1)
        probs = out.topk_probs().cpu().numpy()
        sizes = original_sizes(samples, self.data_cfg.max_image_pixels)
        maps = out.maps.float().cpu().numpy()
        scored = score_maps(
            maps, classes, sizes, [s.boxes for s in samples], [s.box_labels for s in samples],
            self.rule,
        )  # fmt: skip
        boxes, ious = scored.boxes, scored.ious
        # the pointing game: the true class's map (the last) on one of its own boxes
        peaks, in_box = scored.peaks[:, TRUE], scored.hits[:, TRUE]
        rows = [
            Row(
                index=index,
                label=sample.label,
                classes=classes[i, TOPK].tolist(),
                scores=probs[i].tolist(),
                boxes=boxes[i, TOPK].tolist(),
                ious=ious[i, TOPK].tolist(),
                gt_known_box=boxes[i, TRUE].tolist(),
                gt_known_iou=float(ious[i, TRUE]),
                gt_known_peak=peaks[i].tolist(),
                peak_in_box=bool(in_box[i]),
            )
            for i, (index, sample) in enumerate(zip(indices, samples, strict=True))
        ]
        keep, gt_frame, masked = [], [], []
        for i, sample in enumerate(samples):
            if not self._counts_for_loc(sample):
                continue
            own = sample.own_boxes
            if len(own):
                keep.append(i)
                size = tuple(int(v) for v in sizes[i])
                if self.spec.wsol_convention:  # their resize_bbox: int(x * frame / width)
                    gt_frame.append(resize_boxes_wsolevaluation(own, size, (frame, frame)))
                else:
                    gt_frame.append(scale_boxes(own, size, (frame, frame)))
            if meters.pxap is not None and sample.masks:  # OpenImages: masks, no boxes
                masked.append(i)
        if keep and meters.sweep is not None:
            self._sweep_update(meters.sweep, maps[keep, TRUE], gt_frame)
        # the true class's maps of MaxBoxAccV2 and PxAP, min-max normalised once per batch in
        # float32, as wsolevaluation's normalize_scoremap (its uint8 quantisation depends on the
        # dtype); an unusable map stays zeros, as theirs
        keep_wsol = keep if meters.box_acc is not None else []
        if keep_wsol or masked:
            wsol = normalize_maps(out.wsol_maps.float().cpu().numpy(), "minmax")[0]
            if keep_wsol:
                meters.box_acc.update(wsol[keep], gt_frame)
            if masked:
                masks, ignore = read_masks([samples[i] for i in masked], frame, self.mask_rule)
                meters.pxap.update(wsol[masked], masks, ignore)
        return rows

    def _counts_for_loc(self, sample) -> bool:
        return sample.image_id not in self.blacklist

    def _sweep_update(self, meter: BoxAccMeter, known: np.ndarray, gt: list[np.ndarray]) -> None:
        """The paper's rule at every threshold (GT-known): the true class's maps (n, F, F)."""
        scaled, valid = normalize_maps(known, self.spec.normalize)
        scaled = np.clip(scaled, 0.0, 1.0)
        scaled[~valid] = 1.0  # an unusable map gives the whole-image box, as in boxes.py
        meter.update(scaled, gt)

    def _merge(self, rows: list[Row]) -> tuple[list[Row], Meters]:
        env = self.env
        total = self._new_meters()  # every scoring thread's counts, added up
        for part in self._parts:
            total.add(part)
        gathered = D.gather_objects(rows, env)
        self.skips.merge(D.gather_objects(dict(self.skips.at_load), env))
        for meter in total.present():
            meter.all_reduce(lambda t: D.all_reduce_sum(t.to(env.device), env).cpu())
        merged = sorted((r for part in gathered for r in part), key=lambda r: r.index)
        return merged, total


@dataclass
class Meters:
    """What cam-eval accumulates over the images beside the rows: the paper rule's sweep
    (sweep=true), MaxBoxAccV2's (maxboxacc=true) and PxAP's histograms; None where not asked."""

    sweep: BoxAccMeter | None
    box_acc: BoxAccMeter | None
    pxap: PxAPMeter | None

    def present(self) -> list[BoxAccMeter | PxAPMeter]:
        return [m for m in (self.sweep, self.box_acc, self.pxap) if m is not None]

    def add(self, other: Meters) -> None:
        """Add another thread's counts (integers: the totals do not depend on the split)."""
        for mine, theirs in zip(self.present(), other.present(), strict=True):
            mine.add(theirs)


def evaluate_run(cfg: EvalConfig | Any, run_dir: str | Path) -> dict[str, Any]:
    """Evaluate as `cfg` says, writing into `run_dir`; returns metrics.json's content (rank 0)."""
    spec = eval_config(cfg)
    run_dir = Path(run_dir)
    heldout = heldout_thresholds(spec, run_dir)  # refused before the run folder is touched
    if heldout is not None:
        spec.threshold = heldout.paper_threshold  # wins over threshold=; metrics.json says so
    with run_context(spec.runtime, run_dir, "eval.log", RESULTS, spec.overwrite) as run:
        tick = time.perf_counter()
        state = load_checkpoint(spec.checkpoint) if spec.checkpoint else None
        if state is not None and state.get("question_vocab"):  # cam-train task=vqa
            if heldout is not None:
                raise ConfigError("threshold_from: a VQA checkpoint's evaluation has no sweep")
            return evaluate_vqa(spec, state, run_dir, run.env)
        ev = Evaluator(spec, run.env, state)
        if heldout is not None:  # its images against this split's, before the long part
            heldout = check_held_out(heldout, ev.data)
        log.info(
            "evaluating %s (%s) on %s %s: %d images, localizer=%s box_rule=%s",
            variant_name(ev.model_cfg), spec.checkpoint or "no checkpoint", ev.data.root,
            spec.split, len(ev.data), spec.localizer, spec.box_rule,
        )  # fmt: skip
        # only with a bar to keep clear of: the redirect adds a console handler of its own
        with logging_redirect_tqdm() if spec.runtime.progress else nullcontext():
            rows, meters = ev.run()
        if not run.is_main:
            return {}
        digest = ev.net.weights_sha256 if spec.checkpoint else None
        if heldout is not None and heldout.checkpoint_sha256 not in (None, digest):
            log.warning(
                "threshold_from: %s evaluated another checkpoint than this run's (SHA-256 %s, "
                "this %s): its thresholds were chosen for another network",
                heldout.folder, heldout.checkpoint_sha256[:12], (digest or "none")[:12],
            )  # fmt: skip
        seconds = time.perf_counter() - tick
        metrics, loc_mask, box_acc = metrics_json(spec, ev, rows, meters, seconds, heldout, digest)
        config_text = OmegaConf.to_yaml(OmegaConf.structured(spec))
        write_text_atomic(run_dir / "config.yaml", config_text)
        write_text_atomic(
            run_dir / "predictions.csv",
            predictions_csv(rows, ev.data, loc_mask),
        )
        write_text_atomic(run_dir / "table.md", table_row(metrics["paper_name"], metrics))
        located = meters.sweep is not None and metrics["num_loc_images"]
        sweep = meters.sweep.summary() if located else None
        if sweep is not None:
            write_text_atomic(run_dir / "sweep.csv", sweep_csv(sweep, box_acc))
        metrics = save_metrics(run_dir / "metrics.json", "eval", metrics)
        log.info(
            "cls top-1/top-5 err %s / %s, loc top-1/top-5 err %s / %s, GT-known err %s, "
            "MaxBoxAccV2 %s%s",
            fmt_number(metrics["cls_top1_err"]), fmt_number(metrics["cls_top5_err"]),
            fmt_number(metrics["loc_top1_err"]), fmt_number(metrics["loc_top5_err"]),
            fmt_number(metrics["gt_known_loc_err"]), fmt_number(metrics["maxboxacc_v2"]),
            f", PxAP {metrics['pxap']:.2f}" if metrics["pxap"] is not None else "",
        )  # fmt: skip
        for key, reason in metrics["undefined"].items():
            log.warning("%s is undefined (null in metrics.json): %s", key, reason)
        if heldout is not None and metrics["num_loc_images"]:
            _log_heldout(metrics, sweep)
        if metrics["num_skipped"]:
            log.warning(
                "evaluated %d images; %d unreadable ones left out (data.bad_images=skip)",
                metrics["num_images"], metrics["num_skipped"],
            )  # fmt: skip
        return metrics


def _log_heldout(metrics: dict[str, Any], sweep: dict[str, Any] | None) -> None:
    """The numbers at threshold_from's thresholds beside the oracle's (this split's best; the
    paper rule's needs this run's sweep, sweep=true)."""
    record = metrics["thresholds"]
    paper = record["paper_rule"]
    if sweep is not None:
        (level,) = sweep["box_acc"]
        log.info(
            "thresholds from %s (%s of %s): paper rule at %g, GT-known err %.2f (the errors "
            "above); at this split's best threshold %g it would be %.2f (oracle)",
            paper["from"], paper["split"], paper["data"], paper["value"],
            metrics["gt_known_loc_err"], sweep["best_threshold"][level],
            100 - sweep["box_acc"][level],
        )  # fmt: skip
    else:
        log.info(
            "thresholds from %s (%s of %s): paper rule at %g, GT-known err %.2f (the errors "
            "above; sweep=true adds this split's best threshold, the oracle)",
            paper["from"], paper["split"], paper["data"], paper["value"],
            metrics["gt_known_loc_err"],
        )  # fmt: skip
    if metrics["box_acc_heldout"] is None:
        return
    for level, acc in metrics["box_acc_heldout"].items():
        entry = record["maxboxacc"][level]
        log.info(
            "BoxAcc@%s: %.2f at the held-out threshold %g, %.2f at this split's best %g (oracle)",
            level, acc, entry["value"], metrics["box_acc"][level], entry["oracle_value"],
        )  # fmt: skip
    log.info(
        "MaxBoxAccV2: %.2f at the held-out thresholds, %.2f at the oracle's",
        metrics["maxboxacc_v2_heldout"], metrics["maxboxacc_v2"],
    )  # fmt: skip
