"""Any classifier that ends in global pooling and one linear layer, seen as a CAM network
(`LayerCAMNet`: its feature map, its head applied to any map), with ConvNeXt's LayerNorm between
pooling and linear layer folded in per image (`ChannelNorm`).

The layers come from `localize.layers` (found on the graph, or named and checked); a network fx
cannot trace has its head checked on the first batch: the scores from the maps must equal the
network's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cam_repro.localize.layers import (
    CAMLayers,
    CAMUnavailableError,
    analyse_layers,
    class_scores,
    features_module,
    global_pool,
    other_localizers,
    refused,
)


@dataclass(frozen=True)
class ChannelNorm:
    """A LayerNorm over the channels of the pooled vector (ConvNeXt's head): per image an affine
    map, gamma * (v - mean(v)) / sqrt(var(v) + eps) + beta."""

    weight: Tensor | None
    bias: Tensor | None
    eps: float

    def __call__(self, pooled: Tensor) -> Tensor:
        return F.layer_norm(pooled, pooled.shape[-1:], self.weight, self.bias, self.eps)

    def centred(self, features: Tensor, pooled: Tensor) -> Tensor:
        """The maps with the image's channel mean taken off and divided by its spread, so that
        their pooling, times gamma plus beta, is this norm of the pooled vector."""
        mu = pooled.mean(dim=1)
        sigma = torch.sqrt(pooled.var(dim=1, unbiased=False) + self.eps)
        return (features - mu[:, None, None, None]) / sigma[:, None, None, None]


def channel_norm(module: nn.Module) -> ChannelNorm:
    """The `ChannelNorm` of a LayerNorm module (its weights detached: the maps' head is fixed)."""
    weight = getattr(module, "weight", None)
    bias = getattr(module, "bias", None)
    return ChannelNorm(
        None if weight is None else weight.detach(),
        None if bias is None else bias.detach(),
        float(getattr(module, "eps", 1e-5)),
    )


class PoolKind:
    """The `.pool.kind` that a CAM network's head reads (as the zoo's GlobalPool has it)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind


class LayerCAMNet(nn.Module):
    """Any classifier that ends in global pooling and one linear layer, as a CAM network:
    `features(x)` gives the named feature map, `logits_from_features(f)` pools it and applies the
    head, `classifier` is the linear layer; `forward` is the network's own.

    The wrapped network is `self.net` (so its parameters are named `net.<its names>`).
    """

    def __init__(
        self,
        net: nn.Module,
        features: str | None = None,
        classifier: str | None = None,
        pool: str | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        try:
            layers, g = analyse_layers(net, features, classifier)
        except CAMUnavailableError as err:
            raise refused(net, err) from None
        if g is None and pool is not None:  # untraced: the caller says how it pools
            layers = CAMLayers(layers.features, layers.classifier, pool)
        self.layers = layers
        self.pool = PoolKind(layers.pool)
        # The graph up to the feature map (fx), kept out of the module tree: it shares the
        # network's submodules, and its own names would double the state dict.
        self.__dict__["_extract"] = None if g is None else features_module(net, g, layers.features)
        self._checked = g is not None  # an untraced head is checked on the first batch

    @property
    def classifier(self) -> nn.Module:
        return self.net.get_submodule(self.layers.classifier)

    @property
    def head_norm(self) -> ChannelNorm | None:
        if self.layers.norm is None:
            return None
        return channel_norm(self.net.get_submodule(self.layers.norm))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def features(self, x: Tensor) -> Tensor:
        """Images (B, 3, H, W) -> the feature map (B, K, h, w) that the global pooling reads."""
        extract = self.__dict__["_extract"]
        if extract is not None:
            return extract(x)
        captured: list[Tensor] = []
        module = self.net.get_submodule(self.layers.features)
        handle = module.register_forward_hook(lambda _m, _i, out: captured.append(out))
        try:
            scores = class_scores(self.net(x), self.net)
        finally:
            handle.remove()
        if len(captured) != 1 or not isinstance(captured[0], Tensor) or captured[0].dim() != 4:
            raise CAMUnavailableError(
                f"{type(self.net).__name__}: features layer {self.layers.features!r} must run "
                f"once per forward pass and give a (B, K, h, w) map; {other_localizers(self.net)}"
            )
        if not self._checked:
            self._check_head(captured[0], scores)
        return captured[0]

    def _check_head(self, features: Tensor, scores: Tensor) -> None:
        with torch.no_grad():
            mine = self.logits_from_features(features.detach()).float()
        theirs = scores.detach().float()
        scale = float(theirs.abs().max().clamp_min(1.0))
        if mine.shape != theirs.shape or not torch.allclose(mine, theirs, atol=1e-3 * scale):
            raise CAMUnavailableError(
                f"{type(self.net).__name__}: its scores are not the {self.layers.classifier} "
                f"layer applied to the global {self.layers.pool} of {self.layers.features}, so "
                f"these layers give no class activation map; {other_localizers(self.net)}"
            )
        self._checked = True

    def logits_from_features(self, features: Tensor) -> Tensor:
        """Feature map (B, K, h, w) -> class scores (B, C): pooling, [LayerNorm], linear layer."""
        pooled = global_pool(features, self.layers.pool)
        norm = self.head_norm
        if norm is not None:
            pooled = norm(pooled)
        linear = self.classifier
        return F.linear(pooled, linear.weight, getattr(linear, "bias", None))


__all__ = ["ChannelNorm", "LayerCAMNet", "PoolKind", "channel_norm"]
