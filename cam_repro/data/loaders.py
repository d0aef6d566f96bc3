"""DataLoaders for training and evaluation, reproducible and resumable mid-epoch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from cam_repro.data import (
    DataConfig,
    DataSplit,
    LocalizationDataset,
    collate_skipping,
    eval_transform,
    train_transform,
)
from cam_repro.runtime.distributed import Dist


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The augmentation seed of one image in one epoch (a 63-bit mix of the three)."""
    x = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index) & (2**64 - 1)
    x ^= x >> 31
    x = (x * 0x94D049BB133111EB) & (2**64 - 1)
    return (x ^ (x >> 29)) >> 1


class SeededSampler(DistributedSampler):
    """DistributedSampler (per-epoch shuffle, one shard per process) yielding (index, seed) pairs.

    The seed fixes the image's augmentation (see LocalizationDataset), so an epoch's batches depend
    only on (seed, epoch), whatever the worker count. `start` skips the first samples of this
    process's shard: a run resumed mid-epoch sees exactly the batches it had not trained on.
    """

    def __init__(self, size: int, env: Dist, seed: int, shuffle: bool = True) -> None:
        super().__init__(
            range(size), num_replicas=env.world_size, rank=env.rank, shuffle=shuffle, seed=seed
        )
        self.start = 0

    def set_position(self, epoch: int, start: int = 0) -> None:
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        indices = list(super().__iter__())[self.start :]
        return iter([(i, sample_seed(self.seed, self.epoch, i)) for i in indices])

    def __len__(self) -> int:
        return self.num_samples - self.start


class ShardSampler(Sampler[int]):
    """Every `world_size`-th index from `rank`, in order, without padding (exact evaluation)."""

    def __init__(self, size: int, env: Dist) -> None:
        self.indices = list(range(env.rank, size, env.world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _loader(dataset, sampler, cfg: DataConfig, env: Dist, drop_last: bool = False) -> DataLoader:
    workers = cfg.num_workers
    extra = {}
    if workers > 0:
        extra["persistent_workers"] = cfg.persistent_workers
        if cfg.prefetch_factor is not None:
            extra["prefetch_factor"] = cfg.prefetch_factor
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_skipping,
        pin_memory=cfg.pin_memory and env.device.type == "cuda",
        drop_last=drop_last,
        **extra,
    )


def train_loader(data: DataSplit, cfg: DataConfig, env: Dist, seed: int) -> DataLoader:
    """Shuffled, augmented batches of uint8 images; `loader.sampler.set_position(epoch, start)`."""
    dataset = LocalizationDataset(
        data, train_transform(cfg), cfg.bad_images, cfg.cache == "memory", cfg.max_image_pixels
    )
    sampler = SeededSampler(len(dataset), env, seed)
    # A last batch of one image would break batch norm in training mode.
    drop_last = sampler.num_samples % cfg.batch_size == 1
    return _loader(dataset, sampler, cfg, env, drop_last)


def eval_loader(
    data: DataSplit,
    cfg: DataConfig,
    env: Dist,
    transform: Callable | None = None,
    crops: np.ndarray | None = None,
) -> DataLoader:
    """This process's shard of the split, in order, resized to image_size (uint8) unless another
    `transform` is given; with `crops` (N, 4 boxes of the original images), each image is cut to
    its box first."""
    transform = transform or eval_transform(cfg)
    dataset = LocalizationDataset(
        data, transform, cfg.bad_images, cfg.cache == "memory", cfg.max_image_pixels, crops
    )
    return _loader(dataset, ShardSampler(len(dataset), env), cfg, env)


def steps_per_epoch(loader: DataLoader) -> int:
    """Batches in a full epoch (with the sampler at the epoch's start)."""
    n = loader.sampler.num_samples
    b = loader.batch_size
    return n // b if loader.drop_last else -(-n // b)


def to_device(batch, env: Dist) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch's images and labels on the process's device, and its sample indices (CPU)."""
    images, labels, index, _ = batch
    nb = env.device.type == "cuda"
    return images.to(env.device, non_blocking=nb), labels.to(env.device, non_blocking=nb), index


def prefetch_to_device(loader: Iterable, env: Dist) -> Iterator[tuple]:
    """The loader's batches (images, labels, index, skipped) with images and labels already on
    the device. On a GPU the copy of batch n + 1 (pinned memory, non-blocking, on a side stream)
    is issued before batch n is handed out, so it overlaps batch n's forward pass; the compute
    stream waits for it only when it uses it. On the CPU: the batches as they are."""
    if env.device.type != "cuda":
        yield from loader
        return
    copy_stream = torch.cuda.Stream(env.device)

    def issue(batch: tuple) -> tuple:
        images, labels, index, skipped = batch
        if images is None:
            return batch, None
        with torch.cuda.stream(copy_stream):
            images = images.to(env.device, non_blocking=True)
            labels = labels.to(env.device, non_blocking=True)
            copied = torch.cuda.Event()
            copied.record(copy_stream)
        return (images, labels, index, skipped), copied

    ahead = None
    for batch in loader:
        issued = issue(batch)
        if ahead is not None:
            yield _arrived(*ahead)
        ahead = issued
    if ahead is not None:
        yield _arrived(*ahead)


def _arrived(batch: tuple, copied: torch.cuda.Event | None) -> tuple:
    """A prefetched batch, made safe to use on the current stream: it waits for this batch's
    copy only (not for the next one's, already issued), and the tensors' memory is not reused
    before the current stream is done with them."""
    if copied is not None:
        images, labels = batch[0], batch[1]
        current = torch.cuda.current_stream(images.device)
        current.wait_event(copied)
        images.record_stream(current)
        labels.record_stream(current)
    return batch


def extra_inputs(data: DataSplit, index: torch.Tensor, device: torch.device) -> tuple:
    """What the model takes beside the images for these samples (by their indices in `data`):
    the questions' word indices (B, L) for VQA data, nothing otherwise."""
    if data.questions is None:
        return ()
    tokens = torch.from_numpy(data.questions.tokens[index.numpy()])
    return (tokens.to(device, non_blocking=device.type == "cuda"),)
