"""Train and eval transforms: sizes from config, uint8 out, batch normalisation, eval boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cam_repro.boxes import scale_boxes
from cam_repro.data import data_config, eval_transform, normalize, train_transform
from cam_repro.data.transforms import RandomTranslate
from cam_repro.runtime.errors import ConfigError


def _cfg(**kw):
    return data_config({"root": "unused", **kw})


@pytest.mark.parametrize("augment", ["random_resized_crop", "scale_crop", "translate", "none"])
def test_train_output_size(augment: str) -> None:
    image = Image.new("RGB", (90, 60), (10, 20, 30))
    out = train_transform(_cfg(train_augment=augment, image_size=32, resize_size=40))(image)
    assert out.shape == (3, 32, 32) and out.dtype == torch.uint8


def test_eval_resizes_whole_image_and_normalises() -> None:
    image = Image.new("RGB", (90, 60), (255, 0, 124))
    cfg = _cfg(image_size=48)
    out = normalize(eval_transform(cfg)(image)[None], cfg.mean, cfg.std)[0]
    assert out.shape == (3, 48, 48) and out.dtype == torch.float32
    expected = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (124 / 255 - 0.406) / 0.225]
    assert torch.allclose(out[:, 20, 20], torch.tensor(expected), atol=1e-5)


def test_eval_box_follows_the_object() -> None:
    pixels = np.zeros((60, 90, 3), np.uint8)
    pixels[16:46, 30:60] = 255  # a white square at x 30..59, y 16..45
    out = eval_transform(_cfg(image_size=30))(Image.fromarray(pixels))
    ys, xs = np.nonzero(out[0].numpy() > 127)
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
        )
    )
    torch.manual_seed(0)
    spots = {tuple(np.argwhere(t(Image.fromarray(pixels))[0].numpy() > 127)[0]) for _ in range(60)}
    assert len(spots) > 5 and all(abs(y - 8) <= 2 and abs(x - 8) <= 2 for y, x in spots)


def test_same_size_image_is_not_resampled() -> None:
    pixels = torch.randint(0, 256, (3, 20, 20), dtype=torch.uint8)
    assert torch.equal(eval_transform(_cfg(image_size=20))(pixels), pixels)


@pytest.mark.parametrize(("dx", "dy"), [(0, 0), (2, -1), (-2, 2)])
def test_random_translate_is_a_reflect_padded_crop(monkeypatch, dx: int, dy: int) -> None:
    image = torch.arange(3 * 5 * 6, dtype=torch.uint8).view(3, 5, 6)
    # The shift RandomTranslate draws is (dx, dy); force it.
    monkeypatch.setattr(torch, "randint", lambda *a, **k: torch.tensor([dx + 2, dy + 2]))
    out = RandomTranslate(2)(image)
    padded = torch.nn.functional.pad(image[None].float(), (2, 2, 2, 2), mode="reflect")[0]
    expected = padded[:, 2 + dy : 2 + dy + 5, 2 + dx : 2 + dx + 6].to(torch.uint8)
    assert torch.equal(out, expected)
    # By hand, row 0 of channel 0 shifted left by dx=2 reflects at the right edge: 2 3 4 5 4 3.
    if (dx, dy) == (2, -1):
        assert out[0, 1].tolist() == [2, 3, 4, 5, 4, 3]


def test_normalize_by_hand() -> None:
    images = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1)
    out = normalize(images, [0.0, 0.1, 0.5], [1.0, 0.2, 0.25])
    assert out.flatten().tolist() == pytest.approx([0.0, (0.2 - 0.1) / 0.2, (1 - 0.5) / 0.25])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"train_augment": "mixup"}, "data.train_augment must be one of"),
        ({"image_size": 256, "resize_size": 224}, "resize_size"),
        ({"crop_scale": [0.5, 0.2]}, "crop_scale"),
        ({"layout": "flat"}, "data.layout"),
        ({"imagesize": 3}, "imagesize"),
        ({"cache": "disk"}, "data.cache must be one of"),
        ({"batch_size": 0}, "data.batch_size must be >= 1"),
    ],
)
def test_config_errors(override: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _cfg(**override)


@pytest.mark.parametrize("channels_last", [False, True])
def test_model_input_is_the_three_step_expression_bit_for_bit(channels_last: bool) -> None:
    """normalize's in-place steps give the bits of (x.float() / 255 - mean) / std, in the layout
    asked for, and leave a float input untouched."""
    from cam_repro.data.transforms import model_input

    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    images = torch.randint(0, 256, (4, 3, 17, 23), dtype=torch.uint8)
    m, s = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
    want = (images.float() / 255.0 - m) / s
    got = model_input(images, mean, std, channels_last)
    assert torch.equal(got, want) and got.dtype == torch.float32
    assert got.is_contiguous(memory_format=torch.channels_last) == channels_last
    floats = images.float()
    model_input(floats, mean, std, channels_last)
    assert torch.equal(floats, images.float())
