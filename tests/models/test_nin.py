"""NIN (Lin et al. 2014), the paper's Tables 1-2 row "NIN": layers, map sizes, parameter count by
hand, the CAM identity, options, config refusals, Hydra composition, cam-eval and its weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from data_fixtures import write_classic
from torch import nn

from cam_repro.apps import compose
from cam_repro.cam import predict_with_cams
from cam_repro.evaluate.loop import evaluate_run
from cam_repro.models import CAMNet, build_model, model_config, paper_name, variant_name
from cam_repro.present.paper import PAPER_TABLE1, PAPER_TABLE2
from cam_repro.runtime.errors import ConfigError

SMALL = {"arch": "nin", "width_mult": 0.25}

# The Caffe NIN-imagenet layers: (in, out, kernel) of every conv, conv1 to cccp7.
NIN_CONVS = [
    (3, 96, 11), (96, 96, 1), (96, 96, 1),
    (96, 256, 5), (256, 256, 1), (256, 256, 1),
    (256, 384, 3), (384, 384, 1), (384, 384, 1),
    (384, 1024, 3), (1024, 1024, 1),
]  # fmt: skip


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _last_map(model: nn.Module, size: int) -> tuple[int, ...]:
    with torch.no_grad():
        return tuple(model.eval().features(torch.zeros(1, 3, size, size)).shape)


def test_parameter_count_by_hand() -> None:
    model = build_model({"arch": "nin"}, num_classes=1000)
    convs = sum(cin * cout * k * k + cout for cin, cout, k in NIN_CONVS)
    linear = 1024 * 1000 + 1000  # Caffe's cccp8 (1x1 conv, 1024 -> 1000) as our linear layer
    assert _n_params(model) == convs + linear == 7_595_176
    assert isinstance(model, CAMNet) and isinstance(model.head, nn.Identity)
    shapes = [(m.in_channels, m.out_channels, m.kernel_size[0]) for m in model.modules()
              if isinstance(m, nn.Conv2d)]  # fmt: skip
    assert shapes == NIN_CONVS


@pytest.mark.parametrize(("size", "side"), [(224, 6), (227, 6), (96, 2), (64, 1)])
def test_last_map_size(size: int, side: int) -> None:
    # ceil-mode pools (Caffe's): at 224 conv1 54 -> pool 27 -> 13 -> 6; at 227 conv1 55 -> 27 ...
    model = build_model(SMALL, num_classes=10)
    assert _last_map(model, size) == (1, 256, side, side)


def test_layers_are_the_caffe_models() -> None:
    backbone = build_model({"arch": "nin"}, num_classes=10).backbone
    pools = [m for m in backbone if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride, p.ceil_mode) for p in pools] == [(3, 2, True)] * 3
    assert backbone.conv1.stride == (4, 4) and backbone.conv1.padding == (0, 0)
    assert backbone.conv2.padding == (2, 2) and backbone.conv4.padding == (1, 1)
    # Caffe's dropout after pool3, then conv4; the backbone ends in cccp7's ReLU.
    names = list(dict(backbone.named_children()))
    assert names[names.index("pool3") + 1 : names.index("pool3") + 3] == ["drop", "conv4"]
    assert backbone.drop.p == 0.5 and isinstance(backbone[-1], nn.ReLU)
    assert names[-2] == "cccp7"


@pytest.mark.parametrize("pool", ["gap", "gmp"])
def test_cam_identity_in_eval_mode(pool: str) -> None:
    model = build_model({**SMALL, "pool": pool}, num_classes=7).eval()
    nn.init.normal_(model.classifier.weight)  # random weights (the convs' are Kaiming's)
    nn.init.normal_(model.classifier.bias)
    images = torch.randn(3, 3, 96, 96)
    with torch.no_grad():
        out = predict_with_cams(model, images, topk=4)
        again = model(images)
        features = model.features(images)
    assert out.cams.shape == (3, 4, 2, 2) and features.shape == (3, 256, 2, 2)
    torch.testing.assert_close(again, out.logits)  # eval mode: dropout is the identity
    chosen = out.logits.gather(1, out.classes)
    bias = model.classifier.bias[out.classes]
    if pool == "gap":  # logit_c = mean_xy(CAM_c) + b_c, exactly (no ReLU after the linear layer)
        scale = chosen.abs().max().item()
        cams_mean = out.cams.mean(dim=(2, 3)) + bias
        torch.testing.assert_close(cams_mean, chosen, atol=1e-4 * scale, rtol=1e-4)
    else:  # GMP: the linear layer sees each map's maximum
        pooled = features.flatten(2).amax(dim=2)
        torch.testing.assert_close(model.classifier(pooled), out.logits)


def test_width_mult_and_gmp() -> None:
    full = build_model({"arch": "nin"}, num_classes=10)
    small = build_model(SMALL, num_classes=10)
    assert small.classifier.in_features == 256 and full.classifier.in_features == 1024
    assert _n_params(small) < _n_params(full) / 8
    gmp = model_config({**SMALL, "pool": "gmp"})
    gap = model_config(SMALL)
    assert build_model(gmp, 10).pool.kind == "gmp"
    assert (paper_name(gap), variant_name(gap)) == ("NIN", "nin")
    assert (paper_name(gmp), variant_name(gmp)) == ("NIN-GMP", "nin_gmp")
    # the paper's numbers are keyed by this name, so cam-report puts them beside ours
    assert PAPER_TABLE1["NIN"] == (41.9, 19.6) and PAPER_TABLE2["NIN"] == (65.47, 54.19)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"pretrained": True}, "torchvision has no NIN weights"),
        ({"pretrained": True, "width_mult": 1.0}, "model.weights_path=FILE"),
        ({"modified": False}, "nin exists only as a CAM model"),
        ({"batch_norm": True}, "batch norm"),
    ],
)
def test_config_refusals(cfg: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        build_model({**SMALL, **cfg}, num_classes=10)
    assert "\n" not in str(err.value)


def test_hydra_config_composes_and_cam_eval_names_it_nin(tmp_path: Path) -> None:
    models = compose("models", ["model=nin"]).model
    spec = model_config(models)
    assert (spec.arch, spec.modified, spec.pool, spec.head_channels) == ("nin", True, "gap", 0)
    assert _n_params(build_model(spec, 1000)) == 7_595_176
    root = write_classic(tmp_path / "classic")  # an ILSVRC-layout set: cam-report's paper rows
    cfg = compose(
        "eval",
        ["runtime.device=cpu", "runtime.progress=false", "model=nin", "model.width_mult=0.25",
         f"data.root={root}", "data.image_size=96", "data.num_workers=0", "topk=3"],
    )  # fmt: skip
    metrics = evaluate_run(cfg, tmp_path / "eval")
    assert (metrics["paper_name"], metrics["variant"]) == ("NIN", "nin")
    assert (metrics["map_size"], metrics["pool"]) == ("2x2", "gap")


def test_own_state_dict_round_trips_through_weights_path(tmp_path: Path) -> None:
    model = build_model(SMALL, num_classes=5).eval()
    path = tmp_path / "nin.pt"
    torch.save(model.state_dict(), path)
    assert any(k.startswith("backbone.cccp7.") for k in model.state_dict())
    again = build_model({**SMALL, "weights_path": str(path)}, num_classes=5).eval()
    assert again.reused_keys == set(model.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)
    # pretrained with a weights file: the file wins, but nin still has no torchvision weights
    with pytest.raises(ConfigError, match="no NIN weights"):
        build_model({**SMALL, "pretrained": True, "weights_path": str(path)}, num_classes=5)
