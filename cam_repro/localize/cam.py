"""Class activation maps (Zhou et al. 2016, eq. 2) and the Backprop saliency baseline.

For a network whose last conv maps f_k(x, y) are globally pooled and fed to one linear layer, the
class activation map of class c is M_c(x, y) = sum_k w_k^c f_k(x, y). With GAP the class score is
exactly S_c = mean_xy M_c(x, y) + b_c.

Any network works that has `features(x)` (the last conv maps), `logits_from_features(f)` (global
pooling and the linear layer) and that linear layer as `classifier`: the zoo's CAMNet
(cam_repro.models.heads), or a classifier of one's own with those three names. Any other
classifier that ends in global pooling and one linear layer (a torchvision ResNet, EfficientNet,
ConvNeXt, ..., or one's own module) is seen as one through `cam_repro.localize.layers`: its two
layers found on its graph, or named (`layers=(features, linear)`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cam_repro.localize.layer_net import ChannelNorm, LayerCAMNet
from cam_repro.localize.layers import CAMUnavailableError, class_scores, global_pool
from cam_repro.runtime.distributed import unwrap


@runtime_checkable
class CAMNetwork(Protocol):
    """A network that ends in global pooling and one linear layer, split where CAM needs it."""

    classifier: nn.Module  # nn.Linear (C, K): w_k^c

    def features(self, x: Tensor) -> Tensor: ...  # images (B, 3, H, W) -> f_k (B, K, h, w)

    def logits_from_features(self, features: Tensor) -> Tensor: ...  # (B, K, h, w) -> (B, C)


def class_activation_maps(features: Tensor, weight: Tensor, class_idx: Tensor) -> Tensor:
    """CAMs M_c = sum_k w_k^c f_k for the classes in `class_idx`.

    features (B, K, h, w), weight (C, K) (the linear layer's), class_idx (B, k) long
    -> (B, k, h, w). No bias: the score is mean(M_c) + b_c for GAP.
    """
    if features.dim() != 4:
        raise ValueError(f"features must be (B, K, h, w), got shape {tuple(features.shape)}")
    if weight.dim() != 2 or weight.shape[1] != features.shape[1]:
        raise ValueError(
            f"weight must be (C, K={features.shape[1]}), got shape {tuple(weight.shape)}"
        )
    if class_idx.dim() != 2 or class_idx.shape[0] != features.shape[0]:
        raise ValueError(
            f"class_idx must be (B={features.shape[0]}, k), got shape {tuple(class_idx.shape)}"
        )
    if class_idx.numel() and (class_idx.min() < 0 or class_idx.max() >= weight.shape[0]):
        raise ValueError(f"class_idx must lie in [0, {weight.shape[0]})")
    w = weight[class_idx.long()]  # (B, k, K)
    return torch.einsum("bjk,bkhw->bjhw", w.to(features.dtype), features)


@dataclass
class CAMOutput:
    """One forward pass: logits (B, C), classes (B, k), their softmax scores (B, k), CAMs."""

    logits: Tensor
    classes: Tensor
    scores: Tensor
    cams: Tensor  # (B, k, h, w), at the resolution of the last conv map


@dataclass
class LinearHead:
    """One linear layer over globally pooled last conv maps: the network's own classifier, or a
    linear classifier fitted on its pooled features (the paper's SVM on GAP features, Section 4).

    Either way the class activation map of class c is M_c = sum_k w_k^c f_k with this head's
    weights (`cams`). With `l2_normalize`, the pooled vector is scaled to unit length before the
    layer (as the classifier was fitted): a positive factor per image, so the map's shape, and
    every box the paper's rule draws from it, is the same as without. With a LayerNorm between
    pooling and layer (`norm`, ConvNeXt's head), the maps are those of the centred, scaled
    features and the weights times the norm's gamma, so that still, with GAP, the scores are
    mean(M_c) + `map_bias`.
    """

    weight: Tensor  # (C, K)
    bias: Tensor  # (C,)
    pool: str = "gap"  # gap (mean) | gmp (max): how f_k becomes the layer's input
    l2_normalize: bool = False
    norm: ChannelNorm | None = None

    @classmethod
    def of_network(cls, model: nn.Module) -> LinearHead:
        """The head of a CAM network: its last linear layer, its pooling, its LayerNorm."""
        net = cam_model(model)
        pool = getattr(getattr(net, "pool", None), "kind", "gap")
        norm = getattr(net, "head_norm", None)
        layer = net.classifier
        return cls(layer.weight.detach(), _bias(layer), pool, norm=norm)

    def pooled(self, features: Tensor) -> Tensor:
        """(B, K, h, w) -> (B, K): the classifier's input."""
        x = global_pool(features, self.pool)
        if self.norm is not None:
            x = self.norm(x)
        return F.normalize(x, dim=1) if self.l2_normalize else x

    def logits(self, features: Tensor) -> Tensor:
        """(B, K, h, w) -> class scores (B, C)."""
        x = self.pooled(features.float())
        return x @ self.weight.float().T + self.bias.float()

    @property
    def map_bias(self) -> Tensor:
        """b_c such that, with GAP, the scores are mean(M_c) + b_c (the layer's bias; with a
        LayerNorm, plus the layer's weights times its beta)."""
        bias = self.bias.float()
        if self.norm is not None and self.norm.bias is not None:
            bias = bias + self.weight.float() @ self.norm.bias.float()
        return bias

    def cams(self, features: Tensor, class_idx: Tensor) -> Tensor:
        """(B, K, h, w), classes (B, k) -> CAMs (B, k, h, w) from this head's weights."""
        features = features.float()
        weight = self.weight.float()
        if self.norm is not None:
            features = self.norm.centred(features, global_pool(features, self.pool))
            if self.norm.weight is not None:
                weight = weight * self.norm.weight.float()
        return class_activation_maps(features, weight, class_idx)


def _bias(layer: nn.Linear) -> Tensor:
    if layer.bias is None:
        return torch.zeros(layer.out_features, device=layer.weight.device)
    return layer.bias.detach()


def cam_model(model: nn.Module, layers: tuple[str, str] | None = None) -> CAMNetwork:
    """`model` as a CAM network: the zoo's CAM networks as they are, any other classifier that
    ends in global pooling and one linear layer through its two layers (found, or `layers` =
    (feature map, linear layer) names); else a one-line CAMUnavailableError that points to
    Grad-CAM and Backprop."""
    net = unwrap(model)
    if layers is None and _is_cam_network(net):
        return net
    refusal = getattr(net, "cam_refusal", None)  # models.anynet.Classifier: found without CAM
    if layers is None and refusal:
        raise CAMUnavailableError(str(refusal), refusal.reason)
    net = getattr(net, "net", net) if refusal else net
    if isinstance(net, LayerCAMNet):
        if layers is None or layers == (net.layers.features, net.layers.classifier):
            return net
        net = net.net
    # One wrapper per network and names, kept on the network: its graph is traced once.
    cache = net.__dict__.setdefault("_cam_networks", {})
    if layers not in cache:
        features, classifier = layers if layers is not None else (None, None)
        try:
            cache[layers] = LayerCAMNet(net, features, classifier)
        except CAMUnavailableError as err:
            cache[layers] = err  # refused once: not traced again at every batch
    found = cache[layers]
    if isinstance(found, CAMUnavailableError):
        raise CAMUnavailableError(str(found), found.reason)
    return found


def _is_cam_network(net: nn.Module) -> bool:
    if isinstance(net, LayerCAMNet):
        return True
    return isinstance(net, CAMNetwork) and isinstance(net.classifier, nn.Linear)


def predict_with_cams(
    model: nn.Module,
    images: Tensor,
    topk: int = 5,
    classes: Tensor | None = None,
    layers: tuple[str, str] | None = None,
) -> CAMOutput:
    """Logits and the CAMs of the top-k classes (or of the given `classes` (B, k)), one pass.

    `model`: a CAM network of the zoo, or any classifier that ends in global pooling and one
    linear layer (a torchvision ResNet, EfficientNet, ConvNeXt, ...), its layers found or named
    by `layers=(feature map, linear layer)`. With GAP, logits = cams.mean((2, 3)) + the head's
    `LinearHead.map_bias` (the linear layer's bias).
    """
    net = cam_model(model, layers)
    features = net.features(images)  # (B, K, h, w)
    logits = net.logits_from_features(features)  # (B, C)
    if classes is None:
        k = min(topk, logits.shape[1])
        classes = logits.topk(k, dim=1).indices  # (B, k), best first
    elif classes.dim() == 1:
        classes = classes[:, None]
    scores = logits.softmax(dim=1).gather(1, classes)
    cams = LinearHead.of_network(net).cams(features, classes).to(features.dtype)
    return CAMOutput(logits=logits, classes=classes, scores=scores, cams=cams)


def upsample_cams(cams: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, k, h, w) -> (B, k, H, W), bilinear (the paper's upsampling to the image)."""
    return F.interpolate(cams, size=size, mode="bilinear", align_corners=False)


def backprop_saliency(model: nn.Module, images: Tensor, classes: Tensor) -> Tensor:
    """The paper's Backprop baseline (Simonyan et al. 2014): |d S_c / d image|, max over colour.

    Works for any classifier. images (B, 3, H, W), classes (B, k) -> saliency (B, k, H, W).
    """
    if classes.dim() == 1:
        classes = classes[:, None]
    maps = []
    for j in range(classes.shape[1]):  # a loop over the k classes, not over images
        x = images.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            logits = class_scores(model(x), unwrap(model))  # a tuple or dict: one line
            score = logits.gather(1, classes[:, j : j + 1]).sum()
            (grad,) = torch.autograd.grad(score, x)
        maps.append(grad.abs().amax(dim=1))  # (B, H, W)
    return torch.stack(maps, dim=1)
