"""Jet colouring, CAM normalisation, overlays, box outlines, denormalisation (hand-computed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cam_repro.localize.overlay import colorize, denormalize, draw_boxes, normalize_cam, overlay


def test_colorize_anchor_colours() -> None:
    # jet anchors at 0, 1/8, 3/8, 5/8, 7/8, 1; 0.5 * 255 = 127.5 rounds (half to even) to 128
    cam = np.array([[0.0, 1 / 8, 3 / 8, 0.5, 5 / 8, 7 / 8, 1.0]])
    expected = [
        [0, 0, 128],  # dark blue
        [0, 0, 255],  # blue
        [0, 255, 255],  # cyan
        [128, 255, 128],  # green, halfway from cyan to yellow
        [255, 255, 0],  # yellow
        [255, 0, 0],  # red
        [128, 0, 0],  # dark red
    ]
    got = colorize(cam)
    assert got.shape == (1, 7, 3) and got.dtype == np.uint8
    assert got[0].tolist() == expected


def test_colorize_between_anchors_and_monotone_channels() -> None:
    # 0.25 is halfway blue -> cyan, 0.75 halfway yellow -> red
    assert colorize(np.array([[0.25, 0.75]]))[0].tolist() == [[0, 128, 255], [255, 128, 0]]
    ramp = colorize(np.linspace(3 / 8, 5 / 8, 11)[None, :])[0].astype(int)  # cyan -> yellow
    assert (np.diff(ramp[:, 0]) > 0).all() and (np.diff(ramp[:, 2]) < 0).all()
    assert (ramp[:, 1] == 255).all()
    ramp = colorize(np.linspace(1 / 8, 3 / 8, 11)[None, :])[0].astype(int)  # blue -> cyan
    assert (np.diff(ramp[:, 1]) > 0).all() and (ramp[:, 0] == 0).all() and (ramp[:, 2] == 255).all()


def test_colorize_clips_and_maps_nan_to_zero() -> None:
    got = colorize(np.array([[np.nan, -3.0, 7.0, np.inf]]))[0].tolist()
    assert got == [[0, 0, 128], [0, 0, 128], [128, 0, 0], [128, 0, 0]]


def test_normalize_cam_max_divides_and_clips_negatives() -> None:
    cam = np.array([[-2.0, 0.0], [1.0, 4.0]])
    assert normalize_cam(cam).tolist() == [[0.0, 0.0], [0.25, 1.0]]
    assert cam.tolist() == [[-2.0, 0.0], [1.0, 4.0]]  # input untouched


def test_normalize_cam_minmax() -> None:
    cam = np.array([[-2.0, 0.0], [1.0, 6.0]])  # range 8
    assert normalize_cam(cam, mode="minmax").tolist() == [[0.0, 0.25], [0.375, 1.0]]


def test_normalize_cam_degenerate_maps_become_zeros() -> None:
    flat = np.full((2, 3), 5.0)
    assert normalize_cam(flat, mode="minmax").tolist() == [[0.0] * 3] * 2
    assert normalize_cam(flat).tolist() == [[1.0] * 3] * 2  # flat but positive: max mode is fine
    assert normalize_cam(np.full((2, 2), -1.0)).tolist() == [[0.0, 0.0]] * 2  # max <= 0
    assert normalize_cam(np.zeros((2, 2))).tolist() == [[0.0, 0.0]] * 2
    nan = np.array([[np.nan, 1.0], [2.0, 3.0]])
    for mode in ("max", "minmax"):
        assert normalize_cam(nan, mode=mode).tolist() == [[0.0, 0.0]] * 2
        assert normalize_cam(np.full((2, 2), np.nan), mode=mode).tolist() == [[0.0, 0.0]] * 2
    with pytest.raises(ValueError, match="normalize must be one of max, minmax"):
        normalize_cam(flat, mode="sum")


def test_overlay_alpha_ends_and_bilinear_resize() -> None:
    image = np.full((2, 4, 3), 100, dtype=np.uint8)
    image[0, 0] = [7, 200, 31]
    cam = np.array([[0.0, 1.0]])  # (1, 2) -> bilinear to width 4: 0, 0.25, 0.75, 1
    row = [[0, 0, 128], [0, 128, 255], [255, 128, 0], [128, 0, 0]]

    same = overlay(image, cam, alpha=0.0)
    assert same.shape == (2, 4, 3) and same.dtype == np.uint8
    assert np.array_equal(same, image)
    assert overlay(image, cam, alpha=1.0).tolist() == [row, row]

    # 0.75 * 100 + 0.25 * c: c = 0 -> 75, 128 -> 107, 255 -> 138.75 -> 139
    mixed = [[75, 75, 107], [75, 107, 139], [139, 107, 75], [107, 75, 75]]
    assert overlay(image, cam, alpha=0.25)[1].tolist() == mixed
    with pytest.raises(ValueError, match="alpha"):
        overlay(image, cam, alpha=1.5)


def test_draw_boxes_outlines_exactly_the_inclusive_border() -> None:
    image = np.zeros((10, 12, 3), dtype=np.uint8)
    out = draw_boxes(image, np.array([[2, 3, 6, 8]]), color=(1, 2, 3))
    border = np.zeros((10, 12), dtype=bool)
    border[3, 2:7] = border[8, 2:7] = True  # top and bottom rows, x = 2..6
    border[3:9, 2] = border[3:9, 6] = True  # left and right columns, y = 3..8
    assert (out[border] == [1, 2, 3]).all()
    assert (out[~border] == 0).all()
    assert (image == 0).all()  # input untouched


def test_draw_boxes_width_grows_inwards_and_several_boxes() -> None:
    image = np.full((8, 8, 3), 9, dtype=np.uint8)
    out = draw_boxes(image, [[0, 0, 7, 7], [3, 3, 3, 3]], width=2)
    drawn = (out == [0, 255, 0]).all(axis=-1)
    expected = np.ones((8, 8), dtype=bool)
    expected[2:6, 2:6] = False  # two-pixel ring of the 8 x 8 box
    expected[3, 3] = True  # the one-pixel box
    assert np.array_equal(drawn, expected)
    assert (out[~expected] == 9).all()
    assert np.array_equal(draw_boxes(image, np.zeros((0, 4))), image)


def test_draw_boxes_thin_boxes_and_boxes_past_the_edge() -> None:
    image = np.zeros((6, 7, 3), dtype=np.uint8)
    # a one-pixel-tall box is one row (Pillow's rectangle draws two), a one-pixel box one pixel
    out = draw_boxes(image, [[1, 2, 4, 2], [6, 5, 6, 5]], color=(5, 5, 5), width=3)
    drawn = (out == 5).all(axis=-1)
    expected = np.zeros((6, 7), dtype=bool)
    expected[2, 1:5] = True
    expected[5, 6] = True
    assert np.array_equal(drawn, expected)
    # only the visible edges: left x = 4 and bottom y = 3; top y = -1 and right x = 9 fall outside
    out = draw_boxes(image, [[4, -1, 9, 3], [10, 0, 12, 2]], color=(5, 5, 5))
    expected = np.zeros((6, 7), dtype=bool)
    expected[0:4, 4] = expected[3, 4:7] = True
    assert np.array_equal((out == 5).all(axis=-1), expected)


def test_denormalize_round_trips_uint8() -> None:
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 15  # 0..255
    image[0, 0] = [0, 128, 255]
    x = torch.from_numpy(image).permute(2, 0, 1).float() / 255  # (3, H, W)
    x = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    got = denormalize(x, mean, std)
    assert got.shape == (2, 3, 3) and got.dtype == np.uint8
    assert np.array_equal(got, image)


def test_denormalize_clips_to_uint8_range() -> None:
    x = torch.tensor([[[-10.0, 10.0]], [[0.0, 0.5]], [[1.0, 2.0]]])  # (3, 1, 2)
    # mean 0, std 1: values are the [0, 1] image itself; 0.5 * 255 = 127.5 -> 128
    assert denormalize(x, (0, 0, 0), (1, 1, 1)).tolist() == [[[0, 0, 255], [255, 128, 255]]]
