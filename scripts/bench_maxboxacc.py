"""Time MaxBoxAccV2: the one-pass sweep (localize.wsol.max_box_acc) vs the per-threshold loop.

    .venv/bin/python scripts/bench_maxboxacc.py [--images 1000] [--loop-images 20] [--cold]

Maps are built like real CAMs (random 14x14 maps, bilinearly upsampled to 224x224, min-max
normalised) with 1-2 random GT boxes each. The loop takes ~1 s per map at 1,000 thresholds, so it
runs on the first --loop-images maps only and its time is extrapolated per map; on that subset the
two methods' per-threshold curves must be equal.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F


def make_maps(n: int, size: int, grid: int, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.random((n, 1, grid, grid)))
    maps = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)[:, 0].numpy()
    maps = (maps - maps.min(axis=(1, 2), keepdims=True)) / np.ptp(maps, axis=(1, 2), keepdims=True)
    boxes = []
    for _ in range(n):
        k = int(rng.integers(1, 3))
        wh = rng.integers(size * 3 // 10, size * 9 // 10, (k, 2))
        x0y0 = (rng.random((k, 2)) * (size - wh + 1)).astype(np.int64)
        boxes.append(np.concatenate([x0y0, x0y0 + wh - 1], axis=1))
    return maps, boxes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=224, help="map side in pixels")
    parser.add_argument("--grid", type=int, default=14, help="side of the random map upsampled")
    parser.add_argument("--thresholds", type=int, default=1000, help="0, 1/T, ..., (T-1)/T")
    parser.add_argument("--loop-images", type=int, default=20, help="maps timed with the loop")
    parser.add_argument("--largest", action="store_true", help="largest component only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cold", action="store_true", help="compile into an empty numba cache (time a fresh clone)"
    )
    args = parser.parse_args(argv)

    if args.cold:  # before numba reads its configuration
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-cache-")
    from cam_repro.localize.wsol import max_box_acc, max_box_acc_loop

    maps, boxes = make_maps(args.images, args.size, args.grid, args.seed)
    thresholds = np.arange(args.thresholds) / args.thresholds
    kw = {"thresholds": thresholds, "all_components": not args.largest}
    print(
        f"{args.images} maps of {args.size}x{args.size} (random {args.grid}x{args.grid} "
        f"upsampled), {args.thresholds} thresholds, "
        f"{'largest component' if args.largest else 'all components'}"
    )

    start = time.perf_counter()
    max_box_acc(maps[:1, :8, :8], [np.array([[0, 0, 3, 3]])], **kw)
    first = time.perf_counter() - start
    print(
        f"first call (numba {'compile' if args.cold else 'compile or cache load'}): {first:.2f} s"
    )

    start = time.perf_counter()
    fast = max_box_acc(maps, boxes, **kw)
    fast_ms = (time.perf_counter() - start) * 1e3 / args.images
    print(f"one pass:  {fast_ms:8.2f} ms/map over all {args.images} maps")

    n_loop = min(args.loop_images, args.images)
    start = time.perf_counter()
    loop = max_box_acc_loop(maps[:n_loop], boxes[:n_loop], **kw)
    loop_ms = (time.perf_counter() - start) * 1e3 / n_loop
    print(
        f"loop:      {loop_ms:8.2f} ms/map measured on the first {n_loop} maps "
        f"(extrapolated: {loop_ms * args.images / 1e3:.0f} s for all {args.images})"
    )
    print(f"speed-up:  {loop_ms / fast_ms:8.0f}x")

    same = max_box_acc(maps[:n_loop], boxes[:n_loop], **kw) == loop
    print(f"curves on the {n_loop} loop maps: {'identical' if same else 'DIFFERENT'}")
    print(
        f"{'MaxBoxAcc, largest component' if args.largest else 'MaxBoxAccV2'} over all maps: "
        + ", ".join(f"IoU {d}: {a:.2f}" for d, a in fast["box_acc"].items())
        + f"; mean {fast['maxboxacc_v2']:.2f}"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
