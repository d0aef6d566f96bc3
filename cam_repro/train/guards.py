"""What stops or trims a run: unreadable images (found before training, counted once over
processes), a NaN/inf loss or weight (`TrainingDivergedError`), processes whose weights drifted
apart (`weights_digest`)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cam_repro.data import check_images
from cam_repro.data.dataset import SkipLog
from cam_repro.data.samples import DataSplit
from cam_repro.runtime import distributed as D
from cam_repro.runtime.errors import CamReproError, InputFileError
from cam_repro.train.state import RunState


class TrainingDivergedError(CamReproError, FloatingPointError):
    """The loss (or a weight) became NaN or infinite."""


def diverged_error(what: str, run: RunState, last: Path) -> TrainingDivergedError:
    """The error for a NaN/inf `what` at `run`'s place: what checkpoint is kept, what to change."""
    if last.exists():
        kept = f"the last good checkpoint is kept: {last}"
    else:
        kept = "no checkpoint had been written yet"
    return TrainingDivergedError(
        f"{what} at {run.where()} (step {run.global_step}); training stopped, {kept}. "
        "Lower optim.lr, or use warm-up (optim.warmup_epochs) or gradient-safe AMP settings"
    )


def weights_finite(model: nn.Module, env: D.Dist) -> bool:
    """Whether every process's weights are all finite."""
    bad = torch.zeros(1, device=env.device)
    for p in model.parameters():
        bad += (~torch.isfinite(p)).any()
    return not D.all_reduce_sum(bad, env).item()


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer's bytes: equal digests, bit-identical weights."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def check_val_headers(
    data: DataSplit,
    skips: SkipLog,
    *,
    bad_images: str,
    root: str,
    workers: int,
    max_pixels: int | None,
    progress: bool,
) -> None:
    """Open every val image's header now (cheap), so that a corrupt val image stops the run
    before the first epoch, not after it; with data.bad_images=skip, count it in `skips`."""
    found = check_images(
        data, decode=False, workers=workers, progress=progress, max_pixels=max_pixels
    )
    index = {s.path: i for i, s in enumerate(data.samples)}
    bad = [(p, why) for p, why in found.bad if p in index]  # not those the reader left out
    if not bad:
        return
    if bad_images != "skip":
        path, why = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise InputFileError(
            f"{path}: {why}{more}; check the whole dataset with cam-data data.root="
            f"{root}, or leave unreadable images out with data.bad_images=skip"
        )
    skips.add((index[p], why) for p, why in bad)


def merge_skips(skips: tuple[SkipLog, ...], env: D.Dist) -> None:
    """Every process's unreadable images (torchrun), so that each file counts once."""
    if not env.distributed:
        return
    for log in skips:
        log.merge(D.gather_objects(dict(log.at_load), env))


def skip_counts(train: SkipLog, val: SkipLog) -> dict[str, Any]:
    """Images used and left out as unreadable, per split: metrics.json's counts."""
    return {
        "num_train": train.used,
        "num_val": val.used,
        "num_train_skipped": train.count,
        "num_val_skipped": val.count,
    }
