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


class TupleNet(SmallNet):
    """Returns (logits, pooled features): not one tensor of scores."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        pooled = self.body(x).mean(dim=(2, 3))
        return self.head(pooled), pooled


class DictNet(SmallNet):
    """Returns {"logits": ...}: not one tensor of scores."""

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"logits": super().forward(x)}


class BranchyTupleNet(SmallNet):
    """Untraceable by torch.fx (control flow on a value) and returns a tuple: found only when
    it runs."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.body(x)
        if f.sum() > -1.0:  # always true: f >= 0 after the ReLU
            f = f * 1.0
        return self.head(f.mean(dim=(2, 3))), f


class MLPNet(nn.Module):
    """No conv at all: no CAM, no Grad-CAM; Backprop works."""

    def __init__(self, num_classes: int, side: int = 8) -> None:
        super().__init__()
        self.flat = nn.Flatten()
        self.hidden = nn.Linear(3 * side * side, 16)
        self.head = nn.Linear(16, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(torch.relu(self.hidden(self.flat(x))))
