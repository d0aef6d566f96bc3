"""Feature vectors of a batch: what the paper's linear classifiers of Section 4 are fitted on.

- `gap`: the last conv maps of a CAM network, averaged over space (GoogLeNet-GAP's features in
  the paper; with our GAP networks exactly the vector their own last layer reads).
- `gmp`: the same maps, maximum over space.
- `avgpool`: the originals that end in global average pooling (GoogLeNet, ResNet-50): the pooled
  vector before their last layer (the paper's "GoogLeNet ave pool" row).
- `fc7`: the originals with fully connected layers (AlexNet, VGG16): the second FC layer's
  output after its ReLU (the paper's "AlexNet fc7" row).

`gap`, `gmp` and `avgpool` come with the last conv maps (B, K, h, w), from which a linear
classifier over the pooled vector gives class activation maps; `fc7` has none.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from cam_repro.features.config import FEATURE_KINDS
from cam_repro.localize.cam import CAMNetwork
from cam_repro.localize.layers import global_pool
from cam_repro.models.heads import FCNet
from cam_repro.runtime.distributed import unwrap
from cam_repro.runtime.errors import ConfigError

# (images) -> (pooled vectors (B, D), last conv maps (B, K, h, w) or None)
Extractor = Callable[[Tensor], tuple[Tensor, Tensor | None]]


def pool_features(maps: Tensor, kind: str) -> Tensor:
    """(B, K, h, w) -> (B, K): mean (gap, avgpool) or max (gmp) over space."""
    return global_pool(maps, head_pool(kind))


def head_pool(kind: str) -> str:
    """How a linear classifier over `kind` features pools the last conv maps (for its CAMs)."""
    return "gmp" if kind == "gmp" else "gap"


# What a network needs for any kind of features, said when it has none.
NO_KIND = (
    "cam-features needs a network that ends in global pooling and one linear layer (gap, gmp, "
    "avgpool: the zoo's -GAP networks, or e.g. model=torchvision model.name=mobilenet_v2) or "
    "the zoo's AlexNet or VGG16 with their FC layers (fc7: model=vgg16 model.modified=false)"
)


def supported_features(model: nn.Module, modified: bool | None = None) -> list[str]:
    """The kinds of features `model` gives (in FEATURE_KINDS' order): what a refusal advises, so
    that the advice is always taken (`modified` as in `feature_extractor`)."""
    net = unwrap(model)
    kinds = []
    if isinstance(net, CAMNetwork):
        if modified is None:
            modified = not isinstance(getattr(net, "head", None), nn.Identity)
        kinds += ["gap", "gmp"] + ([] if modified else ["avgpool"])
    if isinstance(net, FCNet):
        kinds.append("fc7")
    return [k for k in FEATURE_KINDS if k in kinds]


def _refusal(why: str, model: nn.Module, modified: bool | None) -> ConfigError:
    """A kind of features refused (`why`), with the kinds this network does give (or, if none,
    what would)."""
    kinds = supported_features(model, modified)
    advice = f"use features={' or '.join(kinds)}" if kinds else f"it gives none; {NO_KIND}"
    if isinstance(unwrap(model), FCNet):
        advice += ", or its -GAP variant (e.g. model=vgg16_gap)"
    return ConfigError(f"{why}; {advice}")


def feature_extractor(
    model: nn.Module, kind: str, name: str, modified: bool | None = None
) -> Extractor:
    """The function giving `kind` features of `model` (named `name` in errors). `modified`: the
    model's config says it is modified for CAM (None: judged by an added conv before pooling).
    A refusal advises only kinds this network gives (`supported_features`)."""
    if kind not in FEATURE_KINDS:
        raise ConfigError(f"features must be one of {', '.join(FEATURE_KINDS)}; got {kind!r}")
    net = unwrap(model)
    if kind == "fc7":
        if not isinstance(net, FCNet):
            why = (f"features=fc7: {name} has no fully connected layers (fc7 is the second FC "
                   "layer of the zoo's AlexNet and VGG16)")  # fmt: skip
            raise _refusal(why, model, modified)
        fc7 = net.classifier[:-1]  # up to the second FC layer's ReLU (dropout is off in eval)

        def extract_fc7(x: Tensor) -> tuple[Tensor, Tensor | None]:
            return fc7(torch.flatten(net.avgpool(net.backbone(x)), 1)), None

        return extract_fc7
    if not isinstance(net, CAMNetwork):
        why = f"features={kind}: {name} has no globally pooled last conv layer before one linear"
        raise _refusal(why, model, modified)
    if modified is None:
        modified = not isinstance(getattr(net, "head", None), nn.Identity)
    if kind == "avgpool" and modified:
        why = (f"features=avgpool is the pooled vector of an original network (GoogLeNet, "
               f"ResNet-50, any classifier); {name} is modified for CAM")  # fmt: skip
        raise _refusal(why, model, modified)

    def extract(x: Tensor) -> tuple[Tensor, Tensor | None]:
        maps = net.features(x)  # (B, K, h, w)
        return pool_features(maps, kind), maps

    return extract
