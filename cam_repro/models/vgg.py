"""VGG16 (with or without BN) and VGGnet-GAP / -GMP, laid out like torchvision's VGG.

`backbone` has torchvision's `features` indices, so its weights load by name. At 224 px the five
blocks give 224 -> 112 -> 56 -> 28 -> 14 -> 7; VGGnet-GAP drops pool5 and keeps the 14x14 conv5_3.
"""

from __future__ import annotations

from torch import nn

from cam_repro.models.config import ModelConfig
from cam_repro.models.heads import FCNet, cam_net, scaled

# Configuration "D" of Simonyan & Zisserman: conv widths, "M" for a 2x2 max pooling.
VGG16_LAYERS: list[int | str] = [
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
]  # fmt: skip


def _features(width_mult: float, batch_norm: bool) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG16_LAYERS:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        width = scaled(int(item), width_mult)
        layers.append(nn.Conv2d(channels, width, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.ReLU(inplace=True))
        channels = width
    return nn.Sequential(*layers), channels


def init_vgg(model: nn.Module) -> None:
    """torchvision's VGG initialisation."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


def build_vgg16(cfg: ModelConfig, num_classes: int) -> nn.Module:
    """Original VGG16 (torchvision's `vgg16` / `vgg16_bn`) or VGGnet-GAP/GMP (14x14 map)."""
    features, channels = _features(cfg.width_mult, bool(cfg.batch_norm))
    init_vgg(features)
    if cfg.modified:
        return cam_net(features[:-1], channels, cfg, num_classes)  # without pool5
    hidden = scaled(4096, cfg.width_mult)
    p = 0.5 if cfg.dropout is None else cfg.dropout
    classifier = nn.Sequential(
        nn.Linear(channels * 7 * 7, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(p),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(p),
        nn.Linear(hidden, num_classes),
    )
    init_vgg(classifier)
    return FCNet(features, 7, classifier)
