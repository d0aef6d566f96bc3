"""Networks of a user's own, for model=module (model._target_=any_nets.SmallNet): importable
because pytest puts tests/ on sys.path."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SmallNet(nn.Module):
    """conv -> ReLU -> conv -> ReLU (the feature map `body`), GAP by `mean`, dropout, `head`."""

    def __init__(self, num_classes: int, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
        )
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.drop(self.body(x).mean(dim=(2, 3))))


class BranchyNet(SmallNet):
    """SmallNet with control flow on a tensor's value: torch.fx cannot trace it, so its layers
    must be named."""

    def forward(self, x: Tensor) -> Tensor:
        f = self.body(x)
        if f.sum() > -1.0:  # always true: f >= 0 after the ReLU
            f = f * 1.0
        return self.head(f.mean(dim=(2, 3)))


class TwoLayerHead(SmallNet):
    """A non-linear layer between the pooling and the last linear layer: no CAM."""

    def __init__(self, num_classes: int, width: int = 8) -> None:
        super().__init__(num_classes, width)
        self.hidden = nn.Linear(2 * width, 2 * width)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(torch.relu(self.hidden(self.body(x).mean(dim=(2, 3)))))


def not_a_module(num_classes: int) -> int:
    return num_classes
