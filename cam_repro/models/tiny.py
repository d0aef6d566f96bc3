"""The CPU benchmark backbone: a small VGG-style CAM network (docs/design.md, "The embedded
benchmark").

3x3 conv + BN + ReLU blocks, widths 24 -> pool -> 48 -> pool -> 96 -> 96 (137k parameters with 10
classes), so a 64 px image gives a 16x16 last map (stride 4). `num_pools=3` adds a pooling before
the last conv: an 8x8 map, for the paper's mapping-resolution ablation. The head is the paper's:
GAP or GMP and one linear layer (no added 1024-unit conv unless `head_channels` asks for one).
Layers keep PyTorch's default initialisation, as in the measured recipe: with the VGG init
(Kaiming-normal convs, a N(0, 0.01) linear layer) the same recipe trains markedly slower (val top-1
error 15.6% vs 8.6% after 8 epochs on the default synthetic set, tiny_gap, seed 0).
"""

from __future__ import annotations

from torch import nn

from cam_repro.models.config import ModelConfig
from cam_repro.models.heads import cam_net, scaled

TINY_LAYERS: dict[int, list[int | str]] = {
    2: [24, "M", 48, "M", 96, 96],  # 16x16 at 64 px
    3: [24, "M", 48, "M", 96, "M", 96],  # 8x8 at 64 px
}


def build_tiny(cfg: ModelConfig, num_classes: int) -> nn.Module:
    """Tiny-GAP / Tiny-GMP (CAM models only)."""
    layers: list[nn.Module] = []
    channels = 3
    for item in TINY_LAYERS[cfg.num_pools]:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        width = scaled(int(item), cfg.width_mult)
        layers += [
            nn.Conv2d(channels, width, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        channels = width
    net = cam_net(nn.Sequential(*layers), channels, cfg, num_classes)
    net.classifier.reset_parameters()  # PyTorch's default, not CAMNet's N(0, 0.01)
    return net
