"""ResNet-50 with a CAM head (the later WSOL literature's backbone), torchvision's names and layout.

At 224 px layer4 gives 7x7 (output stride 32). `output_stride=16` removes layer4's stride (14x14),
`8` also layer3's (28x28), as wsolevaluation does; `dilate=true` replaces them by dilation instead,
like torchvision's `replace_stride_with_dilation`.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn
from torchvision.models.resnet import Bottleneck

from cam_repro.models.config import ModelConfig
from cam_repro.models.heads import CAMNet, cam_net, scaled

RESNET50_BLOCKS = (3, 4, 6, 3)


class ResNetTrunk(nn.Sequential):
    """conv1 ... layer4 of a Bottleneck ResNet; widths scaled by `width_mult`."""

    def __init__(self, width_mult: float, output_stride: int = 32, dilate: bool = False) -> None:
        stem = scaled(64, width_mult)
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv1=nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False),
            bn1=nn.BatchNorm2d(stem),
            relu=nn.ReLU(inplace=True),
            maxpool=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        # Stages whose stride 2 is removed: layer4 below output stride 32, layer3 too at 8.
        removed = {32: (), 16: (3,), 8: (2, 3)}[output_stride]
        in_planes, dilation = stem, 1
        for i, blocks in enumerate(RESNET50_BLOCKS):
            stride, previous = (1 if i == 0 else 2), dilation
            if i in removed:
                stride = 1
                if dilate:  # torchvision's rule: the stage's first block keeps the old dilation
                    dilation *= 2
            planes = scaled(64 * 2**i, width_mult)
            layers[f"layer{i + 1}"], in_planes = _stage(
                in_planes, planes, blocks, stride, previous, dilation
            )
        super().__init__(layers)
        self.out_channels = in_planes
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def _stage(
    in_planes: int, planes: int, blocks: int, stride: int, first_dilation: int, dilation: int
) -> tuple[nn.Sequential, int]:
    out = planes * Bottleneck.expansion
    downsample = None
    if stride != 1 or in_planes != out:
        downsample = nn.Sequential(
            nn.Conv2d(in_planes, out, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out),
        )
    layers = [Bottleneck(in_planes, planes, stride, downsample, dilation=first_dilation)]
    layers += [Bottleneck(out, planes, dilation=dilation) for _ in range(1, blocks)]
    return nn.Sequential(*layers), out


def build_resnet50(cfg: ModelConfig, num_classes: int) -> CAMNet:
    """ResNet-50 (original: torchvision's GAP + fc) or ResNet-50-GAP/GMP with the added conv."""
    trunk = ResNetTrunk(cfg.width_mult, cfg.output_stride, cfg.dilate)
    if cfg.modified:
        return cam_net(trunk, trunk.out_channels, cfg, num_classes)
    model = CAMNet(trunk, trunk.out_channels, num_classes, head_channels=0, dropout=0.0)
    nn.init.kaiming_uniform_(model.classifier.weight, a=5**0.5)  # torch's Linear default
    return model
