"""NIN, the ImageNet Network in Network (Lin et al., ICLR 2014): the paper's Tables 1-2 row "NIN".

The layers of the Caffe model-zoo "NIN-imagenet" model the CAM paper used: four mlpconv blocks,
each a spatial conv + ReLU followed by two 1x1 convs + ReLU (Caffe's "cccp" layers):

    conv1 11x11 / 4, 96   cccp1 96   cccp2 96     max pool 3 / 2
    conv2 5x5 pad 2, 256  cccp3 256  cccp4 256    max pool 3 / 2
    conv3 3x3 pad 1, 384  cccp5 384  cccp6 384    max pool 3 / 2, dropout 0.5
    conv4 3x3 pad 1, 1024 cccp7 1024              (Caffe: cccp8 1x1 to the classes + ReLU, GAP)

The pools round up (Caffe's pooling; `ceil_mode=True`), so the map sizes are the Caffe model's:
at 224 px conv1 54x54, pool1 27, pool2 13, pool3 6: the CAM map is 6x6 (at 227 px, Caffe's crop,
conv1 is 55x55 and the rest the same: 6x6 too; 2x2 at 96 px, 1x1 at 64 px). 7,595,176
parameters with 1,000 classes, as the Caffe model. Widths scale with `model.width_mult`.

`backbone` keeps the Caffe model's layer names for the weight layers (conv4 and cccp7 are its
conv4-1024 and cccp7-1024), so a converted Caffe state dict maps by name. The dropout sits where
Caffe has it, in the backbone after pool3 (identity in eval mode, so the CAM identity holds).

How ours differs from the Caffe model: Caffe's class layer is cccp8 (a 1x1 conv from 1024 units
to the classes) + ReLU, then global average pooling. Ours is CAMNet's head: GAP (or GMP,
`model.pool=gmp`) of cccp7's 1024 maps, then one linear layer. Being linear, the 1x1 conv commutes
with the average pooling (the same weights, moved after it; cccp8 -> `classifier`, its 1x1 kernel
squeezed), but the ReLU after it is dropped: the logits may be negative, and the paper's identity
logit_c = mean_xy(CAM_c) + b_c holds exactly. So the CAM is taken at cccp7 + ReLU (1024 channels),
the paper's f_k. There is no added conv (NIN's own last layers are its head: `model.head_channels`
and `model.head_groups` do not apply); `model.dropout` (null: 0) adds one before the linear layer.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from cam_repro.models.config import ModelConfig
from cam_repro.models.heads import CAMNet, scaled

# (block, spatial conv (units, kernel, stride, padding), units of its two 1x1 convs)
NIN_BLOCKS = [
    (1, (96, 11, 4, 0), (96, 96)),
    (2, (256, 5, 1, 2), (256, 256)),
    (3, (384, 3, 1, 1), (384, 384)),
    (4, (1024, 3, 1, 1), (1024,)),  # the class layer cccp8 is CAMNet's classifier
]
NIN_DROPOUT = 0.5  # Caffe's "drop" after pool3


def _backbone(width_mult: float) -> tuple[nn.Sequential, int]:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels, cccp = 3, 0
    for block, (units, kernel, stride, padding), ones in NIN_BLOCKS:
        width = scaled(units, width_mult)
        layers[f"conv{block}"] = nn.Conv2d(channels, width, kernel, stride, padding)
        layers[f"conv{block}_relu"] = nn.ReLU(inplace=True)
        channels = width
        for units_1x1 in ones:
            cccp += 1
            width = scaled(units_1x1, width_mult)
            layers[f"cccp{cccp}"] = nn.Conv2d(channels, width, kernel_size=1)
            layers[f"cccp{cccp}_relu"] = nn.ReLU(inplace=True)
            channels = width
        if block < 4:
            layers[f"pool{block}"] = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)
        if block == 3:
            layers["drop"] = nn.Dropout(NIN_DROPOUT)
    backbone = nn.Sequential(layers)
    for m in backbone.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return backbone, channels


def build_nin(cfg: ModelConfig, num_classes: int) -> CAMNet:
    """NIN (pool=gap, the paper's row) or NIN-GMP: the CAM at cccp7 (6x6 at 224 px)."""
    backbone, channels = _backbone(cfg.width_mult)
    return CAMNet(
        backbone,
        channels,
        num_classes,
        pool=cfg.pool,
        head_channels=0,
        dropout=cfg.dropout or 0.0,
    )
