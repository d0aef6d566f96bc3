"""Training throughput: cam-train's loop against a bare PyTorch loop, and cam-train end to end.

    python scripts/bench_train.py            # generates the default synthetic set in a temp dir
    python scripts/bench_train.py --data data/synthetic --rounds 3

1. Loop overhead. The same model (tiny_gap), batch (64), optimizer (SGD Nesterov + one-cycle) and
   in-memory data (the decoded 64 px train images) go through (a) a bare loop over uint8 tensors
   already in RAM (index a batch, normalise, forward, backward, step) and (b) cam-train's Trainer
   with data.cache=memory (sampler, per-image seeded augmentation, collation, bookkeeping, logging).
   Rounds alternate a and b so that both see the same machine state; images/s are medians of the
   training time only (validation excluded). Target: cam-train within 5% of the bare loop.
2. End to end. `cam-train` itself on the default synthetic set (8 epochs, as the README runs it):
   wall time from the command to its exit, and the images/s of its training epochs.
   Target on a 2-core CPU: >= 600 img/s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cam_repro.apps import compose
from cam_repro.data import model_input, read_split
from cam_repro.data.dataset import LocalizationDataset
from cam_repro.data.synth_writer import generate
from cam_repro.data.transforms import eval_transform
from cam_repro.models import build_model
from cam_repro.runtime.distributed import Dist
from cam_repro.runtime.metrics_file import read_metrics
from cam_repro.train.config import train_config
from cam_repro.train.optim import build_optimizer, build_scheduler
from cam_repro.train.trainer import Trainer


def bare_loop(spec, images: torch.Tensor, labels: torch.Tensor, epochs: int) -> float:
    """Images/s of the plainest loop over in-memory uint8 tensors (same model and optimizer)."""
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, int(labels.max()) + 1)
    if spec.runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(model, spec.optim)
    batch = spec.data.batch_size
    steps = -(-len(images) // batch)
    sched = build_scheduler(opt, spec.optim, epochs, steps)
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(images))
        for i in range(0, len(images), batch):
            idx = order[i : i + batch]
            x = model_input(images[idx], spec.data.mean, spec.data.std, spec.runtime.channels_last)
            loss = F.cross_entropy(model(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return epochs * len(images) / (time.perf_counter() - start)


def cam_train_loop(spec, run_dir: Path) -> float:
    """Images/s of cam-train's Trainer (training epochs only, first epoch included)."""
    trainer = Trainer(spec, run_dir, Dist())
    metrics = trainer.fit()
    return statistics.median(e["images_per_s"] for e in metrics["epochs"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="a synthetic set (default: generate one)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/cam-train rounds")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per round")
    parser.add_argument("--channels-last", choices=["true", "false"], default="true")
    parser.add_argument("--skip-end-to-end", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            root = Path(tmp) / "synthetic"
            t = time.perf_counter()
            generate({"out": str(root)})
            print(f"generated the default synthetic set in {time.perf_counter() - t:.1f} s")
        overrides = [
            f"data.root={root}",
            "runtime.device=cpu",
            "runtime.progress=false",
            "trainer.tensorboard=false",
            f"trainer.epochs={args.epochs}",
            f"trainer.eval_every={args.epochs}",
            f"runtime.channels_last={args.channels_last}",
        ]
        spec = train_config(compose("train", overrides))
        data = read_split(spec.data, "train")
        # The same decoded images the memory cache holds, at the training size, in one tensor.
        cached = LocalizationDataset(data, eval_transform(spec.data), cache=True)
        images = torch.stack([cached[i][0] for i in range(len(cached))])  # (N, 3, 64, 64) uint8
        labels = torch.tensor([s.label for s in data.samples])
        print(
            f"model {spec.model.arch} ({spec.model.pool}), {len(images)} train images of "
            f"{images.shape[-1]} px, batch {spec.data.batch_size}, {torch.get_num_threads()} "
            f"threads, channels_last={spec.runtime.channels_last}"
        )
        bare, ours = [], []
        for r in range(args.rounds):
            bare.append(bare_loop(spec, images, labels, args.epochs))
            ours.append(cam_train_loop(spec, Path(tmp) / f"run{r}"))
            print(f"round {r + 1}: bare loop {bare[-1]:.1f} img/s, cam-train {ours[-1]:.1f} img/s")
        b, o = statistics.median(bare), statistics.median(ours)
        print(
            f"loop: bare {b:.0f} img/s, cam-train {o:.0f} img/s: cam-train takes "
            f"{100 * (b / o - 1):+.1f}% time per image (target <= +5%)"
        )

        if not args.skip_end_to_end:
            exe = Path(sys.executable).parent / "cam-train"
            run_dir = Path(tmp) / "e2e"
            cmd = [str(exe), f"data.root={root}", "runtime.progress=false"]
            cmd += [f"runtime.channels_last={args.channels_last}", f"hydra.run.dir={run_dir}"]
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            wall = time.perf_counter() - t
            metrics = read_metrics(run_dir / "metrics.json", "train")
            epochs = metrics.epochs
            trained = len(epochs) * metrics.num_train
            train_time = sum(e.epoch_time_s for e in epochs)
            print(
                f"end to end: `cam-train` ({len(epochs)} epochs, tiny_gap, default synthetic) "
                f"took {wall:.1f} s; training {trained / train_time:.0f} img/s "
                f"({trained / wall:.0f} img/s over the whole command, start-up and validation "
                f"included); final val top-1 error {metrics.final.val_top1_err:.1f}%"
            )


if __name__ == "__main__":
    main()
