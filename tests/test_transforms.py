"""Train and eval transforms: sizes from config, normalisation, eval boxes follow the resize."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cam_repro.boxes import scale_boxes
from cam_repro.data import data_config, eval_transform, train_transform
from cam_repro.errors import ConfigError


def _cfg(**kw):
    return data_config({"root": "unused", **kw})


@pytest.mark.parametrize("augment", ["random_resized_crop", "scale_crop", "translate", "none"])
def test_train_output_size(augment: str) -> None:
    image = Image.new("RGB", (90, 60), (10, 20, 30))
    out = train_transform(_cfg(train_augment=augment, image_size=32, resize_size=40))(image)
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32


def test_eval_resizes_whole_image_and_normalises() -> None:
    image = Image.new("RGB", (90, 60), (255, 0, 124))
    out = eval_transform(_cfg(image_size=48))(image)
    assert out.shape == (3, 48, 48)
    expected = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (124 / 255 - 0.406) / 0.225]
    assert torch.allclose(out[:, 20, 20], torch.tensor(expected), atol=1e-5)


def test_eval_box_follows_the_object() -> None:
    pixels = np.zeros((60, 90, 3), np.uint8)
    pixels[16:46, 30:60] = 255  # a white square at x 30..59, y 16..45
    out = eval_transform(_cfg(image_size=30, mean=[0, 0, 0], std=[1, 1, 1]))(
        Image.fromarray(pixels)
    )
    ys, xs = np.nonzero(out[0].numpy() > 0.5)
    box = scale_boxes([[30, 16, 59, 45]], (90, 60), (30, 30))[0].tolist()
    assert box == [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())] == [10, 8, 19, 22]


def test_translate_shifts_by_at_most_the_padding() -> None:
    pixels = np.zeros((16, 16, 3), np.uint8)
    pixels[8, 8] = 255
    t = train_transform(
        _cfg(
            train_augment="translate",
            image_size=16,
            resize_size=16,
            translate_px=2,
            hflip=False,
            mean=[0, 0, 0],
            std=[1, 1, 1],
        )
    )
    torch.manual_seed(0)
    spots = {tuple(np.argwhere(t(Image.fromarray(pixels))[0].numpy() > 0.5)[0]) for _ in range(60)}
    assert len(spots) > 5 and all(abs(y - 8) <= 2 and abs(x - 8) <= 2 for y, x in spots)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"train_augment": "mixup"}, "data.train_augment must be one of"),
        ({"image_size": 256, "resize_size": 224}, "resize_size"),
        ({"crop_scale": [0.5, 0.2]}, "crop_scale"),
        ({"layout": "flat"}, "data.layout"),
        ({"imagesize": 3}, "imagesize"),
    ],
)
def test_config_errors(override: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _cfg(**override)
