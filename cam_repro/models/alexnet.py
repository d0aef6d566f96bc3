"""AlexNet, AlexNet-GAP and AlexNet*-GAP, laid out like torchvision's AlexNet.

Layer indices of `backbone` equal torchvision's `features`, so its weights load by name:
0 conv1, 2 pool1, 3 conv2, 5 pool2, 6 conv3, 8 conv4, 10 conv5, 12 pool5 (ReLUs in between).
At 224 px: conv1 55x55, pool1 27, pool2 13, conv5 13x13, pool5 6x6.
"""

from __future__ import annotations

from torch import nn

from cam_repro.models.config import ModelConfig
from cam_repro.models.heads import FCNet, cam_net, scaled


def _features(width_mult: float, conv5_channels: int = 256) -> tuple[nn.Sequential, int]:
    c1, c2, c3, c4 = (scaled(c, width_mult) for c in (64, 192, 384, 256))
    c5 = scaled(conv5_channels, width_mult)
    layers = nn.Sequential(
        nn.Conv2d(3, c1, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(c1, c2, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(c2, c3, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c3, c4, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c4, c5, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )
    return layers, c5


def build_alexnet(cfg: ModelConfig, num_classes: int) -> nn.Module:
    """Original AlexNet (torchvision's) or AlexNet-GAP: conv5 (13x13) + conv3x3 + pool + linear."""
    features, c5 = _features(cfg.width_mult)
    if cfg.modified:
        # Up to conv5 + ReLU: pool5 and everything after it are dropped.
        return cam_net(features[:12], c5, cfg, num_classes)
    hidden = scaled(4096, cfg.width_mult)
    p = 0.5 if cfg.dropout is None else cfg.dropout
    classifier = nn.Sequential(
        nn.Dropout(p),
        nn.Linear(c5 * 6 * 6, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(p),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, num_classes),
    )
    return FCNet(features, 6, classifier)


def build_alexnet_star(cfg: ModelConfig, num_classes: int) -> nn.Module:
    """AlexNet*-GAP as released: pool5 3x3 stride 1 (11x11), conv6 and conv7, then the CAM head."""
    features, c5 = _features(cfg.width_mult, cfg.conv5_channels or 256)
    cs = scaled(cfg.star_channels, cfg.width_mult)
    backbone = nn.Sequential(
        *features[:12],
        nn.MaxPool2d(kernel_size=3, stride=1),  # 13x13 -> 11x11
        nn.Conv2d(c5, cs, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(cs, cs, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
    )
    return cam_net(backbone, cs, cfg, num_classes)
