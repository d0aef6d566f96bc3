"""One pass over the data: `train_one_epoch` and `validate`, free functions that take their
collaborators (network, loader, optimization, device) as arguments, in the manner of torchvision's
references/classification/train.py.

Both sum their statistics on the device and reduce them over processes once (torchrun), so
every process returns the same numbers. The training step is the method's (`train.methods`:
HaS's hidden cells, CutMix's mixed labels, ACoL's and SPG's auxiliary losses); `validate` runs
every network on the plain inputs, without labels, so it sees logits only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from cam_repro.data import model_input
from cam_repro.data.dataset import SkipLog
from cam_repro.data.loaders import extra_inputs, steps_per_epoch, to_device
from cam_repro.localize.layers import class_scores
from cam_repro.runtime import distributed as D
from cam_repro.runtime.precision import autocast
from cam_repro.train.config import TrainConfig
from cam_repro.train.methods import MethodLoss
from cam_repro.train.optim import Optimization
from cam_repro.train.state import RunState


@dataclass(frozen=True)
class Inputs:
    """How a uint8 batch on the device becomes the network's input (`data.mean`, `data.std`,
    `runtime.channels_last`), and the forward pass's precision (`runtime.amp`)."""

    mean: Sequence[float]
    std: Sequence[float]
    channels_last: bool
    amp: str

    def __call__(self, images: Tensor) -> Tensor:
        return model_input(images, self.mean, self.std, self.channels_last)


def batch_inputs(spec: TrainConfig) -> Inputs:
    """The `Inputs` of a TrainConfig (the four keys they read)."""
    return Inputs(spec.data.mean, spec.data.std, spec.runtime.channels_last, spec.runtime.amp)


def scores(net: nn.Module, head: nn.Module, inputs: Inputs, images: Tensor, extra: tuple) -> Tensor:
    """Class scores (B, K) of a uint8 batch: `net` runs it (DDP-wrapped or compiled), `head` is the
    plain module that says which output holds the scores (`localize.layers.class_scores`)."""
    with autocast(images.device, inputs.amp):
        return class_scores(net(inputs(images), *extra), head)


@torch.no_grad()
def validate(
    model: nn.Module,
    loader,
    inputs: Inputs,
    env: D.Dist,
    desc: str = "val",
    skips: SkipLog | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Classification loss, top-1 and top-5 error (%) over the loader, summed over processes;
    images left out as unreadable go into `skips` (this process's; merge them for counts)."""
    net = D.unwrap(model)
    was_training = net.training
    net.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=env.device)  # loss, top-1, top-5, images
    for batch in tqdm(loader, desc=desc, leave=False, disable=not (progress and env.is_main)):
        if skips is not None:
            skips.add(batch[3])
        if batch[0] is None:
            continue
        images, labels, index = to_device(batch, env)
        extra = extra_inputs(loader.dataset.data, index, env.device)
        logits = scores(net, net, inputs, images, extra).float()
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices  # (B, 5)
        hit = top == labels[:, None]
        sums += torch.stack(
            [
                F.cross_entropy(logits, labels, reduction="sum").double(),
                hit[:, 0].sum().double(),
                hit.any(dim=1).sum().double(),
                torch.tensor(float(len(labels)), dtype=torch.float64, device=env.device),
            ]
        )
    net.train(was_training)
    loss, top1, top5, n = D.all_reduce_sum(sums, env).tolist()
    n = max(n, 1.0)
    return {
        "loss": loss / n,
        "top1_err": 100.0 * (1 - top1 / n),
        "top5_err": 100.0 * (1 - top5 / n),
        "images": int(n),
    }


def window_loss(window: Tensor, env: D.Dist, diverged: Callable[[str], Exception]) -> float:
    """The mean loss of the last batches (loss sum, images), over processes; NaN/inf stops."""
    loss_sum, count = D.all_reduce_sum(window.clone(), env).tolist()
    mean = loss_sum / max(count, 1.0)
    if not math.isfinite(mean):
        raise diverged(f"the training loss became {mean}")
    return mean


def batches_keeping_rng(loader) -> Iterator:
    """The loader's batches, loaded without touching torch's global CPU RNG, which the training
    step's own draws use (HaS's cells, CutMix's box, ADL's choice, dropout): its state is put
    back after making the iterator (a DataLoader's iterator draws its workers' base seed from
    it) and after loading each batch (with data.num_workers=0 the dataset reseeds it for each
    image's augmentation, `data.dataset.LocalizationDataset`).

    So those draws are one stream from the seed, the same whatever the worker count, saved in
    every checkpoint (`runtime.rng`); a run resumed mid-epoch, which makes one iterator more
    than the uninterrupted run (after the restored state), draws what the uninterrupted run
    drew."""
    state = torch.get_rng_state()
    batches = iter(loader)
    torch.set_rng_state(state)
    while True:
        state = torch.get_rng_state()
        try:
            batch = next(batches)
        except StopIteration:
            torch.set_rng_state(state)
            return
        torch.set_rng_state(state)
        yield batch


def train_one_epoch(
    net: nn.Module,
    model: nn.Module,
    loader,
    optimization: Optimization,
    inputs: Inputs,
    env: D.Dist,
    run: RunState,
    skips: SkipLog,
    *,
    method_loss: MethodLoss,
    desc: str,
    log_every: int,
    progress: bool,
    on_window: Callable[[float], None],
    after_step: Callable[[Tensor], None],
    diverged: Callable[[str], Exception],
) -> dict[str, float]:
    """Train the rest of `run.epoch` from batch `run.step_in_epoch` (its sampler already placed
    there), advancing `run`'s counters; returns the epoch's train stats, summed over processes.

    `net` runs the batches (DDP-wrapped or compiled), `model` is the plain module;
    `method_loss` gives each batch's logits and loss (`train.methods.MethodLoss`). Every
    `log_every` batches the window's mean loss goes to `on_window` (NaN/inf: `diverged(what)` is
    raised); after each step `after_step(stats)` gets the epoch's running (loss sum, correct,
    images) (for mid-epoch checkpoints and hooks).
    """
    steps = steps_per_epoch(loader)
    net.train()
    stats = run.partial.to(env.device)  # loss sum, correct, images in this epoch
    window = torch.zeros(2, dtype=torch.float64, device=env.device)  # loss sum, images
    tick = time.perf_counter()
    resumed_images = stats[2].item()  # trained before a mid-epoch resume: not timed here
    lr = optimization.lr
    batches = tqdm(
        batches_keeping_rng(loader),
        desc=desc,
        leave=False,
        initial=run.step_in_epoch,
        total=steps,
        disable=not (progress and env.is_main),
    )
    for batch in batches:
        run.step_in_epoch += 1
        skips.add(batch[3])
        if batch[0] is None:
            continue
        images, labels, index = to_device(batch, env)
        extra = extra_inputs(loader.dataset.data, index, env.device)
        logits, loss = method_loss(net, model, inputs, images, labels, extra)
        lr = optimization.step(loss)
        run.global_step += 1
        n = len(labels)
        step_loss = loss.detach().double() * n
        stats += torch.stack(
            [step_loss, (logits.argmax(1) == labels).sum().double(), step_loss.new_tensor(n)]
        )
        window += torch.stack([step_loss, step_loss.new_tensor(n)])
        if run.step_in_epoch % log_every == 0 or run.step_in_epoch == steps:
            mean_loss = window_loss(window, env, diverged)
            on_window(mean_loss)
            batches.set_postfix(loss=f"{mean_loss:.4f}", refresh=False)
            window.zero_()
        after_step(stats)
    elapsed = time.perf_counter() - tick
    timed = (stats[2] - resumed_images).view(1)  # images trained in this session
    totals = D.all_reduce_sum(torch.cat([stats, timed]), env)
    loss_sum, correct, count, seen_all = totals.tolist()
    if not math.isfinite(loss_sum):
        raise diverged(f"the training loss became {loss_sum}")
    count = max(count, 1.0)
    return {
        "train_loss": loss_sum / count,
        "train_top1_err": 100.0 * (1 - correct / count),
        "lr": lr,
        "images_per_s": seen_all / max(elapsed, 1e-9),
        "epoch_time_s": elapsed,
    }
