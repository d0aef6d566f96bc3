"""Any classifier: CAM layers found on torchvision's families (the CAM identity on random
weights), refusals with one line, user modules through model._target_, torch.export files, and
cam-train / cam-eval with model=torchvision."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from helpers import CPU, train_cfg
from tolerances import assert_close_at_scale

from cam_repro.apps import compose
from cam_repro.cam import (
    CAMUnavailableError,
    LinearHead,
    cam_model,
    find_cam_layers,
    predict_with_cams,
)
from cam_repro.evaluate.loop import evaluate_run
from cam_repro.models import build_model
from cam_repro.runtime.errors import CamReproError, ConfigError, InputFileError

# (torchvision name, input side, the layers the finder must name). One small member per family.
FAMILIES = [
    ("resnet18", 64, ("layer4", "fc")),
    ("resnext50_32x4d", 64, ("layer4", "fc")),
    ("wide_resnet50_2", 64, ("layer4", "fc")),
    ("regnet_y_400mf", 64, ("trunk_output", "fc")),
    ("efficientnet_b0", 64, ("features", "classifier.1")),
    ("efficientnet_v2_s", 64, ("features", "classifier.1")),
    ("mobilenet_v2", 64, ("features", "classifier.1")),
    ("convnext_tiny", 64, ("features", "classifier.2")),
    ("densenet121", 64, ("relu", "classifier")),  # the functional ReLU after features.norm5
    ("googlenet", 64, ("inception5b", "fc")),
    ("inception_v3", 80, ("Mixed_7c", "fc")),
    ("shufflenet_v2_x0_5", 64, ("conv5", "fc")),
    ("mnasnet0_5", 64, ("layers", "classifier.1")),
]
REFUSED = [
    ("mobilenet_v3_small", "classifier.1 \\(Hardswish\\)"),
    ("vgg11", "classifier.4 \\(ReLU\\)"),
    ("alexnet", "classifier.5 \\(ReLU\\)"),
    ("squeezenet1_1", "global pooling \\(classifier.3"),
]


def tv_model(name: str, classes: int = 5) -> torch.nn.Module:
    extra = (
        {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torchvision.models.get_model(name, num_classes=classes, **extra).eval()


def assert_cam_identity(model: torch.nn.Module, images: torch.Tensor, **kw) -> None:
    """logits = mean(CAM) + bias for the chosen classes, and the logits are the network's."""
    with torch.no_grad():
        out = predict_with_cams(model, images, topk=3, **kw)
        own = model(images)
    head = LinearHead.of_network(cam_model(model, kw.get("layers")))
    chosen = out.logits.gather(1, out.classes)
    from_maps = out.cams.mean(dim=(2, 3)) + head.map_bias[out.classes]
    torch.testing.assert_close(from_maps, chosen, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.logits, own, rtol=1e-4, atol=1e-4)
    assert out.cams.shape[:2] == (images.shape[0], 3) and out.cams.dim() == 4


@pytest.mark.parametrize(("name", "size", "layers"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_layers_found_and_the_cam_identity_holds(name: str, size: int, layers) -> None:
    model = tv_model(name)
    assert find_cam_layers(model) == layers
    images = torch.randn(2, 3, size, size)
    assert_cam_identity(model, images)
    assert_cam_identity(model, images, layers=layers)  # named: the same maps


@pytest.mark.parametrize(("name", "why"), REFUSED, ids=[r[0] for r in REFUSED])
def test_heads_without_cam_are_refused_in_one_line(name: str, why: str) -> None:
    model = tv_model(name)
    with pytest.raises(CAMUnavailableError, match=why) as err:
        find_cam_layers(model)
    message = str(err.value)
    assert "\n" not in message and "Grad-CAM" in message and "Backprop" in message
    with pytest.raises(CAMUnavailableError, match="Grad-CAM"):
        predict_with_cams(model, torch.randn(1, 3, 64, 64))


def test_convnext_layernorm_folds_into_the_maps() -> None:
    """ConvNeXt's LayerNorm after the pooling: the maps are centred per image, the identity
    holds with the norm's beta in the bias (not just up to a constant)."""
    model = tv_model("convnext_tiny")
    with torch.no_grad():
        torch.nn.init.normal_(model.classifier[0].bias, 0.0, 1.0)
        torch.nn.init.normal_(model.classifier[0].weight, 1.0, 0.5)
    assert cam_model(model).head_norm is not None
    assert_cam_identity(model, torch.randn(2, 3, 64, 64))


def test_named_layers_are_checked() -> None:
    model = tv_model("resnet18")
    with pytest.raises(CAMUnavailableError, match="'layer3' is not what the global pooling reads"):
        predict_with_cams(model, torch.randn(1, 3, 64, 64), layers=("layer3", "fc"))
    with pytest.raises(CAMUnavailableError, match="'layer4' is not a linear layer"):
        cam_model(model, ("layer3", "layer4"))
    with pytest.raises(CAMUnavailableError, match="'nope' is not a layer"):
        cam_model(model, ("nope", "fc"))


def test_build_model_torchvision_by_name() -> None:
    model = build_model({"arch": "torchvision", "name": "resnet18"}, 4)
    assert cam_model(model).layers.features == "layer4"
    assert all(k.startswith("net.") for k in model.state_dict())
    assert_cam_identity(model.eval(), torch.randn(2, 3, 64, 64))
    vgg = build_model({"arch": "torchvision", "name": "vgg11"}, 4)  # built; CAM refused
    with pytest.raises(CAMUnavailableError, match=r"^VGG: .*Grad-CAM"):
        cam_model(vgg)
    with pytest.raises(ConfigError, match="did you mean resnet18"):
        build_model({"arch": "torchvision", "name": "resnet_18"}, 4)
    with pytest.raises(ConfigError, match=r"model=torchvision needs model.name"):
        build_model({"arch": "torchvision"}, 4)
    with pytest.raises(ConfigError, match=r"model.features_layer / model.classifier_layer"):
        build_model({"arch": "torchvision", "name": "resnet18", "features_layer": "layer3",
                     "classifier_layer": "fc"}, 4)  # fmt: skip
    with pytest.raises(ConfigError, match=r"model.name applies to model=torchvision"):
        build_model({"arch": "tiny", "name": "resnet18"}, 4)


def test_torchvision_weights_file_loads_by_name(tmp_path: Path) -> None:
    """A torchvision state dict (1000 classes): every tensor but the classifier's is loaded."""
    source = tv_model("resnet18", classes=1000)
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    model = build_model({"arch": "torchvision", "name": "resnet18", "weights_path": str(path)}, 3)
    assert model.state_dict()["net.layer4.1.conv2.weight"].equal(source.layer4[1].conv2.weight)
    assert "net.fc.weight" not in model.reused_keys and "net.conv1.weight" in model.reused_keys


def test_user_module_through_target() -> None:
    spec = {"arch": "module", "_target_": "any_nets.SmallNet", "kwargs": {"width": 4}}
    model = build_model(spec, 3).eval()
    assert (model.layers.features, model.layers.classifier) == ("body", "head")
    assert model.net.head.out_features == 3  # num_classes passed: SmallNet takes it
    assert_cam_identity(model, torch.randn(2, 3, 32, 32))
    # fx cannot trace it: named layers, the head checked on the first batch
    branchy = {**spec, "_target_": "any_nets.BranchyNet"}
    unnamed = build_model(branchy, 3)  # built (Grad-CAM and Backprop work), CAM refused
    with pytest.raises(CAMUnavailableError, match=r"cannot trace BranchyNet.*name them"):
        cam_model(unnamed)
    named = build_model({**branchy, "features_layer": "body", "classifier_layer": "head"}, 3)
    assert_cam_identity(named.eval(), torch.randn(2, 3, 32, 32))
    wrong = build_model({**branchy, "features_layer": "body.2", "classifier_layer": "head"}, 3)
    with pytest.raises(CAMUnavailableError, match="not the head layer applied to the global gap"):
        wrong.features(torch.randn(2, 3, 32, 32))  # body.2 is before the last ReLU


def test_user_module_errors_are_one_line() -> None:
    cases = [
        ({"_target_": "any_nets.Missing"}, "cannot import it"),
        ({"_target_": "no_such_package.Net"}, "cannot import it"),
        ({"_target_": "any_nets.not_a_module"}, "gave a int, not an nn.Module"),
        ({"_target_": "any_nets.SmallNet", "kwargs": {"depth": 3}}, "building it failed"),
        (
            {
                "_target_": "any_nets.TwoLayerHead",
                "features_layer": "body",
                "classifier_layer": "head",
            },
            "is not fed by global pooling",
        ),
        ({"_target_": "any_nets.SmallNet", "kwargs": {"num_classes": 7}}, "gives 7 classes"),
        ({"_target_": "any_nets.SmallNet", "features_layer": "body"}, "give both"),
    ]
    for extra, match in cases:
        with pytest.raises(CamReproError, match=match) as err:
            build_model({"arch": "module", **extra}, 3)
        assert "\n" not in str(err.value)
    plain = build_model({"arch": "module", "_target_": "any_nets.TwoLayerHead"}, 3)  # no CAM
    with pytest.raises(CAMUnavailableError, match=r"TwoLayerHead: .* it has relu there"):
        cam_model(plain)


def test_torch_export_file(tmp_path: Path) -> None:
    from any_nets import SmallNet

    net = SmallNet(3, width=4).eval()
    images = torch.randn(2, 3, 32, 32)
    batch = torch.export.Dim("batch")
    program = torch.export.export(net, (images,), dynamic_shapes=({0: batch},))
    path = tmp_path / "small.pt2"
    torch.export.save(program, path)
    spec = {"arch": "file", "file": str(path), "features_layer": "body",
            "classifier_layer": "head"}  # fmt: skip
    model = build_model(spec, 3).eval()
    assert_cam_identity(model, torch.randn(3, 3, 32, 32))
    with torch.no_grad():
        torch.testing.assert_close(model(images), net(images))
    fixed = tmp_path / "fixed.pt2"
    torch.export.save(torch.export.export(net, (images,)), fixed)
    with pytest.raises(InputFileError, match="exactly 2 images; export it with a dynamic batch"):
        build_model({**spec, "file": str(fixed)}, 3)
    script = tmp_path / "small.pt"
    torch.jit.script(net).save(str(script))
    with pytest.raises(InputFileError, match=r"a TorchScript file.*torch.export.save"):
        build_model({**spec, "file": str(script)}, 3)
    with pytest.raises(CamReproError, match="does not exist"):
        build_model({**spec, "file": str(tmp_path / "none.pt2")}, 3)


def test_train_and_evaluate_a_torchvision_model(small_data: Path, tmp_path: Path) -> None:
    """cam-train model=torchvision model.name=resnet18, then cam-eval of its checkpoint; and
    cam-eval model=module with no checkpoint: the same protocol."""
    from cam_repro.train import train

    run = tmp_path / "train"
    cfg = train_cfg(small_data, "trainer.epochs=1", "model=torchvision", "model.name=resnet18")
    train(cfg, run)
    ev = compose("eval", [f"checkpoint={run / 'checkpoints' / 'last.pt'}", *CPU,
                          "data.image_size=64", "data.resize_size=64"])  # fmt: skip
    metrics = evaluate_run(ev, tmp_path / "eval")  # at 32 px its 1x1 maps would be refused
    assert metrics["variant"] == "resnet18" and metrics["map_size"] == "2x2"
    assert 0.0 <= metrics["loc_top1_err"] <= 100.0
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["paper_name"] == "resnet18"
    ev = compose("eval", ["model=module", "model._target_=any_nets.SmallNet", "data=synthetic",
                          f"data.root={small_data}", "data.image_size=32",
                          "data.resize_size=32", *CPU])  # fmt: skip
    metrics = evaluate_run(ev, tmp_path / "eval_module")
    assert metrics["variant"] == "SmallNet" and metrics["map_size"] == "16x16"


def test_grad_cam_on_any_classifier() -> None:
    """Grad-CAM differentiates a found CAM network's feature map (= ReLU(CAM) / (h w) there),
    and, on a network without CAM, the last conv's activation; names without the wrapper's net."""
    from cam_repro.cam import grad_cam
    from cam_repro.localize.gradcam import gradcam_layer

    model = build_model({"arch": "torchvision", "name": "resnet18"}, 4).eval()
    images = torch.randn(2, 3, 64, 64)
    classes = torch.tensor([[1, 3], [0, 2]])
    maps = grad_cam(model, images, classes)
    with torch.no_grad():
        cams = predict_with_cams(model, images, classes=classes).cams
    h, w = cams.shape[-2:]
    assert_close_at_scale(maps, cams.clamp_min(0) / (h * w))
    assert gradcam_layer(model, "layer4") == "net.layer4"
    assert grad_cam(tv_model("resnet18"), images, classes).shape == maps.shape  # unwrapped
    small = build_model({"arch": "torchvision", "name": "mobilenet_v3_small"}, 4).eval()
    assert gradcam_layer(small) == "net.features.12.2"  # past its batch norm: the Hardswish
    assert grad_cam(small, images, classes).shape == (2, 2, 2, 2)


def test_cam_features_of_a_torchvision_model(tmp_path: Path) -> None:
    """cam-features on any classifier: its pooled vector (avgpool, as an original network's) and
    CAM crops from its own head."""
    from data_fixtures import write_classic

    from cam_repro.features.run import features_run

    root = write_classic(tmp_path / "classic")
    # 64 px: resnet18's maps are 2x2 (at 32 px 1x1, whose CAM crops are refused)
    cfg = compose("features", ["model=torchvision", "model.name=resnet18", "features=avgpool",
                               "crop=cam", "model_classes=2", "data.image_size=64",
                               "data.layout=classic", f"data.root={root}", *CPU,
                               "data.num_workers=0"])  # fmt: skip
    metrics = features_run(cfg, tmp_path / "run")
    assert metrics["num_test"] == 3 and metrics["crop"] == "cam"
    assert metrics["features"] == "avgpool"


def test_torchvision_pretrained_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """model.pretrained=true takes torchvision's enum of that model: GoogLeNet's weights (with
    their auxiliary classifiers, skipped) and its input transform; offline, one line."""
    import urllib.error

    from torchvision.models import GoogLeNet_Weights, WeightsEnum

    from cam_repro.models import WeightsUnavailableError

    reference = torchvision.models.googlenet(aux_logits=True, init_weights=True)
    asked = []

    def cached(self, *args, **kwargs):
        asked.append(self)
        return reference.state_dict()

    monkeypatch.setattr(WeightsEnum, "get_state_dict", cached)
    spec = {"arch": "torchvision", "name": "googlenet", "pretrained": True}
    model = build_model(spec, 5)
    assert asked == [GoogLeNet_Weights.IMAGENET1K_V1] and model.net.transform_input
    branch = reference.inception5b.branch1.conv.weight
    assert model.net.inception5b.branch1.conv.weight.equal(branch)
    assert "net.fc.weight" not in model.reused_keys  # 1000 classes there, 5 here

    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    with pytest.raises(WeightsUnavailableError, match=r"offline.*googlenet-1378be20\.pth") as err:
        build_model({**spec, "weights": "DEFAULT"}, 5)
    assert "\n" not in str(err.value)
