"""GoogLeNet (original, CAM at 7x7) and GoogLeNet-GAP / -GMP (cut after inception4e, 14x14).

Built from torchvision's own `BasicConv2d` and `Inception` blocks with torchvision's module names,
so its ImageNet weights load by name. The auxiliary classifiers are not built (they only serve
training from scratch); their pretrained weights are skipped.
"""

from __future__ import annotations

import functools
from collections import OrderedDict

import torch
from torch import Tensor, nn
from torchvision.models.googlenet import BasicConv2d, Inception

from cam_repro.models.config import ModelConfig
from cam_repro.models.heads import CAMNet, cam_net, scaled

# torchvision's inception blocks: (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj).
INCEPTIONS: dict[str, tuple[int, int, int, int, int, int]] = {
    "inception3a": (64, 96, 128, 16, 32, 32),
    "inception3b": (128, 128, 192, 32, 96, 64),
    "inception4a": (192, 96, 208, 16, 48, 64),
    "inception4b": (160, 112, 224, 24, 64, 64),
    "inception4c": (128, 128, 256, 24, 64, 64),
    "inception4d": (112, 144, 288, 32, 64, 64),
    "inception4e": (256, 160, 320, 32, 128, 128),
    "inception5a": (256, 160, 320, 32, 128, 128),
    "inception5b": (384, 192, 384, 48, 128, 128),
}
# Max poolings (name, kernel) placed before these blocks: torchvision's maxpool3 and maxpool4.
_POOL_BEFORE = {"inception4a": ("maxpool3", 3), "inception5a": ("maxpool4", 2)}


class GoogLeNetTrunk(nn.Sequential):
    """GoogLeNet from conv1 up to `last` (an inception block), torchvision's names and layout."""

    def __init__(self, width_mult: float, last: str = "inception5b") -> None:
        w = functools.partial(scaled, width_mult=width_mult)
        c1, c2, c3 = w(64), w(64), w(192)
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv1=BasicConv2d(3, c1, kernel_size=7, stride=2, padding=3),
            maxpool1=nn.MaxPool2d(3, stride=2, ceil_mode=True),
            conv2=BasicConv2d(c1, c2, kernel_size=1),
            conv3=BasicConv2d(c2, c3, kernel_size=3, padding=1),
            maxpool2=nn.MaxPool2d(3, stride=2, ceil_mode=True),
        )
        channels = c3
        for name, widths in INCEPTIONS.items():
            if name in _POOL_BEFORE:
                pool_name, kernel = _POOL_BEFORE[name]
                layers[pool_name] = nn.MaxPool2d(kernel, stride=2, ceil_mode=True)
            ch1, ch3r, ch3, ch5r, ch5, proj = (w(c) for c in widths)
            layers[name] = Inception(channels, ch1, ch3r, ch3, ch5r, ch5, proj)
            channels = ch1 + ch3 + ch5 + proj
            if name == last:
                break
        super().__init__(layers)
        self.out_channels = channels
        # Persistent, so a checkpoint remembers whether its weights expect torchvision's
        # GoogLeNet input convention (set when torchvision's ImageNet weights are loaded).
        self.register_buffer("transform_input", torch.tensor(False))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        if bool(self.transform_input):
            # ImageNet mean/std normalisation -> the (x - 0.5) / 0.5 the ported weights expect.
            mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
            std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
            x = (x * std + mean - 0.5) / 0.5
        return super().forward(x)


def build_googlenet(cfg: ModelConfig, num_classes: int) -> CAMNet:
    """Original GoogLeNet (ends in GAP: CAM at 7x7) or GoogLeNet-GAP/GMP cut after inception4e."""
    if cfg.modified:
        trunk = GoogLeNetTrunk(cfg.width_mult, last="inception4e")
        model = cam_net(trunk, trunk.out_channels, cfg, num_classes)
    else:
        trunk = GoogLeNetTrunk(cfg.width_mult, last="inception5b")
        p = 0.2 if cfg.dropout is None else cfg.dropout
        model = CAMNet(trunk, trunk.out_channels, num_classes, head_channels=0, dropout=p)
        nn.init.trunc_normal_(model.classifier.weight, mean=0.0, std=0.01, a=-2, b=2)
    if cfg.transform_input:
        trunk.transform_input.fill_(True)
    return model
