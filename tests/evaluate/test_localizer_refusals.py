"""Issue 33, classes 6 and 7: a map that cannot localize (1x1, or not a (B, K, h, w) map) is
refused in one line naming the layer and its shape (localize.layers.map_problem), and every
refusal advises only what works for that network: each test takes the advice and checks that it
is accepted (no loops)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch
from any_nets import SmallNet, TupleNet
from helpers import train_cfg

from cam_repro.evaluate.localizer import Localizer, localize_batch
from cam_repro.features.config import FEATURE_KINDS
from cam_repro.features.extract import feature_extractor, supported_features
from cam_repro.localize.cam import cam_model
from cam_repro.localize.layers import NoScoresError
from cam_repro.models import build_model
from cam_repro.runtime.errors import CamReproError, ConfigError, InputFileError

CPU = torch.device("cpu")


def _maps(model: torch.nn.Module, kind: str, size: int, layer: str | None = None) -> tuple:
    """cam-eval's maps of a batch of two (kind, side, Grad-CAM layer): their shape, or raises."""
    loc = Localizer(model.eval(), kind, "none", CPU, layer)
    torch.manual_seed(0)
    out = localize_batch(loc, torch.randn(2, 3, size, size), torch.tensor([0, 1]), 1)
    return tuple(out.maps.shape)


def _refused(call, *args) -> str:
    with pytest.raises(CamReproError) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


def _resnet18() -> torch.nn.Module:
    return build_model({"arch": "torchvision", "name": "resnet18"}, 4)


def test_grad_cam_after_the_global_pooling_is_refused_and_the_advice_works() -> None:
    model = _resnet18()
    message = _refused(_maps, model, "gradcam", 64, "avgpool")
    assert message == (
        "Grad-CAM: layer 'avgpool' gives 1x1 maps (shape (2, 512, 1, 1)): a box on a map with a "
        "side of one cell spans the whole image there (64x64 images); use a layer before the "
        "global pooling, e.g. gradcam_layer=layer4"
    )
    message = _refused(_maps, model, "gradcam", 64, "fc")
    assert "layer 'fc' gives a tensor of shape (2, 4), not a (B, K, h, w) feature map" in message
    layer = re.search(r"gradcam_layer=(\S+)$", message).group(1)
    assert _maps(model, "gradcam", 64, layer) == (2, 2, 64, 64)  # layer4: 2x2 at 64 px


def test_a_1x1_map_is_refused_for_every_localizer_and_each_advice_is_accepted() -> None:
    """resnet18 at 32 px: its last maps are 1x1, whose boxes were the whole image."""
    model = _resnet18()
    message = _refused(_maps, model, "cam", 32)
    assert message == (
        "the class activation maps are 1x1 maps (shape (2, 2, 1, 1)): a box on a map with a side "
        "of one cell spans the whole image there (32x32 images); use larger images "
        "(data.image_size >= 64, and data.resize_size), or localizer=gradcam gradcam_layer=layer3"
    )
    assert _maps(model, "cam", 64) == (2, 2, 64, 64)  # the advised size
    assert _maps(model, "gradcam", 32, "layer3") == (2, 2, 32, 32)  # the advised layer: 2x2
    message = _refused(_maps, model, "gradcam", 32)  # the default layer: the CAM feature map
    assert message.startswith("Grad-CAM: the CAM feature map gives 1x1 maps (shape (2, 512, 1, 1))")
    assert message.endswith("e.g. gradcam_layer=layer3")
    assert _maps(model, "backprop", 32) == (2, 2, 32, 32)  # input-sized: always spatial


def test_mobilenet_v3_grad_cam_refusal_points_to_a_layer_that_works() -> None:
    model = build_model({"arch": "torchvision", "name": "mobilenet_v3_small"}, 4)
    message = _refused(_maps, model, "gradcam", 64, "avgpool")
    assert message.endswith("use the default layer 'features.12.2' (leave gradcam_layer unset)")
    assert _maps(model, "gradcam", 64) == (2, 2, 64, 64)
    message = _refused(_maps, model, "gradcam", 32)  # the default layer is 1x1 at 32 px
    layer = re.search(r"gradcam_layer=(\S+)$", message).group(1)
    assert _maps(model, "gradcam", 32, layer) == (2, 2, 32, 32)


def test_features_refusals_advise_only_kinds_the_network_gives() -> None:
    """MobileNet v3 advised fc7, whose refusal advised gap/avgpool, whose refusal advised fc7."""
    mobilenet = build_model({"arch": "torchvision", "name": "mobilenet_v3_small"}, 4)
    networks = {
        "mobilenet_v3_small": (mobilenet, False),
        "resnet18": (_resnet18(), False),
        "vgg16": (build_model({"arch": "vgg16", "modified": False, "width_mult": 0.125}, 4), None),
        "tiny_gap": (build_model({"arch": "tiny", "width_mult": 0.25}, 4), True),
    }
    gives = {name: supported_features(m, mod) for name, (m, mod) in networks.items()}
    assert gives == {"mobilenet_v3_small": [], "resnet18": ["gap", "gmp", "avgpool"],
                     "vgg16": ["fc7"], "tiny_gap": ["gap", "gmp"]}  # fmt: skip
    for name, (model, modified) in networks.items():
        for kind in FEATURE_KINDS:
            if kind in gives[name]:
                feature_extractor(model, kind, name, modified)
                continue
            message = _refused(feature_extractor, model, kind, name, modified)
            advised = re.findall(r"features=(\w+)", message.split("; ", 1)[1])
            if gives[name]:  # every advised kind is accepted
                assert advised and set(advised) <= set(gives[name]), message
            else:
                assert "it gives none; cam-features needs a network that ends in" in message
                assert "model=torchvision model.name=mobilenet_v2" in message
    advised = build_model({"arch": "torchvision", "name": "mobilenet_v2"}, 4)
    assert supported_features(advised, False) == ["gap", "gmp", "avgpool"]


def test_a_network_returning_a_tuple_or_dict_is_refused_with_advice_that_works() -> None:
    """They were advised Grad-CAM and Backprop, which then failed with an AttributeError."""
    for name, kind in (("TupleNet", "tuple"), ("DictNet", "dict")):
        message = _refused(build_model, {"arch": "module", "_target_": f"any_nets.{name}"}, 3)
        assert message.startswith(
            f"model._target_=any_nets.{name}: {name}'s forward returns a {kind}, not one (B, C) "
            "tensor of class scores; cam-repro needs a classifier whose forward returns one"
        )
    # untraceable: found when it runs, by every localizer, in the same line
    model = build_model({"arch": "module", "_target_": "any_nets.BranchyTupleNet"}, 3)
    for kind in ("gradcam", "backprop"):
        message = _refused(_maps, model, kind, 32)
        assert message.startswith("BranchyTupleNet's forward returns a tuple, not one (B, C)")
    # the advice: a module whose forward returns the logits
    net = TupleNet(3)

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)[0]

    assert cam_model(Logits()) is not None
    assert _maps(Logits(), "gradcam", 32) == (2, 2, 32, 32)


def test_a_network_without_a_conv_is_advised_backprop_only() -> None:
    model = build_model({"arch": "module", "_target_": "any_nets.MLPNet"}, 3)
    for call, args in ((cam_model, (model,)), (_maps, (model, "gradcam", 8)),
                       (_maps, (model, "gradcam", 8, "hidden"))):  # fmt: skip
        message = _refused(call, *args)
        assert "localize it with the Backprop baseline (cam-eval localizer=backprop" in message
        assert "localizer=gradcam" not in message
    assert _maps(model, "backprop", 8) == (2, 2, 8, 8)


def test_files_refused_by_model_file_are_not_advised_grad_cam(tmp_path: Path) -> None:
    """A TorchScript file was advised Grad-CAM, which refused it again."""
    net = SmallNet(3).eval()
    script = tmp_path / "small.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(net).save(str(script))
    message = _refused(build_model, {"arch": "file", "file": str(script)}, 3)
    assert "Grad-CAM" not in message and "torch.export.save(" in message
    batch = torch.export.Dim("batch")
    images = torch.randn(2, 3, 32, 32)
    tuple_file = tmp_path / "tuple.pt2"
    torch.export.save(torch.export.export(TupleNet(3).eval(), (images,),
                                          dynamic_shapes=({0: batch},)), tuple_file)  # fmt: skip
    with pytest.raises(InputFileError, match=r"tuple\.pt2: the exported forward returns a tuple "
                                             r"of 2 outputs, not one \(B, C\) tensor"):  # fmt: skip
        build_model({"arch": "file", "file": str(tuple_file)}, 3)
    good = tmp_path / "small.pt2"  # the advice: export a module that returns the logits
    torch.export.save(torch.export.export(net, (images,), dynamic_shapes=({0: batch},)), good)
    model = build_model({"arch": "file", "file": str(good)}, 3)
    assert _maps(model, "gradcam", 32, "body") == (2, 2, 32, 32)


def test_a_config_error_is_still_one_line_for_an_unknown_features_kind() -> None:
    with pytest.raises(ConfigError, match="features must be one of gap, gmp, fc7, avgpool"):
        feature_extractor(_resnet18(), "pool5", "resnet18")


def test_cam_train_of_a_network_returning_a_tuple_is_one_line(
    small_data: Path, tmp_path: Path
) -> None:
    """An untraceable network returning a tuple is found at its first batch, in training too
    (it was a traceback from inside the loss)."""
    from cam_repro.train import train

    net = ["model=module", "model._target_=any_nets.BranchyTupleNet"]
    cfg = train_cfg(small_data, "trainer.epochs=1", *net)
    with pytest.raises(NoScoresError) as err:
        train(cfg, tmp_path / "run")
    assert str(err.value).startswith("BranchyTupleNet's forward returns a tuple, not one (B, C)")
