"""What a run reports, on rank 0: train.log's lines, metrics.json, and TensorBoard under tb/
(the loss and lr, each epoch's numbers, the top-1 CAMs of a few fixed val images)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from cam_repro.data.dataset import Skipped
from cam_repro.data.samples import DataSplit
from cam_repro.localize.boxes import scale_boxes
from cam_repro.localize.cam import predict_with_cams
from cam_repro.localize.overlay import draw_boxes, normalize_cam, overlay
from cam_repro.models import CAMNet
from cam_repro.runtime import distributed as D
from cam_repro.runtime.metrics_file import save_metrics
from cam_repro.train.epoch import Inputs
from cam_repro.train.state import LOG_NAME, RunState

log = logging.getLogger(LOG_NAME)


@dataclass(frozen=True)
class RunLabel:
    """What metrics.json says the run is, beside its numbers."""

    variant: str
    paper_name: str  # with the method unless it is CAM ("VGGnet-GAP (ACoL)")
    method: str  # the WSOL method trained (models/method_config.py's METHODS)
    seed: int
    num_classes: int
    world_size: int
    # the weights it started from: which file, and what was not loaded (the one exception, a
    # classifier of another size) or is new (a CAM head); None: built without a weights file
    weights_load: dict[str, Any] | None


def log_start(
    label: RunLabel,
    model: nn.Module,
    *,
    sizes: tuple[int, int],
    steps: int,
    batch_size: int,
    epochs: int,
    device: torch.device,
    resumed_from: str | None,
    run_dir: Path,
) -> None:
    """The run's first lines: the network and its method, the data (`sizes`: train and val
    images), the plan."""
    params = sum(p.numel() for p in model.parameters())
    log.info(
        "%s (%s), method %s: %s parameters, %d classes; train %d images, val %d; %d batches of "
        "%d per epoch x %d process(es), %d epochs on %s%s",
        label.variant,
        label.paper_name,
        label.method,
        f"{params:,}",
        label.num_classes,
        sizes[0],
        sizes[1],
        steps,
        batch_size,
        label.world_size,
        epochs,
        device,
        f"; resumed from {resumed_from}" if resumed_from else "",
    )
    log.info("run dir: %s", run_dir)


def log_epoch(e: dict[str, Any], epochs: int) -> None:
    """One line per epoch: train loss and error, val's if it ran, lr, speed."""
    val = ""
    if "val_top1_err" in e:
        val = (
            f" | val loss {e['val_loss']:.4f}, top-1 err {e['val_top1_err']:.2f}%, "
            f"top-5 err {e['val_top5_err']:.2f}%"
        )
    log.info(
        "epoch %d/%d: train loss %.4f, top-1 err %.2f%%%s | lr %.3g, %.0f img/s, %.1f s",
        e["epoch"],
        epochs,
        e["train_loss"],
        e["train_top1_err"],
        val,
        e["lr"],
        e["images_per_s"],
        e["epoch_time_s"],
    )


def log_done(elapsed: float, best: dict[str, Any] | None, counts: dict[str, Any]) -> None:
    """The last lines: time, best val error, unreadable images left out (`guards.skip_counts`)."""
    best_text = "n/a" if not best else f"{best['val_top1_err']:.2f}% (epoch {best['epoch']})"
    log.info("done in %.1f s; best val top-1 error %s", elapsed, best_text)
    if counts["num_train_skipped"] or counts["num_val_skipped"]:
        log.warning(
            "trained on %d images, validated on %d; left out as unreadable: %d train, "
            "%d val (data.bad_images=skip)",
            counts["num_train"], counts["num_val"], counts["num_train_skipped"],
            counts["num_val_skipped"],
        )  # fmt: skip


def write_metrics(
    path: Path,
    status: str,
    label: RunLabel,
    run: RunState,
    counts: dict[str, Any],
    digests: list[object],
) -> dict[str, Any]:
    """Write metrics.json (`status`: running, finished, interrupted ..., diverged ...); returns it.
    `counts`: `guards.skip_counts`; `digests`: each process's `guards.weights_digest` at the end."""
    metrics = {
        "status": status,
        "variant": label.variant,
        "paper_name": label.paper_name,
        "method": label.method,
        "seed": label.seed,
        "num_classes": label.num_classes,
        **counts,
        "world_size": label.world_size,
        "epochs_done": len(run.history),
        "global_step": run.global_step,
        "best": run.best,
        "final": run.history[-1] if run.history else None,
        "epochs": run.history,
        "checkpoints": {"last": "checkpoints/last.pt", "best": "checkpoints/best.pt"},
        "weights_load": label.weights_load,
    }
    if digests:  # one per process: equal when DDP kept them in step
        metrics["rank_weight_digests"] = digests
    return save_metrics(path, "train", metrics)


def cam_images(count: int, size: int, model: nn.Module) -> list[int]:
    """`count` val indices spread over a split of `size` images; none for a network without CAMs."""
    n = min(count, size)
    if not (n and isinstance(model, CAMNet)):
        return []
    return np.linspace(0, size - 1, n).round().astype(int).tolist()


@torch.no_grad()
def cam_pictures(
    model: nn.Module, dataset, indices: list[int], data: DataSplit, inputs: Inputs, device
) -> Tensor | None:
    """The top-1 CAM of the val images `indices` of `dataset` (a loader's, over `data`), over the
    image, with the GT boxes (green): (N, 3, S, S) uint8; None if every one is unreadable."""
    items = [dataset[i] for i in indices]
    items = [it for it in items if not isinstance(it, Skipped)]
    if not items:
        return None
    images = torch.stack([it[0] for it in items]).to(device)  # uint8 (N, 3, S, S)
    net = D.unwrap(model)
    net.eval()
    out = predict_with_cams(net, inputs(images).float(), topk=1)
    net.train()
    size = images.shape[-1]
    show = max(size, 128)  # small benchmark images are drawn larger
    pictures = []
    for (image, _, index), cam in zip(items, out.cams[:, 0].float().cpu(), strict=True):
        pixels = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
        pixels = np.asarray(Image.fromarray(pixels).resize((show, show), Image.NEAREST))
        picture = overlay(pixels, normalize_cam(cam.numpy(), "max"))
        sample = data.samples[index]
        if sample.size is not None and len(sample.boxes):
            picture = draw_boxes(picture, scale_boxes(sample.boxes, sample.size, (show, show)))
        pictures.append(torch.from_numpy(picture).permute(2, 0, 1))
    return torch.stack(pictures)


class Board:
    """TensorBoard events under `folder`; `purge_step` (a resume): drop events after it."""

    def __init__(self, folder: Path, purge_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(folder), purge_step=purge_step)

    def train_window(self, loss: float, lr: float, step: int) -> None:
        """The last batches' mean loss and the lr the next batch uses."""
        self.writer.add_scalar("train/loss", loss, step)
        self.writer.add_scalar("train/lr", lr, step)

    def epoch(self, e: dict[str, Any], step: int, cams: Tensor | None) -> None:
        """An epoch's numbers and, if given, its CAM overlays (`cam_pictures`)."""
        for key, value in e.items():
            if key != "epoch":
                self.writer.add_scalar(f"epoch/{key}", value, step)
        if cams is not None:
            self.writer.add_images("val/cam_top1", cams, step, dataformats="NCHW")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
