"""Time cam-eval's work per batch: a plain forward pass vs forward + top-5 CAMs + boxes + IoU.

    .venv/bin/python scripts/bench_eval.py [--rounds 7] [--skip-maxboxacc]

On the same model and the same batch, alternating, several rounds (median reported):
  plain   the network's forward pass (no grad), what classification alone costs;
  full    what cam-eval does per batch for the paper's protocol: the forward pass keeping the
          last conv features, the CAMs of the top-5 classes and of the true class, their bilinear
          upsampling to the image, one connected-component labelling for all of them (the paper's
          box rule), the boxes scaled to the original image size, and the IoU with the ground
          truth. Target: <= 10% more time than plain.
Two settings: the embedded benchmark's network (tiny_gap, 64 px, batch 64) and a paper network
(googlenet_gap, 224 px, batch 16). Then MaxBoxAccV2 at 1,000 thresholds on 224 x 224 maps, the
one-pass sweep against a loop labelling each threshold (scripts/bench_maxboxacc.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cam_repro.evaluate.localizer import Localizer, localize_batch
from cam_repro.localize.boxes import BoxRule
from cam_repro.localize.scoring import located_boxes
from cam_repro.models import build_model

RULE = BoxRule()  # the paper's box rule: threshold 0.2 of the max, largest component
SETTINGS = {
    "tiny_gap": ({"arch": "tiny", "head_channels": 0}, 10, 64, 64),
    "googlenet_gap": ({"arch": "googlenet", "head_groups": 2}, 1000, 224, 16),
}


def _ground_truth(labels: torch.Tensor, rng: np.random.Generator) -> tuple[list, list, list]:
    """Random original sizes, and one or two boxes of the image's class in each."""
    sizes, boxes, box_labels = [], [], []
    for label in labels.tolist():
        w, h = (int(v) for v in rng.integers(200, 500, 2))
        k = int(rng.integers(1, 3))
        x0 = rng.integers(0, w // 2, k)
        y0 = rng.integers(0, h // 2, k)
        sizes.append((w, h))
        boxes.append(np.stack([x0, y0, x0 + w // 3, y0 + h // 3], axis=1))
        box_labels.append(np.full(k, label, dtype=np.int64))
    return np.array(sizes), boxes, box_labels


def full_batch(loc: Localizer, x: torch.Tensor, labels: torch.Tensor, gt: tuple) -> np.ndarray:
    """What cam-eval computes per batch for the paper's errors (not MaxBoxAccV2)."""
    sizes, gt_boxes, gt_labels = gt
    out = localize_batch(loc, x, labels, topk=5, wsol=False)
    _, ious = located_boxes(
        out.maps.cpu().numpy(), out.classes.cpu().numpy(), sizes, gt_boxes, gt_labels, RULE
    )
    return ious


def bench(name: str, rounds: int) -> None:
    cfg, classes, size, batch = SETTINGS[name]
    torch.manual_seed(0)
    model = build_model(cfg, classes).eval().to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, classes, (batch,))
    gt = _ground_truth(labels, np.random.default_rng(0))
    loc = Localizer(model, "cam", "none", torch.device("cpu"))

    def plain() -> None:
        with torch.no_grad():
            model(x)

    def full() -> None:
        full_batch(loc, x, labels, gt)

    plain()
    full()  # warm-up
    times: dict[str, list[float]] = {"plain": [], "full": []}
    for _ in range(rounds):
        for key, fn in (("plain", plain), ("full", full)):
            tick = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - tick)
    p, f = statistics.median(times["plain"]), statistics.median(times["full"])
    print(
        f"{name:14s} {size:3d} px, batch {batch:3d}: forward {1000 * p:8.1f} ms, "
        f"forward + top-5 CAMs + boxes + IoU {1000 * f:8.1f} ms: {100 * (f / p - 1):+.1f}% "
        f"(median of {rounds} alternating rounds; spread plain {1000 * min(times['plain']):.1f}"
        f"-{1000 * max(times['plain']):.1f} ms, full {1000 * min(times['full']):.1f}-"
        f"{1000 * max(times['full']):.1f} ms)"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--models", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--skip-maxboxacc", action="store_true")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name in args.models:
        bench(name, args.rounds)
    if not args.skip_maxboxacc:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bench_maxboxacc

        return bench_maxboxacc.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
