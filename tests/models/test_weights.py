"""Loading torchvision's weights (pretrained or a local file) and our own checkpoints."""

from __future__ import annotations

import re
import urllib.error
from pathlib import Path

import pytest
import torch
from torchvision import models as tvm
from torchvision.models._api import WeightsEnum

from cam_repro.models import WeightsUnavailableError, build_model
from cam_repro.runtime.errors import InputFileError


def _save(obj, path: Path) -> str:
    torch.save(obj, path)
    return str(path)


def test_original_googlenet_from_torchvision_file_matches_torchvision(tmp_path: Path) -> None:
    theirs = tvm.googlenet(aux_logits=True, init_weights=True, transform_input=True).eval()
    path = _save(theirs.state_dict(), tmp_path / "googlenet.pth")
    ours = build_model({"arch": "googlenet", "modified": False, "weights_path": path}, 1000).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        # transform_input comes on with torchvision's weights, as torchvision's pretrained model.
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-5)


def test_cam_model_reuses_backbone_and_keeps_new_layers_fresh(tmp_path: Path) -> None:
    theirs = tvm.alexnet().eval()
    path = _save(theirs.state_dict(), tmp_path / "alexnet.pth")
    torch.manual_seed(1)
    fresh = build_model({"arch": "alexnet", "modified": True}, 10)
    torch.manual_seed(1)
    loaded = build_model({"arch": "alexnet", "modified": True, "weights_path": path}, 10).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(loaded.backbone(x), theirs.features[:12](x))
        assert not torch.equal(fresh.backbone[0].weight, loaded.backbone[0].weight)
    for name in ("head.0.weight", "head.0.bias", "classifier.weight", "classifier.bias"):
        assert torch.equal(fresh.state_dict()[name], loaded.state_dict()[name]), name


def test_original_with_other_class_count_keeps_fresh_classifier(tmp_path: Path) -> None:
    theirs = tvm.resnet50()
    path = _save(theirs.state_dict(), tmp_path / "resnet50.pth")
    ours = build_model({"arch": "resnet50", "modified": False, "weights_path": path}, 10)
    assert ours.classifier.weight.shape == (10, 2048)
    assert torch.equal(ours.backbone.layer4[2].conv3.weight, theirs.layer4[2].conv3.weight)


def test_pretrained_offline_gives_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        build_model({"arch": "vgg16", "modified": True, "pretrained": True}, 10)
    message = str(info.value)
    assert "\n" not in message
    assert "offline" in message and "model.weights_path=FILE" in message
    assert "vgg16-397923af.pth" in message  # names the file to fetch


def test_pretrained_loads_torchvision_state_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    reference = tvm.googlenet(aux_logits=True, init_weights=True)
    asked = []

    def cached(self, *args, **kwargs):
        asked.append(self)
        return reference.state_dict()

    monkeypatch.setattr(WeightsEnum, "get_state_dict", cached)
    model = build_model({"arch": "googlenet", "modified": True, "pretrained": True}, 5)
    assert asked == [tvm.GoogLeNet_Weights.IMAGENET1K_V1]
    assert torch.equal(model.backbone.inception4e.branch1.conv.weight,
                       reference.inception4e.branch1.conv.weight)  # fmt: skip
    assert bool(model.backbone.transform_input)
    assert not hasattr(model.backbone, "inception5a")


def test_unknown_weights_member() -> None:
    with pytest.raises(ValueError, match="'IMAGENET9K' is not one of AlexNet_Weights"):
        build_model({"arch": "alexnet", "pretrained": True, "weights": "IMAGENET9K"}, 10)


def test_own_checkpoint_round_trip_with_ddp_prefix(tmp_path: Path) -> None:
    cfg = {"arch": "googlenet", "modified": True, "width_mult": 0.25, "pool": "gmp"}
    model = build_model(cfg, 4).eval()
    model.backbone.transform_input.fill_(True)
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    path = _save({"model": state, "epoch": 3}, tmp_path / "last.pt")
    again = build_model({**cfg, "weights_path": path}, 4).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
    assert bool(again.backbone.transform_input)  # the buffer travels with the checkpoint


def test_missing_weights_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match=re.escape("nope.pth does not exist")):
        build_model({"arch": "alexnet", "weights_path": str(path)}, 10)


def test_corrupt_weights_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "broken.pth"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match=re.escape("broken.pth: not a PyTorch weights file")):
        build_model({"arch": "alexnet", "weights_path": str(path)}, 10)


def test_not_a_state_dict(tmp_path: Path) -> None:
    path = _save({"epoch": 3, "lr": 0.1}, tmp_path / "meta.pt")
    with pytest.raises(ValueError, match=re.escape("meta.pt: expected a state dict")):
        build_model({"arch": "alexnet", "weights_path": path}, 10)


def test_checkpoint_of_another_model_does_not_fit(tmp_path: Path) -> None:
    other = build_model({"arch": "vgg16", "width_mult": 0.125}, 4)
    path = _save(other.state_dict(), tmp_path / "vgg.pt")
    with pytest.raises(
        ValueError, match=r"vgg\.pt: 226 of 230 tensors of googlenet_gap are not in"
    ):
        build_model({"arch": "googlenet", "width_mult": 0.125, "weights_path": path}, 4)


def test_torchvision_file_of_wrong_width(tmp_path: Path) -> None:
    path = _save(tvm.alexnet().state_dict(), tmp_path / "alexnet.pth")
    with pytest.raises(ValueError, match=re.escape("alexnet.pth: features.0.weight has shape")):
        build_model({"arch": "alexnet", "width_mult": 0.5, "weights_path": path}, 10)


def test_torchvision_file_of_another_architecture(tmp_path: Path) -> None:
    path = _save(tvm.resnet18().state_dict(), tmp_path / "resnet18.pth")
    with pytest.raises(ValueError, match=r"resnet18\.pth: 10 of 10 tensors of alexnet_gap are not"):
        build_model({"arch": "alexnet", "weights_path": path}, 10)


def test_a_file_in_torch_hubs_cache_is_checked_against_its_names_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch.hub loads a file already in its cache without its hash check: another file put there
    under torchvision's name (as the offline advice says to put the real one) is refused."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    wrong = tmp_path / "checkpoints" / "resnet18-f37072fd.pth"  # IMAGENET1K_V1's name
    torch.save(tvm.resnet18().state_dict(), wrong)  # resnet18's shapes, random weights
    with pytest.raises(InputFileError) as info:
        build_model({"arch": "torchvision", "name": "resnet18", "pretrained": True}, 10)
    message = str(info.value)
    assert message.startswith(f"{wrong}: its SHA-256 begins ") and "\n" not in message
    assert "not f37072fd as its name says" in message and "model.weights_path=FILE" in message
