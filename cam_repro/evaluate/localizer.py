"""Localization maps of a batch in the evaluation frame, for cam-eval and cam-visualize.

For every image, the top-k classes and the true class; for each, a localization map (the class
activation map, Grad-CAM's map, the Backprop saliency, or a torch-cam method's map) upsampled
bilinearly to the evaluated image (the frame). Their boxes, peaks and IoUs in the original image:
cam_repro.localize.scoring.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cam_repro.localize.cam import LinearHead, backprop_saliency, cam_model
from cam_repro.localize.gradcam import (
    GradCAMLayerError,
    GradCAMPass,
    grad_cam,
    gradcam_layer,
    shown_layer,
    spatial_layers,
)
from cam_repro.localize.layers import NotSpatialError, class_scores, map_problem
from cam_repro.localize.posthoc import PosthocError, PosthocMaps
from cam_repro.localize.posthoc_methods import PosthocSpec
from cam_repro.runtime.distributed import unwrap
from cam_repro.runtime.errors import ConfigError
from cam_repro.runtime.numeric import check_finite
from cam_repro.runtime.precision import autocast


def ten_crop_windows(full: int, crop: int) -> list[tuple[int, int, bool]]:
    """(top, left, mirrored) of the ten crops of a full x full image: the four corners and the
    centre, then the same five mirrored (the released evaluation's ten crops)."""
    far, mid = full - crop, (full - crop) // 2
    five = [(0, 0), (0, far), (far, 0), (far, far), (mid, mid)]
    return [(t, left, False) for t, left in five] + [(t, left, True) for t, left in five]


class Localizer:
    """Logits of a batch and localization maps for chosen classes, at the input's resolution.
    Use it as a context manager (or call `close()`): a torch-cam method's hooks live until then,
    and are removed on every exit, errors and KeyboardInterrupt included."""

    def __init__(
        self,
        model: nn.Module,
        kind: str,
        amp: str,
        device: torch.device,
        layer: str | None = None,
        posthoc: PosthocSpec | None = None,
    ) -> None:
        """kind: cam | backprop | gradcam | torchcam; `layer`: Grad-CAM's (None: its default);
        `posthoc`: kind=torchcam's method, layer and options (its extractor is made on the
        first batch, whose first image is the probe of its default layer)."""
        if (kind == "torchcam") != (posthoc is not None):
            raise ValueError("a torch-cam method (posthoc=) goes with kind=torchcam, and only")
        self.kind = kind
        self.posthoc = posthoc
        self._posthoc_maps: PosthocMaps | None = None
        self.amp = amp
        self.device = device
        self.net = cam_model(model) if kind == "cam" else unwrap(model)
        # Grad-CAM's layer, checked now (a GradCAMLayerError names an unknown one)
        self.layer = gradcam_layer(self.net, layer) if kind == "gradcam" else None
        # A method's own localization maps (ACoL's fusion of its two branches,
        # models.methods.ACoLNet), used for kind=cam instead of the linear head's CAM
        self.fused = getattr(self.net, "localization_maps", None) if kind == "cam" else None
        # w_k^c of the maps: the network's own last layer (one implementation with the linear
        # classifiers that cam-features fits on its pooled features)
        own = kind == "cam" and self.fused is None
        self.head = LinearHead.of_network(self.net) if own else None
        self._features: Tensor | None = None  # the last batch's f_k, between logits and maps
        self._gradcam: tuple[Tensor, GradCAMPass] | None = None  # Grad-CAM: its pass, kept

    def __enter__(self) -> Localizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove a torch-cam method's hooks (nothing to do for the other kinds)."""
        self._gradcam = None
        maps, self._posthoc_maps = self._posthoc_maps, None
        if maps is not None:
            maps.close()

    def torchcam(self, x: Tensor) -> PosthocMaps:
        """kind=torchcam's extractor, made on the first call (x[:1] the probe of its default
        layer), its hooks on until `close()`."""
        if self._posthoc_maps is None:
            assert self.posthoc is not None
            self._posthoc_maps = PosthocMaps(self.net, self.posthoc, x[:1])
        return self._posthoc_maps

    def logits(self, x: Tensor) -> Tensor:
        if self.kind == "torchcam":  # float32; the pass is kept for the maps
            return self.torchcam(x).logits(x)
        if self.kind == "gradcam":  # one pass gives the scores and, kept, the maps (float32)
            grad_pass = GradCAMPass(self.net, x.float(), self.layer)
            self._gradcam = (x, grad_pass)
            return grad_pass.logits.float()
        with torch.no_grad(), autocast(self.device, self.amp):
            if self.kind == "cam":
                self._features = self.net.features(x)  # (B, K, h, w)
                out = self.net.logits_from_features(self._features)
            else:
                out = class_scores(self.net(x), self.net)
        return out.float()

    @property
    def features(self) -> Tensor | None:
        """The last conv maps f_k (B, K, h, w) of the last `logits` call (CAM only), in the
        forward pass's precision."""
        return self._features

    def raw_maps(self, x: Tensor, classes: Tensor) -> Tensor:
        """(B, j) classes -> (B, j, h, w): CAMs at the last conv map's size (a network with its
        own `localization_maps(x, classes)`, ACoL's: those), Grad-CAM's maps at its layer's, or
        saliency (S x S). Maps that cannot localize (1x1: whole-image boxes) are
        refused in one line (`check_localizes`)."""
        return check_localizes(self._raw_maps(x, classes), self, x)

    def _raw_maps(self, x: Tensor, classes: Tensor) -> Tensor:
        if self.kind == "torchcam":
            return self.torchcam(x).maps(x, classes)
        if self.kind == "cam" and self.fused is not None:
            with torch.no_grad(), autocast(self.device, self.amp):
                return self.fused(x, classes).float()
        if self.kind == "cam":
            assert self._features is not None and self.head is not None, "logits() first"
            with torch.no_grad():
                return self.head.cams(self._features, classes)
        if self.kind == "gradcam":  # from `logits(x)`'s pass (freed), else a pass of its own
            kept, self._gradcam = self._gradcam, None
            if kept is not None and kept[0] is x:
                return kept[1].maps(classes)
            return grad_cam(self.net, x.float(), classes, self.layer)
        return backprop_saliency(self.net, x.float(), classes).float()


def posthoc_cost(model: nn.Module, spec: PosthocSpec, image_size: int) -> dict[str, object]:
    """A torch-cam method checked on `model` before a run (its layer: a one-line ConfigError
    naming torchcam.layer; a layer that cannot localize, a network the method cannot run on:
    one line), on a probe image of the evaluated size; its hooks removed again. Returns the cost
    of one map (metrics.json's posthoc_cost)."""
    net = unwrap(model)
    device = next(net.parameters()).device
    probe = torch.zeros(1, 3, image_size, image_size, device=device)
    try:
        with PosthocMaps(net, spec, probe) as maps:
            maps.logits(probe)
            forward, backward = maps.passes_per_map() or (0, 0)
            return {
                "layer": maps.shown_layer,
                "channels": maps.channels,
                "forward_passes_per_map": forward,
                "backward_passes_per_map": backward,
            }
    except GradCAMLayerError as err:
        raise ConfigError(f"torchcam.layer: {err}") from None
    except PosthocError as err:
        raise ConfigError(f"torchcam.method={spec.method}: {err}") from None


def hooked_layer(spec: PosthocSpec | None, cost: dict[str, object] | None) -> PosthocSpec | None:
    """`spec` with the layer `posthoc_cost` found and hooked (its default resolved once, on the
    checked probe), so that the run hooks the layer metrics.json's posthoc_cost names."""
    if spec is None or cost is None:
        return spec
    return dataclasses.replace(spec, layer=str(cost["layer"]))


def posthoc_cost_line(spec: PosthocSpec, cost: dict[str, object], topk: int) -> str:
    """The log line that states a torch-cam method's cost before a run."""
    forward, backward = cost["forward_passes_per_map"], cost["backward_passes_per_map"]
    passes = [f"{forward} forward" if forward else "", f"{backward} backward" if backward else ""]
    said = " and ".join(p for p in passes if p) or "no"
    return (
        f"{spec.info.title} at layer {cost['layer']!r} ({cost['channels']} channels): {said} "
        f"passes of the network per map, beyond the batch's own forward pass; up to {topk + 1} "
        f"maps per image (topk={topk} and the true class, each distinct class once)"
    )


def check_localizes(maps: Tensor, loc: Localizer, x: Tensor) -> Tensor:
    """`maps` if they can localize (localize.layers.map_problem: (B, k, h, w), h and w > 1), else
    one line naming the localizer, the maps' size and what works: larger images (the size at
    which the maps reach 2x2), or, for CAM, Grad-CAM on a layer that is spatial at this size."""
    problem = map_problem(maps)
    if problem is None:
        return maps
    size = x.shape[-1]
    title = loc.posthoc.info.title if loc.posthoc else "torch-cam"
    what = {"cam": "class activation maps", "gradcam": "Grad-CAM maps", "backprop": "saliency",
            "torchcam": f"{title} maps"}  # fmt: skip
    side = min(maps.shape[-2:]) if maps.dim() == 4 else 1
    need = -(-2 * size // max(side, 1))  # the maps' stride times 2
    advice = f"use larger images (data.image_size >= {need}, and data.resize_size)"
    if loc.kind == "cam":
        working = spatial_layers(loc.net, x[:1].float())
        if working:
            advice += f", or localizer=gradcam gradcam_layer={shown_layer(loc.net, working[-1])}"
    raise NotSpatialError(f"the {what[loc.kind]} are {problem} ({size}x{size} images); {advice}")


def _upsample(maps: Tensor, size: int, mode: str) -> Tensor:
    if maps.shape[-1] == size and maps.shape[-2] == size:
        return maps
    return F.interpolate(maps, size=(size, size), mode=mode, align_corners=False)


# The columns of a batch's chosen classes and maps, named once: the top-k classes, best first,
# then the true class (GT-known). Every reader of BatchMaps / RawMaps / their scores uses these.
TOPK = slice(None, -1)
TRUE = -1


@dataclass
class BatchMaps:
    """One batch's outputs: logits, the chosen classes and their maps in the evaluation frame."""

    logits: Tensor  # (B, C)
    classes: Tensor  # (B, k + 1): the top-k, then the true class
    maps: Tensor  # (B, k + 1, F, F): bilinear (the paper's upsampling), F the frame's side
    wsol_maps: Tensor | None  # (B, F, F): the true class's map for MaxBoxAccV2/PxAP
    # (B, K, h, w): the last conv maps f_k (CAM, single view), in the forward pass's precision
    features: Tensor | None = None

    def topk_probs(self) -> Tensor:
        """(B, k): the softmax probability of each top-k class."""
        return self.logits.softmax(dim=1).gather(1, self.classes[:, TOPK])

    def to_host(self) -> tuple[BatchMaps, Callable[[], None]]:
        """This batch's logits, classes and maps copied to (pinned) CPU memory without blocking,
        and a `wait()` that returns once they have arrived (a CUDA event: only this batch's work
        is waited for, not what the device runs after it). On the CPU: itself, nothing to wait.
        (The features stay behind.)"""
        if self.maps.device.type != "cuda":
            return self, lambda: None

        def host(t: Tensor | None) -> Tensor | None:
            if t is None:
                return None
            out = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
            return out.copy_(t, non_blocking=True)

        copied = BatchMaps(host(self.logits), host(self.classes), host(self.maps),
                           host(self.wsol_maps))  # fmt: skip
        ready = torch.cuda.Event()
        ready.record()
        return copied, ready.synchronize


def check_batch(out: BatchMaps | RawMaps, where: str, amp: str) -> None:
    """Stop at a NaN or infinite logit or map (a metric from them would be silently wrong). On
    RawMaps, the maps before upsampling: a bilinear map is finite iff the map it comes from is
    (each value a convex combination of raw values)."""
    hint = "; runtime.amp=fp16 may overflow: try bf16 or none" if amp == "fp16" else ""
    maps = out.raw if isinstance(out, RawMaps) else out.maps
    check_finite({"logits": out.logits, "class activation maps": maps}, where, hint)


@dataclass
class RawMaps:
    """One batch's forward pass: logits, the chosen classes and their maps at the network's
    resolution (CAM: the last conv map's size), before the upsampling to the frame."""

    logits: Tensor  # (B, C)
    classes: Tensor  # (B, k + 1): the top-k, then the true class
    raw: Tensor  # (B, k + 1, h, w)
    frame: int  # F, the evaluated image's side
    wsol: bool  # also the true class's bicubic map (BatchMaps.wsol_maps)
    features: Tensor | None = None

    def upsampled(self) -> BatchMaps:
        """The maps in the evaluation frame (bilinear; the true class's bicubic too, if wsol),
        computed where the raw maps are."""
        maps = _upsample(self.raw, self.frame, "bilinear")
        wsol_maps = None
        if self.wsol:  # the true class's column alone, bicubic
            wsol_maps = _upsample(self.raw[:, TRUE:], self.frame, "bicubic")[:, 0]
        return BatchMaps(self.logits, self.classes, maps, wsol_maps, self.features)


def forward_maps(
    loc: Localizer, x: Tensor, labels: Tensor, topk: int, wsol: bool = True
) -> RawMaps:
    """A single view's forward pass: x (B, 3, S, S) normalised -> logits, the top-k classes and
    the true class, and their maps at the network's resolution."""
    logits = loc.logits(x)
    k = min(topk, logits.shape[1])
    classes = torch.cat([logits.topk(k, dim=1).indices, labels[:, None]], dim=1)
    return RawMaps(logits, classes, loc.raw_maps(x, classes), x.shape[-1], wsol, loc.features)


def localize_batch(
    loc: Localizer, x: Tensor, labels: Tensor, topk: int, wsol: bool = True
) -> BatchMaps:
    """A single view: x (B, 3, S, S) normalised. With `wsol`, also the true class's map resized
    bicubically, as wsolevaluation resizes it (the paper's maps are bilinear)."""
    return forward_maps(loc, x, labels, topk, wsol).upsampled()


def localize_ten_crop(loc: Localizer, x: Tensor, labels: Tensor, topk: int, crop: int) -> BatchMaps:
    """Ten crops of x (B, 3, R, R): logits averaged; each crop's maps (upsampled to the crop,
    mirrored back) averaged where the crops overlap, so the frame is the R x R image."""
    b, full = x.shape[0], x.shape[-1]
    windows = ten_crop_windows(full, crop)
    views = []
    for top, left, mirrored in windows:
        view = x[..., top : top + crop, left : left + crop]
        views.append(view.flip(-1) if mirrored else view)
    stacked = torch.cat(views)  # (10 B, 3, S, S), crop-major
    logits = loc.logits(stacked).view(len(windows), b, -1).mean(dim=0)
    k = min(topk, logits.shape[1])
    classes = torch.cat([logits.topk(k, dim=1).indices, labels[:, None]], dim=1)
    raw = loc.raw_maps(stacked, classes.repeat(len(windows), 1))
    crops = _upsample(raw, crop, "bilinear").view(len(windows), b, classes.shape[1], crop, crop)
    total = torch.zeros(b, classes.shape[1], full, full, device=x.device)
    count = torch.zeros(full, full, device=x.device)
    for (top, left, mirrored), m in zip(windows, crops, strict=True):
        total[..., top : top + crop, left : left + crop] += m.flip(-1) if mirrored else m
        count[top : top + crop, left : left + crop] += 1
    maps = total / count.clamp(min=1)
    return BatchMaps(logits, classes, maps, maps[:, TRUE])
