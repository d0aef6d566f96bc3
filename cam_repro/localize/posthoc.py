"""torch-cam's post-hoc CAM methods as localizers: `PosthocMaps`, an extractor of torchcam.methods
on a network, called on a batch with the classes a protocol asks for (the top-k and the true
class) and giving raw maps at the layer's resolution, as cam-eval's other localizers do.

Conventions (the methods themselves are torch-cam's, untouched):
- Maps are asked for with `normalized=False`: the method's raw map (ReLU'd where the method says
  so). cam-eval upsamples it and normalises it by its box rule, as it does CAMs.
- Default layer: on a network that ends in global pooling and one linear layer, the module whose
  output is the CAM feature map (localize.cam: the map CAM and our Grad-CAM use), found on a probe
  pass; any other network: Grad-CAM's default (localize.gradcam.gradcam_layer: the last conv past
  its batch norm and activation). A named layer is checked as Grad-CAM's is.
- One forward pass per batch serves every class of the methods that read the hooked activations
  or one backward pass (CAM, Grad-CAM, Grad-CAM++, XGrad-CAM, Layer-CAM, Finer-CAM: the graph is
  kept until the last class). The methods that cost many passes per map (Score-CAM, SS-CAM,
  IS-CAM, Smooth Grad-CAM++) compute each (image, class) once: where the true class is among the
  top-k, its map is the top-k's, not computed again.
- The noise of SS-CAM and Smooth Grad-CAM++ is drawn from torch's global RNG, which is seeded for
  each batch and class column from (seed, batch number, column) inside a fork: a run's maps are
  the same every time, and the caller's RNG is left as it was.
- Hooks are registered when the extractor is made and removed by `close()` (a context manager:
  on every exit, errors and KeyboardInterrupt included). A torch-cam constructor that fails after
  registering hooks cannot leak them: the arguments are checked before it runs.
- Everything runs in float32 (the maps' precision; runtime.amp does not apply).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

import numpy as np
import torch
from torch import Tensor, nn

from cam_repro.localize.cam import cam_model
from cam_repro.localize.gradcam import GradCAMLayerError, gradcam_layer, shown_layer
from cam_repro.localize.layers import CAMUnavailableError, class_scores, map_problem
from cam_repro.localize.posthoc_methods import PosthocMethod, PosthocSpec
from cam_repro.runtime.distributed import unwrap
from cam_repro.runtime.errors import CamReproError


class PosthocError(CamReproError, ValueError):
    """A torch-cam method that cannot run on this network or layer (one line, what would)."""


def cam_feature_layer(net: nn.Module, probe: Tensor) -> str | None:
    """The module of `net` whose output is its CAM feature map (`cam_model(net).features`), found
    on a probe pass (the last module to finish with exactly that output, run once); None when the
    network has no CAM head or no module gives that map."""
    try:
        cam_net = cam_model(net)
    except CAMUnavailableError:
        return None
    outputs: dict[str, Tensor] = {}
    runs: dict[str, int] = {}

    def record(name: str):
        def hook(_m: nn.Module, _i: tuple, out: object) -> None:
            runs[name] = runs.get(name, 0) + 1
            if isinstance(out, Tensor):
                outputs[name] = out.detach().clone()  # before any in-place op after it

        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in net.named_modules() if n]
    try:
        with torch.no_grad():
            net(probe)
    finally:
        for handle in handles:
            handle.remove()
    with torch.no_grad():
        features = cam_net.features(probe)
    same = [
        n for n, out in outputs.items()
        if runs[n] == 1 and out.shape == features.shape and torch.equal(out, features)
    ]  # fmt: skip
    return same[-1] if same else None


def posthoc_layer(net: nn.Module, layer: str | None, probe: Tensor) -> str:
    """The module name a torch-cam method hooks: `layer` checked (a GradCAMLayerError names an
    unknown one), or the default (see the module's doc)."""
    if layer is not None:
        return gradcam_layer(net, layer)
    found = cam_feature_layer(net, probe)
    if found is not None:
        return found
    name = gradcam_layer(net, None)
    if name is None:  # a CAM network whose feature map no single module gives
        raise GradCAMLayerError(
            f"{type(net).__name__}: no module gives its CAM feature map; name one with "
            "torchcam.layer (a module of model.named_modules())"
        )
    return name


def _classifier_name(net: nn.Module) -> str:
    """The name of the linear layer CAM weighs the maps with (torch-cam's `fc_layer`)."""
    try:
        linear = cam_model(net).classifier
    except CAMUnavailableError as err:
        raise PosthocError(f"torch-cam's CAM: {err}; use a gradient method (GradCAM)") from None
    for name, module in net.named_modules():
        if module is linear:
            return name
    raise PosthocError(
        f"torch-cam's CAM: {type(net).__name__}'s linear layer is not one of its modules"
    )


@dataclass
class _Pass:
    """A batch's forward pass with the extractor's hooks on: the images it saw, its scores
    (attached to the graph for the gradient methods)."""

    x: Tensor
    logits: Tensor


class PosthocMaps:
    """A torch-cam method on a network, as a localizer: `logits(x)`, then `maps(x, classes)`.
    Use it as a context manager (or call `close()`): the hooks live until then."""

    def __init__(self, model: nn.Module, spec: PosthocSpec, probe: Tensor) -> None:
        """`probe`: one image (1, 3, S, S) at the evaluated size, for the default layer."""
        import torchcam.methods

        self.net = unwrap(model)
        self.spec = spec
        self.method: PosthocMethod = spec.info
        options = spec.options()
        self.layer = posthoc_layer(self.net, spec.layer, probe.float())
        kwargs: dict[str, object] = dict(options)
        if self.method.name == "CAM":
            kwargs["fc_layer"] = _classifier_name(self.net)
        cls = getattr(torchcam.methods, self.method.name)
        # every argument is checked above: torch-cam's constructor registers its hooks last
        self.extractor = cls(self.net, target_layer=self.layer, **kwargs)
        self._kept: _Pass | None = None
        self._batches = 0  # maps() calls: the noise's seed is (seed, batch, class column)
        self.channels: int | None = None  # the layer's K, known after the first pass

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Remove the hooks and drop what they hold."""
        self._kept = None
        extractor = getattr(self, "extractor", None)
        if extractor is not None:
            try:
                extractor.remove_hooks()
            finally:
                extractor.reset_hooks()

    def __enter__(self) -> PosthocMaps:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def shown_layer(self) -> str:
        """The layer's name as the user gives it (a wrapped classifier's without `net.`)."""
        return shown_layer(self.net, self.layer)

    # -- maps -------------------------------------------------------------------------------

    @property
    def _one_pass(self) -> bool:
        """Whether one forward pass serves every class: the methods that only read the hooked
        activations and gradients (their graph kept between classes)."""
        return not (self.method.masks or self.method.noise)

    def _forward(self, x: Tensor) -> _Pass:
        images = x.float()
        if self.method.gradient and self._one_pass:
            with torch.enable_grad():  # a leaf of its own: a graph even with frozen weights
                logits = self.net(images.detach().requires_grad_(True))
        else:
            with torch.no_grad():
                logits = self.net(images)
        logits = class_scores(logits, self.net)
        self._check_activation(x)
        return _Pass(x, logits)

    def _check_activation(self, x: Tensor) -> None:
        # a wrapper (Finer-CAM) holds its base extractor's activations
        (acts,) = getattr(self.extractor, "base_cam", self.extractor).hook_a
        problem = map_problem(acts)
        if problem is not None:
            size = "x".join(str(s) for s in x.shape[-2:])
            raise PosthocError(
                f"{self.method.title}: layer {self.shown_layer!r} gives {problem} ({size} "
                "images); name a layer before the global pooling (torchcam.layer)"
            )
        self.channels = int(acts.shape[1])

    def logits(self, x: Tensor) -> Tensor:
        """Class scores (B, C) float32 of normalised images x; the pass is kept for `maps(x)`."""
        self._kept = self._forward(x)
        return self._kept.logits.detach().float()

    def maps(self, x: Tensor, classes: Tensor) -> Tensor:
        """(B, k) classes -> the method's raw maps (B, k, h, w) float32 at the layer's
        resolution, from `logits(x)`'s pass if it was on these images, else a pass of its own."""
        kept, self._kept = self._kept, None
        if kept is None or kept.x is not x:
            kept = self._forward(x)
        if classes.dim() == 1:
            classes = classes[:, None]
        classes = classes.long()
        self._batches += 1
        # The batch's activations (and graph) stay held by the hooks until the next batch's pass
        # replaces them: one batch's worth, as torch-cam used directly holds them. Freeing them
        # here made the allocator return the memory and fault it in again at the next batch
        # (Grad-CAM++: 1.28x torch-cam's time per batch, scripts/bench_posthoc.py).
        if self._one_pass:
            k = classes.shape[1]
            cols = [self._call(classes[:, j], kept.logits, j, j < k - 1) for j in range(k)]
            return torch.stack(cols, dim=1)
        return self._each_once(x, classes, kept)

    def _each_once(self, x: Tensor, classes: Tensor, kept: _Pass) -> Tensor:
        """The costly methods: each (image, class) once; the first column from the kept pass,
        a later one from a pass over the images whose class in it is new, its other images'
        maps copied from the earlier column that asked for the same class."""
        cols = [self._call(classes[:, 0], kept.logits, 0, False)]
        for j in range(1, classes.shape[1]):
            col = classes[:, j]
            earlier = [classes[:, i] == col for i in range(j)]
            idx = (~torch.stack(earlier).any(dim=0)).nonzero()[:, 0]
            out = torch.empty_like(cols[0])
            if len(idx):
                out[idx] = self._call(col[idx], self._forward(x[idx]).logits, j, False)
            for i, same in enumerate(earlier):  # every image is new here or in one of these
                out[same] = cols[i][same]
            cols.append(out)
        return torch.stack(cols, dim=1)

    def _call(self, col: Tensor, scores: Tensor, column: int, keep_graph: bool) -> Tensor:
        """The extractor on one class per image (the batch's class `column`) -> (n, h, w)
        float32."""
        kwargs: dict[str, object] = {}
        if self.method.gradient and self._one_pass:
            kwargs["retain_graph"] = keep_graph
        devices = [col.device] if col.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=self.method.noise):
            if self.method.noise:
                key = [self.spec.seed, self._batches, column]
                torch.manual_seed(int(np.random.SeedSequence(key).generate_state(1)[0]))
            with torch.enable_grad() if self.method.gradient else torch.no_grad():
                (cam,) = self.extractor(
                    class_idx=col.tolist(), scores=scores, normalized=False, **kwargs
                )
        return cam.detach().float()

    def passes_per_map(self) -> tuple[int, int] | None:
        """(forward, backward) passes per map beyond the batch's own (None before a pass)."""
        if self.channels is None:
            return None
        return self.method.passes_per_map(self.channels, self.spec.num_samples)
