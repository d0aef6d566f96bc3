"""Loading torchvision's ImageNet weights, or a local state dict, into our models.

Our modules keep torchvision's names under `backbone.` (and `classifier.` for the originals), so a
torchvision state dict maps by prefix. Reused layers take the weights; new layers (the added conv,
the new linear layer, a classifier with another number of classes) keep their fresh init.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchvision import models as tvm

from cam_repro.models.config import (
    ANY_ARCHS,
    WEIGHTS_ORIGIN,
    ModelConfig,
    config_differences,
    model_config,
    variant_name,
)
from cam_repro.runtime.errors import (
    CamReproError,
    ConfigError,
    InputFileError,
    MissingFileError,
    WeightsUnavailableError,
    first_line,
)
from cam_repro.runtime.numeric import first_non_finite

log = logging.getLogger(__name__)


def torchvision_weights_enum(cfg: ModelConfig) -> type[tvm.WeightsEnum]:
    """The torchvision weights enum whose layers our variant reuses."""
    if cfg.arch == "torchvision":
        return tvm.get_model_weights(str(cfg.name))
    if cfg.arch == "vgg16":
        return tvm.VGG16_BN_Weights if cfg.batch_norm else tvm.VGG16_Weights
    return {
        "alexnet": tvm.AlexNet_Weights,
        "alexnet_star": tvm.AlexNet_Weights,
        "googlenet": tvm.GoogLeNet_Weights,
        "resnet50": tvm.ResNet50_Weights,
    }[cfg.arch]


def torchvision_keymap(cfg: ModelConfig) -> list[tuple[str, str | None]]:
    """(torchvision prefix, our prefix or None to skip), first match wins."""
    if cfg.arch in ANY_ARCHS:  # wrapped as `net` (models.anynet); no auxiliary classifiers
        return [("aux1.", None), ("aux2.", None), ("AuxLogits.", None), ("", "net.")]
    if cfg.arch in ("alexnet", "alexnet_star", "vgg16"):
        # A CAM model has no `classifier.<i>.` keys, so the FC layers find nothing to load into.
        return [("features.", "backbone."), ("classifier.", "classifier.")]
    fc = None if cfg.modified else "classifier."  # the CAM models' linear layer is new
    return [("fc.", fc), ("aux1.", None), ("aux2.", None), ("", "backbone.")]


def _map_key(key: str, keymap: list[tuple[str, str | None]]) -> str | None:
    for src, dst in keymap:
        if key.startswith(src):
            return None if dst is None else dst + key[len(src) :]
    return None


def download_torchvision_state_dict(cfg: ModelConfig) -> dict[str, Tensor]:
    """torchvision's ImageNet state dict for `cfg` (from torch.hub's cache, or downloaded)."""
    enum = torchvision_weights_enum(cfg)
    try:
        weights = enum[cfg.weights]
    except KeyError:
        choices = ", ".join(enum.__members__)
        msg = f"model.weights={cfg.weights!r} is not one of {enum.__name__}: {choices}"
        raise ConfigError(msg) from None
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except OSError as err:  # URLError, timeouts, refused connections, read-only cache
        reason = getattr(err, "reason", None) or err
        cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        raise WeightsUnavailableError(
            f"cannot download torchvision's {enum.__name__}.{cfg.weights} ({reason}); this "
            f"machine looks offline: fetch {weights.url} elsewhere and pass "
            f"model.weights_path=FILE, or put the file at {cache}"
        ) from None


def load_torchvision_state_dict(
    model: nn.Module, state: Mapping[str, Tensor], cfg: ModelConfig, source: str
) -> set[str]:
    """Copy every tensor of a torchvision state dict that our model reuses; returns their names."""
    own = model.state_dict()
    last_linear = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    keymap = torchvision_keymap(cfg)
    mapped: dict[str, Tensor] = {}
    skipped_classifier = False
    for key, value in state.items():
        ours = _map_key(key, keymap)
        if ours is None or ours not in own:
            continue
        if own[ours].shape != value.shape:
            if ours.rsplit(".", 1)[0] == last_linear:  # another number of classes: keep fresh
                skipped_classifier = True
                continue
            raise InputFileError(
                f"{source}: {key} has shape {tuple(value.shape)} but {variant_name(cfg)} expects "
                f"{tuple(own[ours].shape)} for {ours} (options such as width_mult change it)"
            )
        mapped[ours] = value
    if not mapped:
        raise InputFileError(f"{source}: no tensor matches {variant_name(cfg)}'s reused layers")
    model.load_state_dict(mapped, strict=False)
    if cfg.arch == "googlenet" and cfg.transform_input is not False:
        model.backbone.transform_input.fill_(True)  # torchvision's GoogLeNet weights expect it
    fresh = len(own) - len(mapped)
    log.info(
        "%s: loaded %d tensors from %s; %d stay freshly initialised%s",
        variant_name(cfg),
        len(mapped),
        source,
        fresh,
        " (classifier: other number of classes)" if skipped_classifier else "",
    )
    return set(mapped)


def torch_load_safely(path: str | Path, missing: str, unreadable: str) -> object:
    """`torch.load(path, weights_only=True)` on the CPU; a missing or unloadable file raises one
    line from the templates `missing` ({path}) and `unreadable` ({path}, {detail})."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingFileError(missing.format(path=path))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated or foreign files
        detail = first_line(err)
        raise InputFileError(unreadable.format(path=path, detail=detail)) from None


def read_state_dict(path: str | Path) -> tuple[dict[str, Tensor], Mapping[str, Any] | None]:
    """A state dict from a file: bare, or in a checkpoint under 'model' or 'state_dict'; and the
    model config the file carries (a cam-repro checkpoint's `config.model`), or None.

    A tensor holding NaN or infinity is an InputFileError naming the file and the tensor."""
    path = Path(path).expanduser()
    obj = torch_load_safely(
        path,
        missing="model.weights_path: {path} does not exist",
        unreadable="{path}: not a PyTorch weights file that loads safely ({detail})",
    )
    carried = None
    if isinstance(obj, Mapping):
        config = obj.get("config")
        if isinstance(config, Mapping) and isinstance(config.get("model"), Mapping):
            carried = config["model"]
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if (
        not isinstance(obj, Mapping)
        or not obj
        or not all(isinstance(v, Tensor) for v in obj.values())
    ):
        raise InputFileError(f"{path}: expected a state dict (parameter name -> tensor)")
    check_weights_finite(obj, path)
    # Checkpoints of DistributedDataParallel or torch.compile'd models carry these prefixes.
    return {_strip_prefixes(k): v for k, v in obj.items()}, carried


def check_weights_finite(state: Mapping[str, Tensor], path: str | Path) -> None:
    """Refuse weights holding NaN or infinity, naming the file and the first bad tensor."""
    bad = first_non_finite(state)
    if bad is not None:
        raise InputFileError(
            f"{path}: tensor {bad}; these weights are unusable (did the training diverge?)"
        )


def _carried_name(carried: Mapping[str, Any]) -> str:
    try:
        return variant_name(model_config(carried))
    except CamReproError:
        return str(carried.get("arch", "different"))


def _strip_prefixes(key: str) -> str:
    for prefix in ("module.", "_orig_mod."):
        while key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def load_weights_file(model: nn.Module, path: str | Path, cfg: ModelConfig) -> set[str]:
    """Load a local state dict: our own (keys under `backbone.`, or `net.` for any classifier)
    strictly, torchvision's (or the bare network's) by name.

    Returns the names of the tensors loaded.
    """
    state, carried = read_state_dict(path)
    if carried is not None:
        differ = config_differences(cfg, carried, ignore=(*WEIGHTS_ORIGIN, "dropout"))
        if differ:
            raise InputFileError(
                f"{path}: holds a {_carried_name(carried)} network, not {variant_name(cfg)} "
                f"({'; '.join(differ)}); load it with the model config it was trained with"
            )
    ours = "net." if cfg.arch in ANY_ARCHS else "backbone."
    if not any(k.startswith(ours) for k in state):
        return load_torchvision_state_dict(model, state, cfg, str(path))
    own = model.state_dict()
    problems = []
    if missing := [k for k in own if k not in state]:
        problems.append(f"missing {', '.join(missing[:3])}")
    if unexpected := [k for k in state if k not in own]:
        problems.append(f"unexpected {', '.join(unexpected[:3])}")
    if wrong := [k for k in own if k in state and state[k].shape != own[k].shape]:
        k = wrong[0]
        problems.append(f"{k} has shape {tuple(state[k].shape)}, expected {tuple(own[k].shape)}")
    if problems:
        raise InputFileError(f"{path}: does not fit {variant_name(cfg)}: {'; '.join(problems)}")
    model.load_state_dict(state)
    return set(state)
