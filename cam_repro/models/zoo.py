"""The model zoo: one builder per architecture, and `build_model`, which builds any variant from
its config and loads its weights."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from omegaconf import DictConfig
from torch import nn

from cam_repro.models.alexnet import build_alexnet, build_alexnet_star
from cam_repro.models.anynet import build_any
from cam_repro.models.config import ANY_ARCHS, ModelConfig, model_config
from cam_repro.models.googlenet import build_googlenet
from cam_repro.models.method_config import MethodConfig, method_config, method_problem
from cam_repro.models.methods import apply_method
from cam_repro.models.nin import build_nin
from cam_repro.models.resnet import build_resnet50
from cam_repro.models.tiny import build_tiny
from cam_repro.models.vgg import build_vgg16
from cam_repro.models.weights import (
    download_torchvision_state_dict,
    load_torchvision_state_dict,
    load_weights_file,
    torchvision_weights_enum,
)
from cam_repro.runtime.errors import ConfigError

_BUILDERS: dict[str, Callable[[ModelConfig, int], nn.Module]] = {
    "alexnet": build_alexnet,
    "alexnet_star": build_alexnet_star,
    "vgg16": build_vgg16,
    "googlenet": build_googlenet,
    "nin": build_nin,
    "resnet50": build_resnet50,
    "tiny": build_tiny,
    **dict.fromkeys(ANY_ARCHS, build_any),  # any classifier (models/anynet.py)
}


def build_model(
    cfg: ModelConfig | Mapping[str, Any] | DictConfig,
    num_classes: int,
    method: MethodConfig | Mapping[str, Any] | DictConfig | None = None,
) -> nn.Module:
    """The network `cfg` describes, with `num_classes` outputs; `forward` gives logits.

    CAM-capable models (`CAMNet`) also expose `features(x) -> (B, K, h, w)` and `classifier`;
    any classifier (arch torchvision | module | file) is wrapped (models.anynet): a LayerCAMNet
    with those names when it ends in global pooling and one linear layer.
    Weights: `weights_path` (a local file) if set, else torchvision's when `pretrained`, loaded
    strictly (models.weights.load_strictly); then `model.weights_load` says what was loaded (for
    metrics.json: models.weights.weights_record) and `model.reused_keys` holds the names of the
    loaded tensors (the rest are new layers, which fine-tuning may give a larger learning rate).
    `method` (None: CAM) adds the WSOL method's parts after the weights are loaded, so loading by
    name is the plain network's (models.methods.apply_method: ADL layers, ACoL's branch B, SPG's
    branches); `model.method` holds its name on every network, `model.method_aux` whether its
    forward takes the labels and returns (logits, aux_loss) in training. A method that does not
    apply to the network is a one-line ConfigError (models.method_config.method_problem), before
    anything is built.
    """
    spec = model_config(cfg)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    how = method_config(method)
    problem = method_problem(spec, how)
    if problem:
        raise ConfigError(problem)
    model = _BUILDERS[spec.arch](spec, num_classes)
    weights_load = None
    if spec.weights_path:
        weights_load = load_weights_file(model, spec.weights_path, spec)
    elif spec.pretrained:
        state = download_torchvision_state_dict(spec)
        source = f"torchvision's {torchvision_weights_enum(spec).__name__}.{spec.weights}"
        weights_load = load_torchvision_state_dict(model, state, spec, source)
    model = apply_method(model, spec, how)
    if weights_load is not None:
        model.weights_load = weights_load
        model.reused_keys = weights_load.loaded
    return model
