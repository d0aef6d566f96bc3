"""Issue 33, class 5: every weights file loads strictly (models.weights.load_strictly). A file of
another network is refused in one line naming how many tensors and which; the one exception, a
final classifier of another size, is logged at WARNING and recorded for metrics.json."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import torch
from torchvision import models as tvm

from cam_repro.models import build_model
from cam_repro.models.checkpoint import model_from_state
from cam_repro.models.weights import weights_record
from cam_repro.runtime.errors import InputFileError


def _save(state: dict, path: Path) -> str:
    torch.save(state, path)
    return str(path)


def _refusal(spec: dict, classes: int) -> str:
    with pytest.raises(InputFileError) as info:
        build_model(spec, classes)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_smaller_networks_file_is_refused_naming_what_is_missing(tmp_path: Path) -> None:
    """resnet18's file into resnet34 loaded 102 tensors and left 80 fresh, said in an INFO line."""
    path = _save(tvm.resnet18().state_dict(), tmp_path / "r18.pth")
    message = _refusal({"arch": "torchvision", "name": "resnet34", "weights_path": path}, 1000)
    # resnet34: 218 tensors, 36 of them BN step counters (optional); resnet18 lacks 80 of the rest
    assert message.startswith(
        f"{path}: 80 of 182 tensors of resnet34 are not in the file (e.g. layer1.2.conv1.weight, "
        "layer1.2.bn1.weight, layer1.2.bn1.bias, ...); it holds another network's weights"
    )


def test_a_larger_networks_file_is_refused_naming_what_it_has_too_much(tmp_path: Path) -> None:
    path = _save(tvm.resnet34().state_dict(), tmp_path / "r34.pth")
    message = _refusal({"arch": "torchvision", "name": "resnet18", "weights_path": path}, 1000)
    # resnet34's blocks layer1.2, layer2.2-3, layer3.2-5, layer4.2: 96 tensors resnet18 lacks
    assert message.startswith(
        f"{path}: 96 tensors in the file are not in resnet18 (e.g. layer1.2.conv1.weight, "
    )


def test_buffers_count_batch_norm_statistics_missing_are_refused(tmp_path: Path) -> None:
    state = {k: v for k, v in tvm.resnet18().state_dict().items() if "running_" not in k}
    path = _save(state, tmp_path / "no_stats.pth")
    message = _refusal({"arch": "torchvision", "name": "resnet18", "weights_path": path}, 1000)
    # 20 BatchNorms x (running_mean, running_var) of 102 tensors (122 less 20 step counters)
    assert re.match(
        re.escape(f"{path}: 40 of 102 tensors of resnet18 are not in the file (e.g. ")
        + r"bn1\.running_mean, bn1\.running_var, layer1\.0\.bn1\.running_mean",
        message,
    )


def test_our_own_layout_and_a_foreign_file_into_tiny(tmp_path: Path) -> None:
    tiny = build_model({"arch": "tiny", "width_mult": 0.25}, 3)
    state = tiny.state_dict()
    dropped = {k: v for k, v in state.items() if k != "backbone.0.weight"}
    path = _save({"model": dropped}, tmp_path / "partial.pt")
    message = _refusal({"arch": "tiny", "width_mult": 0.25, "weights_path": path}, 3)
    total = sum(1 for k in state if not k.endswith("num_batches_tracked"))
    assert message.startswith(
        f"{path}: 1 of {total} tensors of tiny_gap are not in the file (e.g. backbone.0.weight);"
    )
    foreign = _save(tvm.resnet18().state_dict(), tmp_path / "r18.pth")
    message = _refusal({"arch": "tiny", "width_mult": 0.25, "weights_path": foreign}, 3)
    assert f"{total} of {total} tensors of tiny_gap are not in the file" in message
    assert "122 tensors in the file are not in tiny_gap (e.g. conv1.weight" in message


def test_a_classifier_of_another_size_is_the_one_exception(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = tvm.resnet18().eval()
    path = _save(source.state_dict(), tmp_path / "r18.pth")
    with caplog.at_level(logging.INFO, logger="cam_repro.models.weights"):
        model = build_model({"arch": "torchvision", "name": "resnet18", "weights_path": path}, 10)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"{path}: the final classifier's fc.weight, fc.bias stay freshly initialised: the file "
        "has 1000 classes, resnet18 has 10 (fine-tune it)"
    ]
    own = model.state_dict()
    for key, value in source.state_dict().items():  # everything else, buffers included
        if not key.startswith("fc."):
            assert torch.equal(own[f"net.{key}"], value), key
    record = weights_record(model)
    assert record is not None
    assert record["source"] == path and len(record["sha256"]) == 64
    assert record["tensors_loaded"] == len(own) - 2
    assert record["classifier_not_loaded"] == ["net.fc.weight", "net.fc.bias"]
    assert record["new_layers"] == []


def test_the_zoos_new_cam_layers_are_recorded_not_refused(tmp_path: Path) -> None:
    """alexnet_gap reuses torchvision AlexNet's five convs; its 3x3 conv and linear layer are new
    by design; AlexNet's FC layers are in the file but not in the network (cut by design)."""
    path = _save(tvm.alexnet().state_dict(), tmp_path / "alexnet.pth")
    model = build_model({"arch": "alexnet", "weights_path": path}, 10)
    record = weights_record(model)
    assert record is not None
    assert record["tensors_loaded"] == 10
    assert record["new_layers"] == ["classifier", "head.0"]
    assert record["classifier_not_loaded"] == []
    assert weights_record(build_model({"arch": "tiny", "width_mult": 0.25}, 3)) is None


def test_a_checkpoint_whose_weights_lack_a_tensor_is_refused(tmp_path: Path) -> None:
    cfg = {"arch": "tiny", "width_mult": 0.25}
    state = build_model(cfg, 3).state_dict()
    del state["head.0.bias"]
    with pytest.raises(InputFileError) as info:
        model_from_state({"model": state, "config": {"model": cfg}, "classes": ["a", "b", "c"]},
                         tmp_path / "last.pt")  # fmt: skip
    total = sum(1 for k in state if not k.endswith("num_batches_tracked")) + 1
    assert str(info.value).startswith(
        f"{tmp_path / 'last.pt'}: 1 of {total} tensors of its own model config (tiny_gap) are not "
        "in the file (e.g. head.0.bias); the checkpoint is damaged or was edited"
    )
