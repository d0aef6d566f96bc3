"""Architectures: map sizes, parameter counts against torchvision, options and their errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision import models as tvm

from cam_repro.models import CAMNet, FCNet, build_model, model_config, paper_name, variant_name
from cam_repro_cli import CONFIG_DIR

# The last conv map at a 224x224 input (paper, section 3; docs/design.md), None for FC-headed
# originals.
MAP_SIZES = {
    "alexnet": None,
    "alexnet_gap": 13,
    "alexnet_star_gap": 11,
    "vgg16": None,
    "vgg16_gap": 14,
    "vgg16_gmp": 14,
    "googlenet": 7,
    "googlenet_gap": 14,
    "googlenet_gmp": 14,
    "resnet50_gap": 7,
    "resnet50_gmp": 7,
}


def test_one_config_file_per_variant() -> None:
    files = {p.stem for p in Path(CONFIG_DIR, "model").glob("*.yaml")}
    assert set(MAP_SIZES) <= files


def _last_map(model: nn.Module, size: int = 224) -> torch.Size:
    with torch.no_grad():
        return model.eval().features(torch.randn(1, 3, size, size)).shape


@pytest.mark.parametrize("variant", [v for v, s in MAP_SIZES.items() if s is not None])
def test_map_size_at_224_and_width_mult_keeps_it(model_cfg, variant: str) -> None:
    side = MAP_SIZES[variant]
    full = build_model(model_cfg(variant), num_classes=10)
    small = build_model(model_cfg(variant, "model.width_mult=0.25"), num_classes=10)
    assert isinstance(full, CAMNet) and isinstance(small, CAMNet)
    full_map, small_map = _last_map(full), _last_map(small)
    assert tuple(full_map[2:]) == (side, side)
    assert tuple(small_map[2:]) == (side, side)
    assert full_map[1] == 1024
    assert small_map[1] == 256  # the added conv's 1024 units scaled too (GoogLeNet: inception5b)
    n_full = sum(p.numel() for p in full.parameters())
    n_small = sum(p.numel() for p in small.parameters())
    assert n_small < n_full / 8  # conv widths scale ~quadratically into parameter counts


@pytest.mark.parametrize(
    ("stride", "dilate", "side"), [(32, False, 7), (16, False, 14), (8, False, 28), (8, True, 28)]
)
def test_resnet50_output_stride(model_cfg, stride: int, dilate: bool, side: int) -> None:
    cfg = model_cfg("resnet50_gap", "model.width_mult=0.125", f"model.output_stride={stride}")
    cfg.dilate = dilate
    model = build_model(cfg, num_classes=5)
    assert tuple(_last_map(model)[2:]) == (side, side)
    dilations = {m.dilation for m in model.backbone.layer4.modules() if isinstance(m, nn.Conv2d)}
    assert max(d[0] for d in dilations) == (4 if (dilate and stride == 8) else 1)


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("variant", "overrides", "reference"),
    [
        ("alexnet", [], lambda: tvm.alexnet()),
        ("vgg16", [], lambda: tvm.vgg16()),
        ("vgg16", ["model.batch_norm=true"], lambda: tvm.vgg16_bn()),
        ("googlenet", [], lambda: tvm.googlenet(aux_logits=False, init_weights=False)),
    ],
)
def test_originals_have_torchvision_parameter_counts(model_cfg, variant, overrides, reference):
    ours = build_model(model_cfg(variant, *overrides), num_classes=1000)
    theirs = reference()
    assert _n_params(ours) == _n_params(theirs)
    assert [tuple(t.shape) for t in ours.state_dict().values() if t.dim()] == [
        tuple(t.shape) for t in theirs.state_dict().values() if t.dim()
    ]


def test_original_resnet50_is_torchvision_resnet50() -> None:
    ours = build_model({"arch": "resnet50", "modified": False}, num_classes=1000)
    assert _n_params(ours) == _n_params(tvm.resnet50()) == 25_557_032


def test_original_alexnet_and_vgg_have_fc_heads(model_cfg) -> None:
    for variant in ("alexnet", "vgg16"):
        model = build_model(model_cfg(variant, "model.width_mult=0.125"), num_classes=7)
        assert isinstance(model, FCNet)
        assert model(torch.randn(2, 3, 224, 224)).shape == (2, 7)


def test_added_conv_options(model_cfg) -> None:
    model = build_model(
        model_cfg("vgg16_gap", "model.width_mult=0.25", "model.head_groups=2", "model.dropout=0.5"),
        num_classes=3,
    )
    conv = model.head[0]
    assert (conv.kernel_size, conv.stride, conv.padding, conv.groups) == ((3, 3), (1, 1), (1, 1), 2)
    assert conv.in_channels == 128 and conv.out_channels == 256
    assert isinstance(model.dropout, nn.Dropout) and model.dropout.p == 0.5
    no_conv = build_model(model_cfg("resnet50_gap", "model.head_channels=0"), num_classes=3)
    assert isinstance(no_conv.head, nn.Identity) and no_conv.classifier.in_features == 2048


def test_gmp_switches_pooling_only(model_cfg) -> None:
    gap = model_config(model_cfg("googlenet_gap"))
    gmp = model_config(model_cfg("googlenet_gmp"))
    switched = model_config(model_cfg("googlenet_gap", "model.pool=gmp"))
    assert gmp == switched
    assert (gap.pool, gmp.pool) == ("gap", "gmp")
    assert [paper_name(c) for c in (gap, gmp)] == ["GoogLeNet-GAP", "GoogLeNet-GMP"]
    assert variant_name(switched) == "googlenet_gmp"


def test_global_pool_by_hand() -> None:
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[-1.0, 0.0], [5.0, -2.0]]]])  # (1, 2, 2, 2)
    gap = build_model({"arch": "alexnet", "pool": "gap", "width_mult": 0.1}, 2).pool
    gmp = build_model({"arch": "alexnet", "pool": "gmp", "width_mult": 0.1}, 2).pool
    assert gap(x).tolist() == [[2.5, 0.5]]
    assert gmp(x).tolist() == [[4.0, 5.0]]


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"arch": "vgg19"}, "unknown model arch 'vgg19'"),
        ({"arch": "vgg16", "width_mult": 0}, "width_mult must be a finite number > 0"),
        ({"arch": "vgg16", "width_mult": -0.5}, "width_mult must be a finite number > 0"),
        ({"arch": "vgg16", "width_mult": math.nan}, "width_mult must be a finite number > 0"),
        ({"arch": "vgg16", "width_mult": "wide"}, "width_mult"),
        ({"arch": "vgg16", "widht_mult": 0.5}, "widht_mult"),
        ({"arch": "vgg16", "pool": "avg"}, "model.pool must be 'gap' or 'gmp'"),
        ({"arch": "alexnet", "batch_norm": True}, "has no variant with batch norm"),
        ({"arch": "googlenet", "batch_norm": False}, "always uses batch norm"),
        ({"arch": "alexnet_star", "modified": False}, "only as a CAM model"),
        ({"arch": "vgg16", "output_stride": 16}, "resnet50 only"),
        ({"arch": "vgg16", "pretrained": True, "width_mult": 0.5}, "width_mult=1"),
        ({"arch": "tiny", "num_pools": 4}, "num_pools must be 2 or 3"),
        ({"arch": "tiny", "modified": False}, "only as a CAM model"),
        ({"arch": "tiny", "pretrained": True}, "no pretrained weights"),
    ],
)
def test_bad_configs_give_clear_errors(cfg, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        build_model(cfg, num_classes=10)


def test_bad_num_classes() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        build_model({"arch": "alexnet", "width_mult": 0.1}, num_classes=0)


def test_head_groups_must_divide_channels() -> None:
    with pytest.raises(ValueError, match="head_groups=3 must divide"):
        build_model({"arch": "vgg16", "width_mult": 0.25, "head_groups": 3}, num_classes=2)


@pytest.mark.parametrize(
    ("variant", "side", "name"),
    [
        ("tiny_gap", 16, "Tiny-GAP"),
        ("tiny_gmp", 16, "Tiny-GMP"),
        ("tiny_gap_8x8", 8, "Tiny-GAP (8x8)"),
        ("tiny_gmp_8x8", 8, "Tiny-GMP (8x8)"),
    ],
)
def test_tiny_benchmark_network(model_cfg, variant: str, side: int, name: str) -> None:
    cfg = model_config(model_cfg(variant))
    model = build_model(cfg, num_classes=10)
    assert isinstance(model, CAMNet) and isinstance(model.head, nn.Identity)
    assert tuple(_last_map(model, 64)) == (1, 96, side, side)  # stride 4 (8 with the third pool)
    # docs/design.md's 137k: convs 3*24*9 + 24*48*9 + 48*96*9 + 96*96*9 = 135,432 (no bias, BN
    # follows), BN 2 * (24 + 48 + 96 + 96) = 528, linear 96 * 10 + 10 = 970.
    assert _n_params(model) == 136_930
    assert model.pool.kind == variant.split("_")[1]
    assert variant_name(cfg) == variant and paper_name(cfg) == name
    half = build_model(model_cfg(variant, "model.width_mult=0.5"), num_classes=10)
    assert _last_map(half, 64)[1] == 48
