"""The WSOL methods' network parts: ADL's dropout layers, ACoL's second branch, SPG's auxiliary
branches, on a zoo CAM network (`build_model(..., method=...)` applies them with `apply_method`).

HaS and CutMix change only the inputs and labels (train/methods.py); CAM changes nothing. The
mechanisms are pure functions here, each testable on its own: `minmax_normalize`, ADL's
`adl_attention` / `adl_drop_mask` / `adl_importance_map`, ACoL's `acol_erase`, SPG's `spg_mask` /
`spg_mask_loss` / `spg_aux_loss`. The defaults and layouts follow wsolevaluation (Choe et al., CVPR
2020, `wsol/method/` and its backbones); docs/methods.md says what differs from each paper.

A network with training-time auxiliary losses (ACoL, SPG) has `method_aux = True` and
`forward(x, labels=None)`: in training mode with labels it returns `(logits, aux_loss)`, else the
logits. ADL adds no parameters or buffers (its layers act through forward hooks), so an ADL
network's state dict is the plain network's.
"""

from __future__ import annotations

import copy
import difflib
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn

from cam_repro.localize.cam import class_activation_maps
from cam_repro.models.config import ModelConfig, model_config
from cam_repro.models.heads import CAMNet, init_classifier, init_head_conv
from cam_repro.models.method_config import MethodConfig, method_config, method_problem
from cam_repro.runtime.errors import ConfigError

# SPG's fallback (wsolevaluation's `mask_fg`): an image with fewer confident foreground pixels
# takes those above 0.7 of its own maximum.
SPG_MIN_FOREGROUND = 30
SPG_FALLBACK = 0.7


# --- the mechanisms -------------------------------------------------------------------------


def minmax_normalize(maps: Tensor) -> Tensor:
    """Each (h, w) map of `maps` (..., h, w) scaled to [0, 1] by its own min and max; a constant
    map becomes 0 (not NaN)."""
    flat = maps.flatten(-2)
    low = flat.amin(dim=-1)[..., None, None]
    span = flat.amax(dim=-1)[..., None, None] - low
    return (maps - low) / torch.where(span > 0, span, torch.ones_like(span))


def adl_attention(x: Tensor) -> Tensor:
    """ADL's self-attention map: the channel mean of the features (B, C, h, w) -> (B, 1, h, w)."""
    return x.mean(dim=1, keepdim=True)


def adl_drop_mask(attention: Tensor, threshold: float) -> Tensor:
    """ADL's drop mask (B, 1, h, w): 1 where the attention is below `threshold` times the image's
    maximum, 0 where it is at or above (the most discriminative part, dropped)."""
    peak = attention.flatten(1).amax(dim=1).view(-1, *([1] * (attention.dim() - 1)))
    return (attention < threshold * peak).to(attention.dtype)


def adl_importance_map(attention: Tensor) -> Tensor:
    """ADL's importance map: the sigmoid of the attention (highlights the discriminative part)."""
    return torch.sigmoid(attention)


class ADL(nn.Module):
    """Attention-based Dropout Layer (Choe & Shim, CVPR 2019): in training, the features times
    the drop mask with probability `drop_rate`, else times the importance map; one draw per
    forward pass (per batch, as wsolevaluation), from torch's global RNG (`torch.rand`), so a
    seeded run repeats and resumes exactly. Identity in eval mode (no draw). No parameters or
    buffers."""

    def __init__(self, drop_rate: float = 0.75, threshold: float = 0.9) -> None:
        super().__init__()
        if not (0 <= drop_rate <= 1 and 0 <= threshold <= 1):
            raise ValueError(f"ADL needs drop_rate and threshold in [0, 1], got {drop_rate}, "
                             f"{threshold}")  # fmt: skip
        self.drop_rate = drop_rate
        self.threshold = threshold

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        attention = adl_attention(x)
        drop = bool(torch.rand(()) < self.drop_rate)  # P(drop) = drop_rate exactly: U[0, 1)
        chosen = adl_drop_mask(attention, self.threshold) if drop else adl_importance_map(attention)
        return x * chosen

    def after(self, module: nn.Module, inputs: Any, output: Tensor) -> Tensor:
        """A forward hook: this layer applied to `module`'s output. A bound method, so a
        deep copy of the network hooks the copied layer."""
        return self(output)

    def extra_repr(self) -> str:
        return f"drop_rate={self.drop_rate}, threshold={self.threshold}"


def acol_erase(features: Tensor, cam_a: Tensor, threshold: float) -> Tensor:
    """ACoL's erasing: `features` (B, K, h, w) times 0 where the first branch's map of the class,
    min-max normalised HERE (`cam_a` is the raw map, (B, 1, h, w) or (B, h, w)), is >= `threshold`,
    times 1 elsewhere."""
    if cam_a.dim() == 3:
        cam_a = cam_a[:, None]
    keep = minmax_normalize(cam_a.detach().float()) < threshold
    return features * keep.to(features.dtype)


def spg_mask(
    attention: Tensor, fg: float, bg: float, min_foreground: int = SPG_MIN_FOREGROUND
) -> Tensor:
    """SPG's self-produced mask of `attention` (B, 1, H, W) in [0, 1]: 1 (foreground) where it is
    > `fg`, 0 (background) where it is < `bg` (background wins where both), -1 (ignored)
    elsewhere. An image with fewer than `min_foreground` pixels > `fg` takes as foreground its
    pixels > 0.7 times its own maximum instead (wsolevaluation's rule)."""
    flat = attention.detach().flatten(1)
    fg_mask = flat > fg
    few = fg_mask.sum(dim=1) < min_foreground
    fallback = flat > SPG_FALLBACK * flat.amax(dim=1, keepdim=True)
    fg_mask = torch.where(few[:, None], fallback, fg_mask)
    mask = torch.full_like(flat, -1.0)
    mask[fg_mask] = 1.0
    mask[flat < bg] = 0.0
    return mask.view_as(attention)


def spg_mask_loss(logits: Tensor, mask: Tensor) -> Tensor:
    """Binary cross-entropy (with logits, float32) of `logits` against `mask`'s 0/1 pixels,
    averaged over the pixels not ignored (-1); 0 (still on the graph) when every pixel is."""
    logits = logits.float().reshape(-1)
    mask = mask.reshape(-1)
    used = mask >= 0
    if not bool(used.any()):
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits[used], mask[used].float())


def spg_aux_loss(
    attention: Tensor,
    logits_b1: Tensor,
    logits_b2: Tensor,
    logits_c: Tensor,
    thresholds: Sequence[Sequence[float]],
) -> Tensor:
    """SPG's three mask losses, all maps (B, 1, H, W) at one size: the CAM's `attention` of the
    true class ([0, 1]) guides B2 (thresholds[0]); B2's sigmoid guides B1 (thresholds[1]); the
    mean of B1's and B2's sigmoids guides C (thresholds[2]). The masks carry no gradient."""
    (fg1, bg1), (fg2, bg2), (fg3, bg3) = thresholds
    b1 = torch.sigmoid(logits_b1.detach().float())
    b2 = torch.sigmoid(logits_b2.detach().float())
    mask1 = spg_mask(attention, fg1, bg1)
    mask2 = spg_mask(b2, fg2, bg2)
    mask3 = spg_mask((b1 + b2) / 2, fg3, bg3)
    return (
        spg_mask_loss(logits_b2, mask1)
        + spg_mask_loss(logits_b1, mask2)
        + spg_mask_loss(logits_c, mask3)
    )


# --- the networks ---------------------------------------------------------------------------


def _adopt(new: CAMNet, net: CAMNet) -> None:
    """`new` (a CAMNet subclass, nn.Module-initialised) takes `net`'s layers under the same
    names, so the state dict keys of the plain network are kept."""
    for name, child in net.named_children():
        setattr(new, name, child)
    new.train(net.training)


def _class_maps(features: Tensor, linear: nn.Linear, classes: Tensor) -> Tensor:
    """CAMs (B, j, h, w), float32, of `classes` (B, j) from the head `linear`, no gradient."""
    return class_activation_maps(features.detach().float(), linear.weight.detach().float(), classes)


def _fresh_head(head: nn.Module) -> nn.Module:
    """A copy of CAMNet's added conv (+ ReLU), initialised anew as CAMNet initialises it;
    identity stays identity."""
    fresh = copy.deepcopy(head)
    for m in fresh.modules():
        if isinstance(m, nn.Conv2d):
            init_head_conv(m)
    return fresh


def _fresh_classifier(linear: nn.Linear, spec: ModelConfig) -> nn.Linear:
    """A linear layer of `linear`'s shape, initialised as the zoo initialises the network's own
    (models/heads.py's N(0, 0.01); tiny: torch's default; the original ResNet-50: torch's
    default weight; the original GoogLeNet: a truncated N(0, 0.01)), zero bias but for tiny."""
    fresh = nn.Linear(linear.in_features, linear.out_features).to(linear.weight.device)
    if spec.arch == "tiny":
        return fresh  # PyTorch's default, as models/tiny.py resets it
    with torch.no_grad():
        if spec.arch == "resnet50" and not spec.modified:
            nn.init.kaiming_uniform_(fresh.weight, a=math.sqrt(5))
            nn.init.zeros_(fresh.bias)
        elif spec.arch == "googlenet" and not spec.modified:
            nn.init.trunc_normal_(fresh.weight, mean=0.0, std=0.01, a=-2, b=2)
            nn.init.zeros_(fresh.bias)
        else:
            init_classifier(fresh)
    return fresh


class ACoLNet(CAMNet):
    """ACoL (Zhang et al., CVPR 2018) on a zoo CAM network: branch A is the network's own head
    (`head`, `classifier`: `features(x)`, `logits_from_features` and every CAM of it are
    branch A's), branch B a fresh copy of it (`head_b`, `classifier_b`) that sees the backbone's
    features (the heads' shared input) with branch A's region of the class erased: where A's
    min-max normalised CAM of the class is >= `threshold` (`acol_erase`).

    Training forward with labels: (logits_A, cross-entropy of branch B's logits); the class is
    the true one. Otherwise: logits_A. The localization map fuses both branches
    (`localization_maps`).
    """

    method_aux = True

    def __init__(self, net: CAMNet, threshold: float, classifier_b: nn.Linear) -> None:
        nn.Module.__init__(self)
        _adopt(self, net)
        self.threshold = threshold
        self.head_b = _fresh_head(net.head)
        self.classifier_b = classifier_b

    def branches(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(logits_A, logits_B) of a batch; branch B's erasure from A's CAM of `labels`, or of
        A's top class when None."""
        base = self.backbone(x)
        features = self.head(base)
        logits = self.logits_from_features(features)
        classes = logits.argmax(dim=1) if labels is None else labels
        cam_a = _class_maps(features, self.classifier, classes[:, None])  # (B, 1, h, w)
        erased = acol_erase(base, cam_a, self.threshold)
        logits_b = self.classifier_b(self.dropout(self.pool(self.head_b(erased))))
        return logits, logits_b

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        if not (self.training and labels is not None):
            return self.logits_from_features(self.features(x))
        logits, logits_b = self.branches(x, labels)
        return logits, F.cross_entropy(logits_b.float(), labels)

    def localization_maps(self, x: Tensor, classes: Tensor) -> Tensor:
        """The fused maps (B, j, h, w), float32, of `classes` (B, j) at the CAM's resolution: for
        each class c, max(normalised CAM_A of c, normalised CAM_B of c), branch B on the
        features with c's own erasure. Recomputes the backbone once (beside the caller's
        logits pass) and branch B once per class column."""
        base = self.backbone(x)
        cam_a = _class_maps(self.head(base), self.classifier, classes)  # (B, j, h, w)
        fused = []
        for j in range(classes.shape[1]):
            features_b = self.head_b(acol_erase(base, cam_a[:, j], self.threshold))
            cam_b = _class_maps(features_b, self.classifier_b, classes[:, j : j + 1])
            fused.append(torch.maximum(minmax_normalize(cam_a[:, j : j + 1]),
                                       minmax_normalize(cam_b)))  # fmt: skip
        return torch.cat(fused, dim=1)


def _conv_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]


class SPGNet(CAMNet):
    """SPG (Zhang et al., ECCV 2018) on a zoo CAM network, in wsolevaluation's layout: B1 and B2
    (conv3x3 + ReLU each) on two backbone taps into a shared conv3x3 + ReLU + conv1x1 to one
    channel (`spg_b1`, `spg_b2`, `spg_shared`), and C (conv3x3 + ReLU + conv1x1 to one channel,
    `spg_c`) on the CAM features. The taps are captured by forward hooks, only in a training
    forward with labels, which returns (logits, `spg_aux_loss` of the maps upsampled bilinearly
    to the input); otherwise the plain CAM network (the branches unused). New layers: Xavier-
    uniform, zero bias (wsolevaluation's init). Widths: B = the deeper tap's channels (at most
    1024), C = min(K, 512), as wsolevaluation's (512 / 1024 for B, 512 for C)."""

    method_aux = True

    def __init__(
        self,
        net: CAMNet,
        taps: tuple[str, str],
        tap_channels: tuple[int, int],
        thresholds: Sequence[Sequence[float]],
    ) -> None:
        nn.Module.__init__(self)
        _adopt(self, net)
        self.taps = taps
        self.thresholds = [list(map(float, pair)) for pair in thresholds]
        width = min(tap_channels[1], 1024)
        channels = self.classifier.in_features
        self.spg_b1 = nn.Sequential(*_conv_relu(tap_channels[0], width))
        self.spg_b2 = nn.Sequential(*_conv_relu(tap_channels[1], width))
        self.spg_shared = nn.Sequential(*_conv_relu(width, width), nn.Conv2d(width, 1, 1))
        c_width = min(channels, 512)
        self.spg_c = nn.Sequential(*_conv_relu(channels, c_width), nn.Conv2d(c_width, 1, 1))
        for part in (self.spg_b1, self.spg_b2, self.spg_shared, self.spg_c):
            for m in part.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.zeros_(m.bias)
        self._captured: dict[str, Tensor] | None = None  # {tap: output} while capturing
        for tap in taps:  # a partial of a bound method: a deep copy hooks the copied network
            self.get_submodule(tap).register_forward_hook(functools.partial(self._capture, tap))

    def _capture(self, tap: str, module: nn.Module, inputs: Any, output: Tensor) -> None:
        """A tap's forward hook: keep its output while a training forward captures."""
        if self._captured is not None:
            self._captured[tap] = output

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        if not (self.training and labels is not None):
            return self.logits_from_features(self.features(x))
        self._captured = captured = {}
        try:
            features = self.features(x)
        finally:
            self._captured = None
        logits = self.logits_from_features(features)
        size = x.shape[-2:]

        def up(m: Tensor) -> Tensor:
            return F.interpolate(m.float(), size=size, mode="bilinear", align_corners=False)

        cam = _class_maps(features, self.classifier, labels[:, None])
        attention = minmax_normalize(up(cam))
        b1 = self.spg_shared(self.spg_b1(captured[self.taps[0]]))
        b2 = self.spg_shared(self.spg_b2(captured[self.taps[1]]))
        c = self.spg_c(features)
        return logits, spg_aux_loss(attention, up(b1), up(b2), up(c), self.thresholds)


# --- where the parts go ---------------------------------------------------------------------


def _indices(seq: nn.Module, kind: type[nn.Module]) -> list[str]:
    return [name for name, m in seq.named_children() if isinstance(m, kind)]


def default_adl_positions(model: nn.Module, arch: str) -> list[str]:
    """ADL's default positions on a zoo CAM network of `arch` (module names), after
    wsolevaluation's: VGG16 after pool3, conv4_3's ReLU and conv5_3's ReLU (found in the module
    list, with or without batch norm); ResNet-50 after layer3's block 0 and layer4's blocks 0
    and 2; GoogLeNet (v1, for their Inception-v3's Mixed_5d, Mixed_6e and the last head conv)
    after inception3b and inception4e (the last blocks of their stages) and after the CAM
    features (the added conv's ReLU; the original: inception5b); tiny after its second max
    pooling, its third conv's ReLU and its last ReLU."""
    backbone = model.get_submodule("backbone")
    if arch in ("tiny", "vgg16"):
        pools = _indices(backbone, nn.MaxPool2d)
        relus = _indices(backbone, nn.ReLU)
        chosen = [pools[1], relus[2], relus[-1]] if arch == "tiny" else [pools[2], relus[9],
                                                                         relus[12]]  # fmt: skip
        return [f"backbone.{i}" for i in chosen]
    if arch == "resnet50":
        return ["backbone.layer3.0", "backbone.layer4.0", "backbone.layer4.2"]
    if arch == "googlenet":
        head = model.get_submodule("head")
        last = "head.1" if isinstance(head, nn.Sequential) else f"backbone.{_last_child(backbone)}"
        return list(dict.fromkeys(["backbone.inception3b", "backbone.inception4e", last]))
    raise ConfigError(f"method=adl has no default positions for arch {arch}; give "
                      "method.adl_positions")  # fmt: skip


def _last_child(module: nn.Module) -> str:
    return [name for name, _ in module.named_children()][-1]


def default_spg_taps(model: nn.Module, arch: str) -> tuple[str, str]:
    """SPG's two backbone taps (B1, B2) on a zoo CAM network of `arch`, after wsolevaluation's:
    VGG16 after conv4_3's and conv5_3's ReLU; ResNet-50 after layer3's block 0 and after layer3;
    GoogLeNet (v1, for their Inception-v3's Mixed_5d + pooling and Mixed_6d) after maxpool3
    (inception3b pooled) and inception4d; tiny after its second and third conv's ReLU."""
    backbone = model.get_submodule("backbone")
    if arch in ("tiny", "vgg16"):
        relus = _indices(backbone, nn.ReLU)
        a, b = (relus[1], relus[2]) if arch == "tiny" else (relus[9], relus[12])
        return f"backbone.{a}", f"backbone.{b}"
    if arch == "resnet50":
        return "backbone.layer3.0", "backbone.layer3"
    if arch == "googlenet":
        return "backbone.maxpool3", "backbone.inception4d"
    raise ConfigError(f"method=spg has no taps for arch {arch}")


def add_adl(model: nn.Module, positions: Sequence[str], drop_rate: float, threshold: float) -> None:
    """ADL layers after the modules named `positions` (forward hooks), registered as
    `model.adl` (so .train()/.eval() reach them; no parameters: the state dict is unchanged). An
    unknown name is a ConfigError naming method.adl_positions and the close matches."""
    names = [name for name, _ in model.named_modules() if name]
    targets = []
    for position in dict.fromkeys(positions):
        if position not in names:
            close = difflib.get_close_matches(position, names, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"method.adl_positions: the network has no module {position!r}{hint}")
        targets.append(model.get_submodule(position))
    layers = nn.ModuleList(ADL(drop_rate, threshold) for _ in targets)
    for layer, target in zip(layers, targets, strict=True):
        target.register_forward_hook(layer.after)
    model.adl = layers


def _channels_at(model: CAMNet, taps: Sequence[str]) -> list[int]:
    """The channels of each tap's output: one small forward pass in eval mode without gradient
    (no statistics updated, no RNG drawn)."""
    seen: dict[str, int] = {}

    def keep(tap: str, module: nn.Module, inputs: Any, output: Tensor) -> None:
        seen[tap] = output.shape[1]  # returns None: the output is left as it is

    handles = [
        model.get_submodule(tap).register_forward_hook(functools.partial(keep, tap)) for tap in taps
    ]
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model.backbone(torch.zeros(1, 3, 64, 64, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return [seen[tap] for tap in taps]


def apply_method(
    model: nn.Module,
    model_cfg: ModelConfig | Mapping[str, Any] | DictConfig,
    method_cfg: MethodConfig | Mapping[str, Any] | DictConfig | None,
) -> nn.Module:
    """`model` (built from `model_cfg`, weights loaded) with the method's parts: ADL layers,
    ACoL's branch B (a new ACoLNet holding the same layers), SPG's branches (a new SPGNet); the
    model itself for CAM, HaS and CutMix. Sets `method` (the name) and `method_aux` on the
    network returned. A method that does not apply: ConfigError (`method_problem`)."""
    spec = model_config(model_cfg)
    m = method_config(method_cfg)
    problem = method_problem(spec, m)
    if problem:
        raise ConfigError(problem)
    if m.name == "adl":
        positions = m.adl_positions or default_adl_positions(model, spec.arch)
        add_adl(model, positions, m.adl_drop_rate, m.adl_threshold)
    elif m.name == "acol":
        assert isinstance(model, CAMNet)
        model = ACoLNet(model, m.acol_threshold, _fresh_classifier(model.classifier, spec))
    elif m.name == "spg":
        assert isinstance(model, CAMNet)
        taps = default_spg_taps(model, spec.arch)
        c1, c2 = _channels_at(model, taps)
        model = SPGNet(model, taps, (c1, c2), m.spg_thresholds)
    model.method = m.name
    model.method_aux = bool(getattr(type(model), "method_aux", False))
    return model
