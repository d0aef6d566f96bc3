"""Image loading per worker: our dataset's JPEG decoding and transforms against torchvision's own.

    python scripts/bench_decode.py                  # 200 JPEGs, 7 rounds of each
    python scripts/bench_decode.py --n 500 --rounds 9 --baseline-pil

Writes N 500x375 JPEGs at quality 90 (blurred noise from a seeded generator, so they compress
like photographs) into a temp dir, then measures in this process, on one thread (what one
DataLoader worker does):
  train: (A) `decode_jpeg` + `v2.RandomResizedCrop(224, antialias=True)` + `v2.RandomHorizontalFlip`
         (B) `LocalizationDataset(data, train_transform(cfg))[(i, seed)]`, the imagenet preset's
             augmentation (random_resized_crop, hflip, 224)
  eval:  (A) `decode_jpeg` + `v2.Resize((224, 224), antialias=True)`
         (B) `LocalizationDataset(data, eval_transform(cfg))[i]`
A draws the same random crops as B (the default generator seeded per image, as the dataset
does), so both do the same work and give the same images (checked). Rounds alternate A, B, B, A,
... (A first in even rounds, B in odd ones) so that both see the same machine state. Reported
per setting: the median img/s of each, and the time ratio B/A (median, and its range over the
rounds). Target: train ratio <= 1.0. With --baseline-pil a third path runs in every round: the
old one (before `read_image`), PIL's `load_image` then `v2.ToImage()` and the same seeded steps,
and its ratio to A.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter
from torchvision.io import ImageReadMode, decode_jpeg, read_file
from torchvision.transforms import v2

from cam_repro.data import data_config
from cam_repro.data.dataset import LocalizationDataset
from cam_repro.data.samples import DataSplit, Sample, load_image
from cam_repro.data.transforms import eval_transform, train_transform


def write_jpegs(root: Path, n: int, seed: int) -> list[Path]:
    """`n` 500x375 quality-90 JPEGs of blurred colour noise."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        noise = Image.fromarray(rng.integers(0, 256, (375, 500, 3), dtype=np.uint8))
        path = root / f"img_{i:04d}.jpg"
        noise.filter(ImageFilter.GaussianBlur(3)).save(path, quality=90)
        paths.append(path)
    return paths


def old_transform(transform: v2.Compose) -> v2.Compose:
    """The transform as it was with PIL images: `v2.ToImage()` first, then the same steps."""
    return v2.Compose([v2.ToImage(), *transform.transforms[1:]])


def timed(load: Callable[[int], object], n: int) -> float:
    """Seconds to load items 0..n-1."""
    start = time.perf_counter()
    for i in range(n):
        load(i)
    return time.perf_counter() - start


def compare(name: str, paths: list[Path], loaders: dict[str, Callable[[int], object]], rounds: int):
    """Alternate the loaders round by round; print img/s and time ratios to the first (A).
    They must give the same images (checked on the first few)."""
    for i in range(min(5, len(paths))):
        first, *others = (load(i) for load in loaders.values())
        if not all(torch.equal(first, other) for other in others):
            raise SystemExit(f"{name}: the loaders give different images for {paths[i]}")
    times: dict[str, list[float]] = {key: [] for key in loaders}
    for r in range(rounds):
        order = list(loaders.items())
        for key, load in order if r % 2 == 0 else order[::-1]:  # A, B, then B, A: no first mover
            times[key].append(timed(load, len(paths)))
    n = len(paths)
    a_key = next(iter(loaders))
    rates = ", ".join(f"{key} {n / statistics.median(t):.0f} img/s" for key, t in times.items())
    print(f"{name}: {rates}")
    for key, t in list(times.items())[1:]:
        ratios = [b / a for a, b in zip(times[a_key], t, strict=True)]
        print(
            f"  {key} / {a_key} time: median {statistics.median(ratios):.3f} "
            f"(range {min(ratios):.3f}-{max(ratios):.3f}, {rounds} rounds)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="JPEGs to write and load per round")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (>= 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-pil", action="store_true", help="also time the PIL path")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", DeprecationWarning)  # torchvision 0.29's decoders

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_jpegs(Path(tmp), args.n, args.seed)
        cfg = data_config({"root": tmp, "train_augment": "random_resized_crop", "hflip": True})
        data = DataSplit("train", Path(tmp), ["x"], ["x"], [Sample(p, 0) for p in paths], "bench")
        print(
            f"{args.n} JPEGs 500x375 q90, {cfg.image_size} px, 1 thread, torch {torch.__version__}"
        )

        def decode(i: int) -> torch.Tensor:
            return decode_jpeg(read_file(str(paths[i])), mode=ImageReadMode.RGB)

        crop = v2.RandomResizedCrop(cfg.image_size, antialias=True)
        flip = v2.RandomHorizontalFlip()
        train_set = LocalizationDataset(data, train_transform(cfg))
        train_pil = old_transform(train_transform(cfg))

        def old_train(i: int) -> torch.Tensor:
            torch.default_generator.manual_seed(i)
            return train_pil(load_image(paths[i]))

        def bare_train(i: int) -> torch.Tensor:
            torch.default_generator.manual_seed(i)  # B's crops, so both do the same work
            return flip(crop(decode(i)))

        loaders = {
            "A decode_jpeg+v2": bare_train,
            "B ours": lambda i: train_set[(i, i)][0],
        }
        if args.baseline_pil:
            loaders["C old PIL path"] = old_train
        compare("train", paths, loaders, args.rounds)

        resize = v2.Resize((cfg.image_size, cfg.image_size), antialias=True)
        eval_set = LocalizationDataset(data, eval_transform(cfg))
        eval_pil = old_transform(eval_transform(cfg))
        loaders = {
            "A decode_jpeg+v2": lambda i: resize(decode(i)),
            "B ours": lambda i: eval_set[i][0],
        }
        if args.baseline_pil:
            loaders["C old PIL path"] = lambda i: eval_pil(load_image(paths[i]))
        compare("eval", paths, loaders, args.rounds)


if __name__ == "__main__":
    main()
