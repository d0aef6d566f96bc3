"""Class activation maps: hand-computed values, the GAP identity, errors, Backprop saliency."""

from __future__ import annotations

import pytest
import torch
from tolerances import assert_close_at_scale
from torch import nn

from cam_repro.cam import (
    CAMUnavailableError,
    backprop_saliency,
    class_activation_maps,
    predict_with_cams,
    upsample_cams,
)
from cam_repro.models import build_model


def test_cam_by_hand() -> None:
    # Two images, K=2 maps of 2x2, C=3 classes.
    f0 = [[1.0, 2.0], [3.0, 4.0]]
    f1 = [[0.0, 1.0], [1.0, 0.0]]
    features = torch.tensor([[f0, f1], [f1, f0]])  # (2, 2, 2, 2)
    weight = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0]])  # (3, 2)
    class_idx = torch.tensor([[2, 0], [1, 2]])  # (2, k=2)
    cams = class_activation_maps(features, weight, class_idx)
    assert cams.shape == (2, 2, 2, 2)
    # image 0: class 2 = 2*f0 - f1, class 0 = f0; image 1 (maps swapped): class 1 = f0,
    # class 2 = 2*f1 - f0.
    assert cams[0, 0].tolist() == [[2.0, 3.0], [5.0, 8.0]]
    assert cams[0, 1].tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert cams[1, 0].tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert cams[1, 1].tolist() == [[-1.0, 0.0], [-1.0, -4.0]]


@pytest.mark.parametrize(
    "cfg",
    [
        {"arch": "vgg16", "width_mult": 0.125},
        {"arch": "googlenet", "width_mult": 0.25, "head_groups": 2},
        {"arch": "resnet50", "width_mult": 0.125, "output_stride": 16},
        {"arch": "alexnet_star", "width_mult": 0.25},
        {"arch": "googlenet", "modified": False, "width_mult": 0.25},
        {"arch": "tiny", "head_channels": 0},
        {"arch": "tiny", "head_channels": 0, "num_pools": 3},
    ],
)
def test_gap_identity_logit_is_cam_mean_plus_bias(cfg) -> None:
    model = build_model(cfg, num_classes=6).eval()
    with torch.no_grad():
        nn.init.normal_(model.classifier.bias)  # make the bias term matter
        out = predict_with_cams(model, torch.randn(3, 3, 160, 160), topk=6)
    bias = model.classifier.bias[out.classes]  # (B, 6)
    expected = out.cams.mean(dim=(2, 3)) + bias
    assert_close_at_scale(out.logits.gather(1, out.classes), expected, rtol=1e-5)


def test_gmp_logit_is_weighted_max_of_maps() -> None:
    model = build_model({"arch": "alexnet", "pool": "gmp", "width_mult": 0.25}, 4).eval()
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        feats = model.features(x)
        out = predict_with_cams(model, x, topk=4)
    expected = feats.amax(dim=(2, 3)) @ model.classifier.weight.T + model.classifier.bias
    torch.testing.assert_close(out.logits, expected)


def test_predict_with_cams_topk_and_given_classes() -> None:
    model = build_model({"arch": "vgg16", "width_mult": 0.125}, 8).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        out = predict_with_cams(model, x, topk=5)
        given = predict_with_cams(model, x, classes=torch.tensor([3, 7]))
        every = predict_with_cams(model, x, topk=8)  # all classes, so 3 and 7 are among them
    assert out.cams.shape == (2, 5, 6, 6)
    assert torch.equal(out.classes, out.logits.argsort(dim=1, descending=True)[:, :5])
    assert (out.scores[:, :-1] >= out.scores[:, 1:]).all()
    assert given.classes.tolist() == [[3], [7]]
    for b, c in enumerate((3, 7)):
        j = every.classes[b].tolist().index(c)
        torch.testing.assert_close(given.cams[b, 0], every.cams[b, j])


@pytest.mark.parametrize("arch", ["alexnet", "vgg16"])
def test_cam_of_fc_model_points_to_backprop(arch: str) -> None:
    model = build_model({"arch": arch, "modified": False, "width_mult": 0.125}, 4)
    with pytest.raises(CAMUnavailableError, match="backprop_saliency"):
        predict_with_cams(model, torch.randn(1, 3, 224, 224))


def test_cam_input_checks() -> None:
    features, weight = torch.randn(2, 4, 3, 3), torch.randn(5, 4)
    with pytest.raises(ValueError, match=r"features must be \(B, K, h, w\)"):
        class_activation_maps(features[0], weight, torch.zeros(2, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"weight must be \(C, K=4\)"):
        class_activation_maps(features, weight[:, :3], torch.zeros(2, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"class_idx must lie in \[0, 5\)"):
        class_activation_maps(features, weight, torch.tensor([[0], [5]]))


def test_cams_through_a_ddp_style_wrapper() -> None:
    model = build_model({"arch": "alexnet", "width_mult": 0.25}, 3).eval()
    wrapper = nn.DataParallel(model)
    with torch.no_grad():
        out = predict_with_cams(wrapper, torch.randn(1, 3, 128, 128), topk=2)
    assert out.cams.shape[:2] == (1, 2)


def test_upsample_keeps_constant_maps_constant() -> None:
    cams = torch.full((1, 2, 7, 7), 3.0)
    up = upsample_cams(cams, (224, 200))
    assert up.shape == (1, 2, 224, 200)
    torch.testing.assert_close(up, torch.full_like(up, 3.0))


def test_backprop_saliency_of_linear_model_is_weight_magnitude() -> None:
    linear = nn.Linear(3 * 2 * 2, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.arange(24, dtype=torch.float32).view(2, 12) - 10.0)
    model = nn.Sequential(nn.Flatten(), linear)
    sal = backprop_saliency(model, torch.randn(1, 3, 2, 2), torch.tensor([[1, 0]]))
    w = linear.weight.detach().view(2, 3, 2, 2).abs().amax(dim=1)  # (2 classes, 2, 2)
    assert sal.shape == (1, 2, 2, 2)
    torch.testing.assert_close(sal[0, 0], w[1])
    torch.testing.assert_close(sal[0, 1], w[0])
