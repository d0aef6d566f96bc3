"""The cost of a WSOL method's training step relative to CAM's, on the embedded benchmark's network.

    python scripts/bench_methods.py                 # tiny_gap at width 0.5, batch 64, 64 px
    python scripts/bench_methods.py --rounds 7 --steps 40 --width-mult 1

For each method (HaS, ACoL, SPG, ADL, CutMix), the network cam-train builds for it
(`build_model(..., method=...)`) and CAM's plain network take the same steps: cam-train's step
(`train.methods.MethodLoss`: normalise, the method's input change, forward, loss) and the
optimizer's (`train.optim.Optimization`), on the same uint8 batch already in memory, so data
loading (the same for every method) is left out. Rounds alternate CAM and the method (CAM, m,
CAM, m, ... `--rounds` each), one thread, fp32; each round times `--steps` steps after 3 untimed
ones. The ratio of each method round to the CAM round before it is reported as its median and
range over the rounds; the absolute ms per step are context only.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cam_repro.apps import compose
from cam_repro.models import build_model
from cam_repro.train.config import train_config
from cam_repro.train.epoch import batch_inputs
from cam_repro.train.methods import MethodLoss
from cam_repro.train.optim import Optimization, build_optimizer, build_scheduler

METHODS = ("has", "acol", "spg", "adl", "cutmix")


class Stepper:
    """One method's network, optimization and step on a fixed batch."""

    def __init__(self, method: str, width_mult: float, batch: int, size: int, classes: int):
        overrides = [f"method={method}", f"model.width_mult={width_mult}", "runtime.device=cpu",
                     f"data.batch_size={batch}", f"data.image_size={size}",
                     f"data.resize_size={size}"]  # fmt: skip
        spec = train_config(compose("train", overrides))
        torch.manual_seed(0)
        self.model = build_model(spec.model, classes, method=spec.method)
        if spec.runtime.channels_last:
            self.model.to(memory_format=torch.channels_last)
        optimizer = build_optimizer(self.model, spec.optim)
        scheduler = build_scheduler(optimizer, spec.optim, 1000, 100)
        self.optimization = Optimization(optimizer, scheduler, torch.amp.GradScaler("cpu", False))
        self.inputs = batch_inputs(spec)
        self.loss = MethodLoss(spec.method)
        generator = torch.Generator().manual_seed(1)
        self.images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8,
                                    generator=generator)  # fmt: skip
        self.labels = torch.randint(0, classes, (batch,), generator=generator)
        self.model.train()

    def steps(self, n: int) -> float:
        """Seconds for `n` training steps."""
        start = time.perf_counter()
        for _ in range(n):
            _, loss = self.loss(self.model, self.model, self.inputs, self.images, self.labels)
            self.optimization.step(loss)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating CAM/method rounds")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per round")
    parser.add_argument("--width-mult", type=float, default=0.5, help="cam-reproduce's: 0.5")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--classes", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    shape = (args.width_mult, args.batch, args.size, args.classes)
    print(f"tiny_gap width_mult={args.width_mult}, batch {args.batch}, {args.size} px, "
          f"{args.classes} classes, fp32, 1 thread; {args.rounds} alternating rounds of "
          f"{args.steps} steps")  # fmt: skip
    print("| method | step time / CAM's, median [range] | ms per step (CAM's) |")
    print("|---|---|---|")
    for method in METHODS:
        cam, other = Stepper("cam", *shape), Stepper(method, *shape)
        cam.steps(3), other.steps(3)  # warm-up, untimed
        ratios, cam_ms, other_ms = [], [], []
        for _ in range(args.rounds):
            base = cam.steps(args.steps)
            took = other.steps(args.steps)
            ratios.append(took / base)
            cam_ms.append(1000 * base / args.steps)
            other_ms.append(1000 * took / args.steps)
        print(f"| {method} | {statistics.median(ratios):.2f} [{min(ratios):.2f}, "
              f"{max(ratios):.2f}] | {statistics.median(other_ms):.1f} "
              f"({statistics.median(cam_ms):.1f}) |")  # fmt: skip


if __name__ == "__main__":
    main()
