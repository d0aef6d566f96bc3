"""Grad-CAM (Selvaraju et al., ICCV 2017, eq. 1-2): a localization map for any classifier.

For a layer's activations A^k (B, K, h, w) and the class score y^c before the softmax,
alpha_k^c = mean_xy d y^c / d A^k(x, y) (eq. 1) and the map is L^c = ReLU(sum_k alpha_k^c A^k)
(eq. 2), at the layer's resolution.

On a CAM network (global average pooling and one linear layer, cam_repro.localize.cam) with A the
pooled map f, y^c = sum_k w_k^c mean_xy f_k + b_c, so alpha_k^c = w_k^c / (h w) and
Grad-CAM = ReLU(M_c) / (h w), M_c the class activation map: the same boxes under the paper's rule
wherever the CAM's maximum is positive.

Conventions, and where they differ from common implementations (e.g. pytorch-grad-cam):
- The map is returned raw: ReLU'd, not normalised to [0, 1], not resized to the image. cam-eval
  upsamples it bilinearly to the frame and normalises it by its box rule, as it does CAMs.
- Default layer: a CAM network's own `features(x)` (the map CAM uses; also any classifier that
  ends in global pooling and one linear layer, through cam_repro.localize.layers); any other
  network's last nn.Conv2d (in `named_modules()` order), past its batch norm and activation if
  they follow it (VGG16's relu5_3, MobileNet v3's last Hardswish). The paper uses the last
  convolutional layer.
- Layer names are the unwrapped model's; a wrapped classifier (model=torchvision|module|file,
  parameters under `net.`) also takes its network's own names (`layer4` for `net.layer4`).
- One forward pass per call for all images and classes; class j's gradients for every image come
  from one autograd.grad of the sum over images of y^c_j (images do not interact in eval mode:
  call it on a model in eval mode). Nothing is accumulated in parameters' .grad.
- The activation is taken as a leaf of its own (detached, requiring grad) and the network goes on
  from a copy of it, so an in-place op after the layer (VGG's ReLU(inplace=True) after the conv)
  cannot change what is differentiated, and frozen parameters do not matter. The layers below it
  run without grad: no graph and no saved activations there.
"""

from __future__ import annotations

import threading

import torch
from torch import Tensor, nn

from cam_repro.localize.cam import CAMNetwork, CAMUnavailableError, cam_model
from cam_repro.localize.layers import (
    SUGGEST_BACKPROP,
    NotSpatialError,
    class_scores,
    has_conv,
    map_problem,
)
from cam_repro.runtime.distributed import unwrap
from cam_repro.runtime.errors import CamReproError


class GradCAMLayerError(CamReproError, ValueError):
    """The layer named for Grad-CAM is not a module of the network, or gives no (B, K, h, w) map."""


class GradCAMMapError(GradCAMLayerError, NotSpatialError):
    """Grad-CAM's layer gives no map that can localize (localize.layers.map_problem): a layer
    after the global pooling, one whose output is not a tensor, a map of 1x1 at this input."""


def _candidates(net: nn.Module) -> list[str]:
    """The last few convs and the ReLUs right after them: the usual choices, for error messages."""
    named = list(net.named_modules())
    names = []
    for i, (name, module) in enumerate(named):
        after = named[i - 1][1] if i else None
        if isinstance(module, nn.Conv2d) or (
            isinstance(module, nn.ReLU) and isinstance(after, nn.Conv2d)
        ):
            names.append(name)
    return names[-4:]


def gradcam_layer(model: nn.Module, layer: str | None = None) -> str | None:
    """The module name Grad-CAM differentiates in `model`: `layer` checked, or the default (None:
    a CAM network's `features(x)`). A one-line GradCAMLayerError for an unknown name."""
    net = unwrap(model)
    modules = dict(net.named_modules())
    if layer is not None:
        if layer not in modules and f"net.{layer}" in modules and hasattr(net, "net"):
            layer = f"net.{layer}"  # a wrapped classifier (model=torchvision|module|file)
        if layer not in modules or layer == "":
            inner = getattr(net, "net", net)  # a wrapped classifier: its network's own names
            names = list(dict(inner.named_modules()))
            some = ", ".join(_candidates(inner)) or ", ".join(names[1:5]) or "none"
            raise GradCAMLayerError(
                f"layer {layer!r} is not a module of {type(inner).__name__} (e.g. {some}; all: "
                "model.named_modules())"
            )
        return layer
    if isinstance(net, CAMNetwork) or _has_cam(net):
        return None
    names = list(modules)
    convs = [i for i, n in enumerate(names) if isinstance(modules[n], nn.Conv2d)]
    if not convs:
        inner = getattr(net, "net", net)
        raise GradCAMLayerError(f"{type(inner).__name__}: {SUGGEST_BACKPROP}")
    last = convs[-1]  # then its batch norm and activation, if they follow it
    while last + 1 < len(names) and isinstance(modules[names[last + 1]], nn.BatchNorm2d):
        last += 1
    after = names[last + 1] if last + 1 < len(names) else None
    return after if after is not None and isinstance(modules[after], _ACTIVATIONS) else names[last]


# The activations after a last conv (VGG's ReLU, MobileNet's Hardswish, EfficientNet's SiLU)
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU, nn.GELU, nn.LeakyReLU)


def _has_cam(net: nn.Module) -> bool:
    """Whether `net` is a classifier that ends in global pooling and one linear layer (its CAM
    network then gives the map Grad-CAM differentiates)."""
    try:
        cam_model(net)
    except CAMUnavailableError:
        return False
    return True


def grad_cam(
    model: nn.Module, images: Tensor, class_idx: Tensor, layer: str | None = None
) -> Tensor:
    """Grad-CAM maps of the given classes: images (B, 3, H, W), class_idx (B, k) long (or (B,))
    -> (B, k, h, w) float32 at the layer's resolution. `layer`: a module name of
    `model.named_modules()` (of the unwrapped model); None: the default (see the module's doc)."""
    return GradCAMPass(model, images, layer).maps(class_idx)


class GradCAMPass:
    """One forward pass kept for Grad-CAM: the scores (`logits`), from which the caller may
    choose the classes (the top-k), then `maps(class_idx)` from the same graph, which it frees.
    cam-eval's Grad-CAM so costs one forward pass per batch, as CAM does."""

    def __init__(self, model: nn.Module, images: Tensor, layer: str | None = None) -> None:
        net = unwrap(model)
        name = gradcam_layer(net, layer)
        with torch.enable_grad():
            if name is None:  # a CAM network: its feature map f, then pooling and linear layer
                cam_net = cam_model(net)
                with torch.no_grad():  # nothing below f is differentiated: keep no graph there
                    features = cam_net.features(images)
                problem = map_problem(features)
                if problem is not None:
                    raise _map_error(net, images, None, problem)
                acts = features.detach().requires_grad_(True)  # (B, K, h, w)
                logits = cam_net.logits_from_features(acts)
            else:
                acts, logits = _forward_hooked(net, images, name)
        logits = class_scores(logits, net)
        if logits.shape[0] != images.shape[0]:
            raise ValueError(f"the network gave scores of shape {tuple(logits.shape)}, not (B, C)")
        self._acts: Tensor | None = acts
        self._graph: Tensor | None = logits
        self.logits = logits.detach()  # (B, C)

    def maps(self, class_idx: Tensor) -> Tensor:
        """(B, k) classes (or (B,)) -> their maps (B, k, h, w) float32; the graph is freed."""
        acts, logits = self._acts, self._graph
        if acts is None or logits is None:
            raise RuntimeError("GradCAMPass.maps: this pass's graph was already used")
        self._acts = self._graph = None
        if class_idx.dim() == 1:
            class_idx = class_idx[:, None]
        if class_idx.dim() != 2 or class_idx.shape[0] != logits.shape[0]:
            raise ValueError(
                f"class_idx must be (B={logits.shape[0]}, k), got shape {tuple(class_idx.shape)}"
            )
        class_idx = class_idx.long().to(logits.device)
        maps = []
        k = class_idx.shape[1]
        with torch.enable_grad():
            for j in range(k):  # a loop over the k classes, not over images
                score = logits.gather(1, class_idx[:, j : j + 1]).sum()
                (grad,) = torch.autograd.grad(score, acts, retain_graph=j < k - 1)
                alpha = grad.float().mean(dim=(2, 3))  # (B, K): eq. 1
                cam = torch.einsum("bk,bkhw->bhw", alpha, acts.detach().float())  # eq. 2
                maps.append(cam.clamp_min(0))
        return torch.stack(maps, dim=1)  # (B, k, h, w)


def _forward_hooked(net: nn.Module, images: Tensor, name: str) -> tuple[Tensor, Tensor]:
    """The network's scores, and the named module's output as a leaf of the graph above it. The
    forward pass starts without grad (no graph, no saved activations below the layer) and the
    hook turns grad on for the layers above. The hook lives only for this call (removed on the
    way out, errors included), and acts only in the calling thread."""
    captured: list[Tensor] = []
    problems: list[str] = []
    caller = threading.get_ident()

    def hook(_module: nn.Module, _inputs: tuple, output: object) -> object:
        if threading.get_ident() != caller:
            return None
        problem = map_problem(output)
        if problem is not None:  # refused after the pass, with a layer that works
            problems.append(problem)
            return None
        torch.set_grad_enabled(True)  # from here on; no_grad's exit below restores the caller's
        leaf = output.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf.clone()  # what the network goes on from (in-place ops change this copy)

    handle = net.get_submodule(name).register_forward_hook(hook)
    try:
        with torch.no_grad():
            logits = net(images)
    finally:
        handle.remove()
    if problems:
        raise _map_error(net, images, name, problems[0])
    if len(captured) != 1:
        raise GradCAMLayerError(
            f"layer {name!r} ran {len(captured)} times in one forward pass; Grad-CAM needs a "
            "layer that runs once"
        )
    return captured[0], logits


def shown_layer(net: nn.Module, name: str) -> str:
    """A layer's name as the user gives it: a wrapped classifier's without `net.`."""
    return name[len("net.") :] if hasattr(net, "net") and name.startswith("net.") else name


def spatial_layers(net: nn.Module, images: Tensor) -> list[str]:
    """The layers of `net` whose output on `images` can localize (localize.layers.map_problem),
    in the order they finish: one probe pass without grad, for a refusal's advice."""
    found: dict[str, int] = {}
    caller = threading.get_ident()

    def record(name: str):
        def hook(_m: nn.Module, _i: tuple, out: object) -> None:
            if threading.get_ident() == caller and map_problem(out) is None:
                found[name] = found.get(name, 0) + 1

        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in net.named_modules() if n]
    try:
        with torch.no_grad():
            net(images)
    except Exception:  # the probe only advises; the refusal stands without it
        return []
    finally:
        for handle in handles:
            handle.remove()
    return [n for n, runs in found.items() if runs == 1]


def _map_error(net: nn.Module, images: Tensor, layer: str | None, problem: str) -> GradCAMMapError:
    """`layer` (None: a CAM network's feature map) cannot localize, in one line with a layer that
    does on these images: the default layer if it works, else the deepest one that does; or, if
    none does, what would."""
    size = "x".join(str(s) for s in images.shape[-2:])
    what = "the CAM feature map" if layer is None else f"layer {shown_layer(net, layer)!r}"
    working = spatial_layers(net, images)
    try:
        default = gradcam_layer(net)
    except GradCAMLayerError:
        default = None
    if default is not None and default != layer and default in working:
        advice = f"use the default layer {shown_layer(net, default)!r} (leave gradcam_layer unset)"
    elif working:
        deepest = shown_layer(net, working[-1])
        advice = f"use a layer before the global pooling, e.g. gradcam_layer={deepest}"
    elif not has_conv(net):
        advice = SUGGEST_BACKPROP
    else:
        advice = (
            f"no layer gives a map larger than 1x1 on {size} images: use larger images "
            "(data.image_size), or localizer=backprop"
        )
    return GradCAMMapError(f"Grad-CAM: {what} gives {problem} ({size} images); {advice}")
