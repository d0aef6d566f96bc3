"""Training data: seeded per-image augmentation, the memory cache, resumable sharded sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from data_fixtures import write_kaggle
from PIL import Image

from cam_repro.data import LocalizationDataset, data_config, read_split, train_transform
from cam_repro.data.loaders import SeededSampler, ShardSampler, sample_seed, train_loader
from cam_repro.runtime.distributed import Dist


def _data(tmp_path: Path, **kw):
    root = write_kaggle(tmp_path)
    rng = np.random.default_rng(0)
    for i in range(5):  # noise pictures, so that every shift changes them
        pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"ILSVRC/Data/CLS-LOC/train/n01440764/noise_{i}.png")
    cfg = data_config(
        {"root": str(root), "image_size": 16, "resize_size": 16, "train_augment": "translate",
         "translate_px": 3, "hflip": False, "num_workers": 0, "batch_size": 4, **kw}
    )  # fmt: skip
    return cfg, read_split(cfg, "train")


def test_seeded_items_repeat_and_cache_changes_nothing(tmp_path: Path) -> None:
    cfg, data = _data(tmp_path)
    plain = LocalizationDataset(data, train_transform(cfg))
    cached = LocalizationDataset(data, train_transform(cfg), cache=True)
    assert cached.cached is not None and len(cached.cached) == len(data)
    for i in range(len(data)):
        a, label, index = plain[(i, 123)]
        assert a.dtype == torch.uint8 and (label, index) == (data.samples[i].label, i)
        assert torch.equal(a, plain[(i, 123)][0])  # the same seed: the same augmentation
        assert torch.equal(a, cached[(i, 123)][0])  # decoded once or every time: equal
    noise = next(i for i, s in enumerate(data.samples) if s.path.suffix == ".png")
    shifted = {plain[(noise, s)][0].float().sum().item() for s in range(20)}
    assert len(shifted) > 3  # other seeds shift differently


def test_seeded_sampler_shards_and_resumes(tmp_path: Path) -> None:
    n = 10
    ranks = [SeededSampler(n, Dist(rank=r, world_size=2), seed=7) for r in range(2)]
    for s in ranks:
        s.set_position(epoch=3)
    shards = [list(s) for s in ranks]
    indices = [i for shard in shards for i, _ in shard]
    assert sorted(indices) == list(range(n))  # disjoint shards covering the data
    assert all(seed == sample_seed(7, 3, i) for shard in shards for i, seed in shard)
    ranks[0].set_position(epoch=3, start=2)
    assert list(ranks[0]) == shards[0][2:] and len(ranks[0]) == 3
    ranks[0].set_position(epoch=4)
    assert [i for i, _ in ranks[0]] != [i for i, _ in shards[0]]  # a new order each epoch
    assert len({sample_seed(0, e, i) for e in range(3) for i in range(100)}) == 300


def test_shard_sampler_has_no_padding() -> None:
    shards = [list(ShardSampler(5, Dist(rank=r, world_size=2))) for r in range(2)]
    assert shards == [[0, 2, 4], [1, 3]]


def test_train_batches_do_not_depend_on_workers(tmp_path: Path) -> None:
    cfg, data = _data(tmp_path)
    batches = {}
    for workers in (0, 2):
        cfg.num_workers = workers
        loader = train_loader(data, cfg, Dist(), seed=5)
        loader.sampler.set_position(epoch=1)
        batches[workers] = [(b[0].clone(), b[2].clone()) for b in loader]
    assert len(batches[0]) == 3  # 11 images, batches of 4
    for (a, ia), (b, ib) in zip(batches[0], batches[2], strict=True):
        assert torch.equal(ia, ib) and torch.equal(a, b)
