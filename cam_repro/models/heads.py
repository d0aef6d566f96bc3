"""The CAM head shared by every modified network, and the FC head of the originals."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cam_repro.localize.layers import global_pool
from cam_repro.models.config import POOLS, ModelConfig
from cam_repro.runtime.errors import ConfigError


def scaled(channels: int, width_mult: float, divisor: int = 1) -> int:
    """Width `channels * width_mult`, rounded to a multiple of `divisor` (at least `divisor`)."""
    return max(divisor, round(channels * width_mult / divisor) * divisor)


class GlobalPool(nn.Module):
    """Global average (GAP) or max (GMP) pooling: (B, K, h, w) -> (B, K)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        if kind not in POOLS:
            raise ConfigError(f"global pooling must be 'gap' or 'gmp', got {kind!r}")
        self.kind = kind

    def forward(self, x: Tensor) -> Tensor:
        return global_pool(x, self.kind)

    def extra_repr(self) -> str:
        return self.kind


def init_head_conv(conv: nn.Conv2d) -> None:
    """The added conv's initialisation (Kaiming-normal, fan out; zero bias): CAMNet's, and ACoL's
    second branch's (models/methods.py)."""
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def init_classifier(linear: nn.Linear) -> None:
    """The linear layer's initialisation (N(0, 0.01), zero bias): CAMNet's, and ACoL's second
    branch's (models/methods.py)."""
    nn.init.normal_(linear.weight, 0.0, 0.01)
    nn.init.zeros_(linear.bias)


class CAMNet(nn.Module):
    """backbone -> [conv3x3 + ReLU] -> global pool -> [dropout] -> one linear layer.

    `features(x)` gives the last conv maps f_k (B, K, h, w) and `classifier` holds w_k^c, so the
    class activation map of class c is sum_k w_k^c f_k (see `cam_repro.cam`).
    """

    def __init__(
        self,
        backbone: nn.Module,
        in_channels: int,
        num_classes: int,
        *,
        pool: str = "gap",
        head_channels: int = 1024,
        head_groups: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        if head_channels > 0:
            if in_channels % head_groups or head_channels % head_groups:
                raise ConfigError(
                    f"head_groups={head_groups} must divide the conv's input ({in_channels}) "
                    f"and output ({head_channels}) channels"
                )
            conv = nn.Conv2d(in_channels, head_channels, 3, stride=1, padding=1, groups=head_groups)
            init_head_conv(conv)
            self.head: nn.Module = nn.Sequential(conv, nn.ReLU(inplace=True))
            num_features = head_channels
        else:
            self.head = nn.Identity()
            num_features = in_channels
        self.pool = GlobalPool(pool)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(num_features, num_classes)
        init_classifier(self.classifier)

    def features(self, x: Tensor) -> Tensor:
        """Images (B, 3, H, W) -> last conv maps (B, K, h, w)."""
        return self.head(self.backbone(x))

    def logits_from_features(self, features: Tensor) -> Tensor:
        """Last conv maps (B, K, h, w) -> class scores (B, C)."""
        return self.classifier(self.dropout(self.pool(features)))

    def forward(self, x: Tensor) -> Tensor:
        return self.logits_from_features(self.features(x))


def cam_net(backbone: nn.Module, in_channels: int, cfg: ModelConfig, num_classes: int) -> CAMNet:
    """The paper's modified network on `backbone`, with the head options of `cfg`."""
    head = cfg.head_channels and scaled(cfg.head_channels, cfg.width_mult, cfg.head_groups)
    return CAMNet(
        backbone,
        in_channels,
        num_classes,
        pool=cfg.pool,
        head_channels=head,
        head_groups=cfg.head_groups,
        dropout=cfg.dropout or 0.0,
    )


class FCNet(nn.Module):
    """The original AlexNet / VGG16: conv features -> adaptive avg pool -> FC classifier.

    Its features reach the classes through fully connected layers, so it has no class activation
    map; `cam_repro.cam.backprop_saliency` (the paper's Backprop baseline) localizes with it.
    """

    # How to get a CAM of it instead (in cam_model's refusal)
    cam_hint = "use its -GAP/-GMP variant (e.g. model=vgg16_gap)"

    def __init__(self, backbone: nn.Module, pool_size: int, classifier: nn.Sequential) -> None:
        super().__init__()
        self.backbone = backbone
        self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        self.classifier = classifier

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.backbone(x)), 1))
