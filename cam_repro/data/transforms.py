"""Image transforms from the data config: train augmentation and the eval resize.

Both take a PIL image or a uint8 (3, H, W) tensor and return a normalised float (3, S, S) tensor.
The eval transform resizes the whole image to S x S (no crop), so ground-truth boxes follow with
`cam_repro.boxes.scale_boxes(boxes, sample.size, (S, S))`.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from cam_repro.data.config import DataConfig


def _finish(cfg: DataConfig) -> list[v2.Transform]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(cfg.mean, cfg.std)]


def train_transform(cfg: DataConfig) -> v2.Compose:
    """Train augmentation, then an optional horizontal flip.

    random_resized_crop: Inception-style; scale_crop: VGG-style (shorter side to resize_size, random
    crop); translate: resize to S x S, shift by up to translate_px; none: resize to S x S.
    """
    size = cfg.image_size
    steps: list[v2.Transform] = [v2.ToImage()]
    if cfg.train_augment == "random_resized_crop":
        steps.append(v2.RandomResizedCrop(size, scale=tuple(cfg.crop_scale), antialias=True))
    elif cfg.train_augment == "scale_crop":
        steps += [v2.Resize(cfg.resize_size, antialias=True), v2.RandomCrop(size)]
    else:
        steps.append(v2.Resize((size, size), antialias=True))
        if cfg.train_augment == "translate" and cfg.translate_px > 0:
            steps.append(v2.RandomCrop(size, padding=cfg.translate_px, padding_mode="reflect"))
    if cfg.hflip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps + _finish(cfg))


def eval_transform(cfg: DataConfig) -> v2.Compose:
    """The whole image resized to image_size x image_size (the WSOL evaluation's resize)."""
    size = cfg.image_size
    return v2.Compose([v2.ToImage(), v2.Resize((size, size), antialias=True), *_finish(cfg)])
