"""Image transforms from the data config: train augmentation, the eval resize, normalisation.

The per-image transforms take a PIL image or a uint8 (3, H, W) tensor and return a uint8
(3, S, S) tensor: only geometry happens per image. `normalize` then turns a whole uint8 batch into
the network's float input on the device, which is faster than per image and moves 4x fewer bytes
to a GPU. The eval transform resizes the whole image to S x S (no crop), so ground-truth boxes
follow with `cam_repro.boxes.scale_boxes(boxes, sample.size, (S, S))`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from cam_repro.data.config import DataConfig


class RandomTranslate:
    """Shift a (C, H, W) image by up to `max_px` pixels each way, filling by reflection.

    The same as `v2.RandomCrop(size, padding=max_px, padding_mode="reflect")` on a same-size image,
    but by indexing instead of padding: about 3x faster, which matters at 64 px on a CPU.
    """

    def __init__(self, max_px: int) -> None:
        self.max_px = max_px

    @staticmethod
    def _reflected(n: int, shift: int) -> Tensor:
        idx = torch.arange(n) + shift
        idx = torch.where(idx < 0, -idx, idx)  # reflect without repeating the edge
        return torch.where(idx > n - 1, 2 * (n - 1) - idx, idx)

    def __call__(self, image: Tensor) -> Tensor:
        dx, dy = (torch.randint(0, 2 * self.max_px + 1, (2,)) - self.max_px).tolist()
        h, w = image.shape[-2:]
        return image[..., self._reflected(h, dy), :][..., self._reflected(w, dx)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_px={self.max_px})"


def train_transform(cfg: DataConfig) -> v2.Compose:
    """Train augmentation, then an optional horizontal flip; uint8 (3, S, S) out.

    random_resized_crop: Inception-style; scale_crop: VGG-style (shorter side to resize_size, random
    crop); translate: resize to S x S, shift by up to translate_px; none: resize to S x S.
    """
    size = cfg.image_size
    steps: list = [_AsTensor()]
    if cfg.train_augment == "random_resized_crop":
        steps.append(v2.RandomResizedCrop(size, scale=tuple(cfg.crop_scale), antialias=True))
    elif cfg.train_augment == "scale_crop":
        steps += [v2.Resize(cfg.resize_size, antialias=True), v2.RandomCrop(size)]
    else:
        steps.append(_ExactSize(size))
        if cfg.train_augment == "translate" and cfg.translate_px > 0:
            steps.append(RandomTranslate(cfg.translate_px))
    if cfg.hflip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps)


def eval_transform(cfg: DataConfig) -> v2.Compose:
    """The whole image resized to image_size x image_size (the WSOL evaluation's resize)."""
    return resize_transform(cfg.image_size)


def resize_transform(size: int) -> v2.Compose:
    """The whole image resized to size x size (uint8 out), e.g. the ten-crop evaluation's
    resize_size image."""
    return v2.Compose([_AsTensor(), _ExactSize(size)])


class _AsTensor:
    """A PIL image as a uint8 (3, H, W) tensor; a tensor as it is (the dataset's, decoded by
    `read_image`). Not `v2.ToImage`, which would also wrap it in a `tv_tensors.Image`: the same
    pixels, but every later step pays for the subclass (~40 us a 224 px random crop, ~14%)."""

    def __call__(self, image: Image.Image | Tensor) -> Tensor:
        return image if isinstance(image, Tensor) else TF.pil_to_tensor(image)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _ExactSize:
    """Resize to S x S (antialiased); an image already S x S passes untouched."""

    def __init__(self, size: int) -> None:
        self.resize = v2.Resize((size, size), antialias=True)
        self.size = size

    def __call__(self, image: Tensor) -> Tensor:
        if tuple(image.shape[-2:]) == (self.size, self.size):
            return image
        return self.resize(image)


def normalize(
    images: Tensor, mean: Sequence[float], std: Sequence[float], channels_last: bool = False
) -> Tensor:
    """uint8 images (B, 3, H, W) -> float32 (x / 255 - mean) / std, on the images' device (NHWC
    if `channels_last`). One new tensor, converted once into the layout asked for, then divided,
    shifted and scaled in place: the same arithmetic in the same order as the three-step
    expression, so the same bits, without two more whole-batch tensors and a layout copy."""
    m = torch.tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    layout = torch.channels_last if channels_last else torch.preserve_format
    x = images.to(dtype=torch.float32, memory_format=layout, copy=True)
    return x.div_(255.0).sub_(m).div_(s)


def model_input(
    images: Tensor, mean: Sequence[float], std: Sequence[float], channels_last: bool = False
) -> Tensor:
    """A uint8 batch (B, 3, H, W) on the device -> the normalised float input, NHWC if asked."""
    return normalize(images, mean, std, channels_last)
