"""The model config: one typed schema for Hydra (`configs/model/*.yaml`) and `build_model`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Any

from omegaconf import MISSING, DictConfig

from cam_repro.runtime.config import to_schema
from cam_repro.runtime.errors import ConfigError

ARCHS = ("alexnet", "alexnet_star", "vgg16", "googlenet", "nin", "resnet50", "tiny")
# Any classifier that is not one of the paper's networks (docs/models.md, "Any classifier"): a
# torchvision classification model by name, a module of one's own (Hydra's _target_), or a
# torch.export program; CAM through its feature map and final linear layer
# (cam_repro.localize.layers), found or named.
ANY_ARCHS = ("torchvision", "module", "file")
POOLS = ("gap", "gmp")

# The paper's names (Tables 1 and 2) and ours for reports.
_PAPER_ARCH_NAMES = {
    "alexnet": "AlexNet",
    "alexnet_star": "AlexNet*",
    "vgg16": "VGGnet",
    "googlenet": "GoogLeNet",
    "nin": "NIN",
    "resnet50": "ResNet-50",
    "tiny": "Tiny",
}


@dataclass
class ModelConfig:
    """Every option of every architecture; `configs/model/<variant>.yaml` sets what differs."""

    # alexnet | alexnet_star | vgg16 | googlenet | nin | resnet50 | tiny; any classifier:
    # torchvision | module | file (their keys below)
    arch: str = MISSING
    # false: the network as torchvision builds it (FC layers, or GoogLeNet/ResNet's own GAP head).
    # true: cut where the paper cuts it, then conv3x3 (head_channels) + ReLU, global pool, linear.
    modified: bool = True
    pool: str = "gap"  # gap | gmp: the global pooling of a modified (CAM) model
    width_mult: float = 1.0  # scales every conv (and hidden FC) width; 1 = torchvision's model
    batch_norm: bool | None = None  # null: the arch's own; VGG16 has both (true: vgg16_bn)
    head_channels: int = 1024  # units of the added 3x3 conv (before width_mult); 0: no added conv
    head_groups: int = 1  # 2 in the released VGG16-GAP and GoogLeNet-GAP
    dropout: float | None = None  # before the last linear; null: 0 (CAM) or torchvision's
    pretrained: bool = False  # load torchvision's ImageNet weights into every reused layer
    weights: str = "IMAGENET1K_V1"  # which member of torchvision's weights enum
    weights_path: str | None = None  # local state dict (torchvision's or ours); beats pretrained
    transform_input: bool | None = None  # GoogLeNet only; null: on with torchvision's weights
    output_stride: int = 32  # ResNet-50: 32 (7x7 at 224), 16 (layer4 stride 1), 8 (layer3 too)
    dilate: bool = False  # ResNet-50: replace the removed strides by dilation (torchvision's way)
    conv5_channels: int | None = None  # AlexNet*: null = 256 (torchvision); 384 in the release
    star_channels: int = 512  # AlexNet*: units of the two extra convs (conv6, conv7)
    num_pools: int = 2  # tiny: 2 (16x16 map at 64 px) or 3 (8x8: the resolution ablation)
    # Any classifier (arch: torchvision | module | file; configs/model/<arch>.yaml):
    name: str | None = None  # torchvision: a classification model's name, e.g. resnet18
    _target_: str | None = None  # module: what builds it (Hydra instantiate), e.g. pkg.MyNet
    kwargs: dict[str, Any] = field(default_factory=dict)  # module: its arguments
    file: str | None = None  # file: a torch.export program (torch.export.save)
    features_layer: str | None = None  # the feature map that is globally pooled; null: found
    classifier_layer: str | None = None  # the final linear layer; null: found


# Where a network's first weights came from: not part of what the network is.
WEIGHTS_ORIGIN = ("weights_path", "pretrained", "weights")


def config_differences(
    ours: ModelConfig, theirs: Mapping[str, Any], ignore: tuple[str, ...] = WEIGHTS_ORIGIN
) -> list[str]:
    """'key: theirs -> ours' for every option (but `ignore`d ones) on which a saved model config
    (a checkpoint's) and ours differ; [] when they describe the same network."""
    mine = asdict(ours)
    return [
        f"{key} {theirs.get(key)!r} in the file, {mine[key]!r} here"
        for key in mine
        if key not in ignore and theirs.get(key, mine[key]) != mine[key]
    ]


def model_config(cfg: ModelConfig | Mapping[str, Any] | DictConfig) -> ModelConfig:
    """Validate a model config (dict, DictConfig or ModelConfig) into a ModelConfig."""
    spec = to_schema(ModelConfig, cfg, "model")
    _validate(spec)
    return spec


def _validate(spec: ModelConfig) -> None:
    if spec.arch not in (*ARCHS, *ANY_ARCHS):
        choices = ", ".join((*ARCHS, *ANY_ARCHS))
        raise ConfigError(f"unknown model arch {spec.arch!r}; choose one of {choices}")
    _validate_any(spec)
    if spec.pool not in POOLS:
        raise ConfigError(f"model.pool must be 'gap' or 'gmp', got {spec.pool!r}")
    if not (math.isfinite(spec.width_mult) and spec.width_mult > 0):
        raise ConfigError(f"model.width_mult must be a finite number > 0, got {spec.width_mult}")
    if spec.head_channels < 0:
        raise ConfigError(f"model.head_channels must be >= 0, got {spec.head_channels}")
    if spec.head_groups < 1:
        raise ConfigError(f"model.head_groups must be >= 1, got {spec.head_groups}")
    if spec.dropout is not None and not 0.0 <= spec.dropout < 1.0:
        raise ConfigError(f"model.dropout must be in [0, 1), got {spec.dropout}")
    if spec.output_stride not in (8, 16, 32):
        raise ConfigError(f"model.output_stride must be 8, 16 or 32, got {spec.output_stride}")
    if spec.output_stride != 32 and spec.arch != "resnet50":
        raise ConfigError("model.output_stride applies to resnet50 only")
    if spec.arch in ("alexnet_star", "nin", "tiny") and not spec.modified:
        raise ConfigError(f"{spec.arch} exists only as a CAM model (model.modified=true)")
    if spec.num_pools not in (2, 3):
        raise ConfigError(f"model.num_pools must be 2 or 3 (tiny only), got {spec.num_pools}")
    if not spec.modified and spec.pool != "gap" and spec.arch in ("googlenet", "resnet50"):
        raise ConfigError(f"the original {spec.arch} ends in GAP; use model.modified=true for GMP")
    bn_fixed = {
        "alexnet": False,
        "alexnet_star": False,
        "googlenet": True,
        "nin": False,
        "resnet50": True,
        "tiny": True,
    }
    fixed = bn_fixed.get(spec.arch)
    if spec.batch_norm is not None and fixed is not None and spec.batch_norm != fixed:
        have = "always uses" if fixed else "has no variant with"
        raise ConfigError(f"torchvision's {spec.arch} {have} batch norm (model.batch_norm)")
    if spec.pretrained and spec.arch == "tiny":
        raise ConfigError("the tiny benchmark network has no pretrained weights (model.pretrained)")
    if spec.pretrained and spec.arch == "nin":
        raise ConfigError(
            "torchvision has no NIN weights (model.pretrained); pass model.weights_path=FILE, "
            "a state dict of ours"
        )
    if spec.pretrained and spec.width_mult != 1.0 and spec.weights_path is None:
        raise ConfigError("model.pretrained=true needs model.width_mult=1 (torchvision's widths)")


# What each kind of any classifier needs, and the keys that belong to them only.
_ANY_KEYS = {"torchvision": "name", "module": "_target_", "file": "file"}


def _validate_any(spec: ModelConfig) -> None:
    if spec.kwargs and spec.arch != "module":
        raise ConfigError(f"model.kwargs applies to model=module only, not arch {spec.arch}")
    if spec.arch not in ANY_ARCHS:
        for key in (*_ANY_KEYS.values(), "features_layer", "classifier_layer"):
            if getattr(spec, key) is not None:
                raise ConfigError(
                    f"model.{key} applies to model=torchvision|module|file, not arch {spec.arch}"
                )
        return
    key = _ANY_KEYS[spec.arch]
    if not getattr(spec, key):
        raise ConfigError(f"model={spec.arch} needs model.{key}")
    for other in set(_ANY_KEYS.values()) - {key}:
        if getattr(spec, other) is not None:
            raise ConfigError(f"model.{other} does not apply to model={spec.arch}")
    if (spec.features_layer is None) != (spec.classifier_layer is None):
        raise ConfigError("give both model.features_layer and model.classifier_layer, or neither")
    if spec.width_mult != 1.0:
        raise ConfigError(f"model.width_mult applies to the zoo's networks, not model={spec.arch}")
    if spec.pretrained and spec.arch != "torchvision":
        raise ConfigError(
            f"model.pretrained needs torchvision's weights (model=torchvision); for model="
            f"{spec.arch} pass model.weights_path=FILE"
        )


def variant_name(cfg: ModelConfig) -> str:
    """Our name of a variant: the config file's name, e.g. 'vgg16_gap' or 'googlenet'; any
    classifier's own name (torchvision's, the class's, the file's)."""
    if cfg.arch in ANY_ARCHS:
        return any_name(cfg)
    if cfg.arch == "tiny" and cfg.num_pools != 2:
        return f"tiny_{cfg.pool}_8x8"
    if cfg.arch == "nin":  # NIN ends in GAP natively: configs/model/nin.yaml, nin_gmp for GMP
        return "nin" if cfg.pool == "gap" else f"nin_{cfg.pool}"
    return f"{cfg.arch}_{cfg.pool}" if cfg.modified else cfg.arch


def paper_name(cfg: ModelConfig) -> str:
    """The paper's name of a variant, e.g. 'VGGnet-GAP' or 'GoogLeNet' (original); any
    classifier's own name."""
    if cfg.arch in ANY_ARCHS:
        return any_name(cfg)
    name = _PAPER_ARCH_NAMES[cfg.arch]
    if cfg.arch == "nin":  # the paper's row "NIN": its own GAP head
        return name if cfg.pool == "gap" else f"{name}-{cfg.pool.upper()}"
    suffix = " (8x8)" if cfg.arch == "tiny" and cfg.num_pools != 2 else ""
    return f"{name}-{cfg.pool.upper()}{suffix}" if cfg.modified else name


def any_name(cfg: ModelConfig) -> str:
    """An any classifier's name: torchvision's (resnet18), the class's (MyNet), the file's."""
    if cfg.arch == "torchvision":
        return str(cfg.name)
    if cfg.arch == "module":
        return str(cfg._target_).rsplit(".", 1)[-1]
    return PurePath(str(cfg.file)).stem


@dataclass
class ModelsAppConfig:
    """`cam-models`: build networks from their configs and report their shapes."""

    model: ModelConfig = field(default_factory=ModelConfig)
    input_size: int = 224  # side of the square input whose last conv map is reported
    num_classes: int = 1000  # outputs of the last linear layer (1000: ImageNet's)
