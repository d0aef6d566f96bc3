"""Where the class activation map lives in any classifier: the last feature map before global
pooling and the final linear layer, found on its graph (`find_cam_layers`), and the one-line
refusals (with what localizes instead) of a network that has none or gives no class scores. Such a
classifier seen as a CAM network: `localize.layer_net.LayerCAMNet`.

A network has a class activation map when its scores are S_c = sum_k w_k^c F_k + b_c, with F_k
the global average (or max) of a feature map f_k (Zhou et al. 2016, eq. 1-2). Most modern
classifiers end that way: ResNet, ResNeXt, Wide-ResNet, RegNet, EfficientNet, MobileNet v2,
DenseNet, GoogLeNet, Inception v3, ShuffleNet, MNASNet; ConvNeXt too, whose LayerNorm between
the pooling and the linear layer is, for one image, an affine map of the pooled vector (its mean
and spread over the channels are the image's own numbers), so it folds into the linear layer
(`ChannelNorm`). Networks with a non-linear layer or several linear layers between the pooling
and the scores (VGG, AlexNet, MobileNet v3's two-layer head, SqueezeNet's conv head) have none:
they are refused with one line that points to Grad-CAM and Backprop.

The layers are found on the network's graph (torch.fx, as torchvision's feature extraction traces
it), by walking back from the scores: the linear layer, then only reshapes, dropouts and at most
one LayerNorm, then the global pooling, whose input is the feature map. A network fx cannot trace
(a torch.export program, a module with data-dependent control flow) needs the two names; its
head is then checked on the first batch: the scores from the maps must equal the network's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torchvision.models.feature_extraction import NodePathTracer

from cam_repro.runtime.errors import CamReproError


class CAMUnavailableError(CamReproError, ValueError):
    """The model has no global-pooling head, so class activation maps are not defined for it.

    `reason`: what is wrong with the network, without the advice the message ends with (which
    names cam-eval's localizers): a command that cannot use those advises its own options."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class NoScoresError(CamReproError, ValueError):
    """The network's forward gives no single (B, C) tensor of class scores: no localizer (CAM,
    Grad-CAM, Backprop) and no training can use it, so it is refused when built or first run."""


class NotSpatialError(CamReproError, ValueError):
    """A map that cannot localize: not a (B, K, h, w) tensor, or a side of one cell."""


SUGGEST = (
    "localize it with Grad-CAM (cam-eval localizer=gradcam, cam_repro.cam.grad_cam) or the "
    "Backprop baseline (localizer=backprop, cam_repro.cam.backprop_saliency)"
)
# A network without any conv has no (B, K, h, w) map for Grad-CAM: Backprop alone is left.
SUGGEST_BACKPROP = (
    "localize it with the Backprop baseline (cam-eval localizer=backprop, "
    "cam_repro.cam.backprop_saliency); Grad-CAM needs a conv feature map and it has no nn.Conv2d"
)
NO_SCORES = (
    "cam-repro needs a classifier whose forward returns one (B, C) tensor of class scores: wrap "
    "it in a module whose forward returns the logits (e.g. `return self.net(x)[0]`) and build "
    "that (model=module model._target_=...), or export such a module (model=file)"
)


def has_conv(model: nn.Module) -> bool:
    """Whether `model` has a conv feature map for Grad-CAM to differentiate."""
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def other_localizers(model: nn.Module) -> str:
    """The advice for a classifier without a CAM: the localizers that do work on it (Grad-CAM
    needs a conv feature map; Backprop needs only the scores)."""
    return SUGGEST if has_conv(model) else SUGGEST_BACKPROP


def no_scores(name: str, what: str) -> NoScoresError:
    """The one-line refusal of the network `name` whose forward returns `what` ("a tuple",
    "shape (2, 3, 4)") instead of one (B, C) tensor of class scores."""
    return NoScoresError(
        f"{name}'s forward returns {what}, not one (B, C) tensor of class scores; {NO_SCORES}"
    )


def class_scores(out: object, model: nn.Module) -> Tensor:
    """A classifier's output checked to be one (B, C) tensor of scores (what every localizer
    differentiates or ranks); else a one-line NoScoresError saying what would work."""
    if isinstance(out, Tensor) and out.dim() == 2:
        return out
    what = f"shape {tuple(out.shape)}" if isinstance(out, Tensor) else f"a {_kind(out)}"
    inner = getattr(model, "net", model)  # a wrapped classifier (models.anynet): its own name
    raise no_scores(type(inner).__name__, what)


def _kind(value: object) -> str:
    """'tuple', 'list', 'dict' (fx's immutable containers too), else the type's name."""
    for kind in (tuple, list, dict):
        if isinstance(value, kind):
            return kind.__name__
    return type(value).__name__


def hooks_on(model: nn.Module) -> int:
    """How many hooks `model`'s modules hold (forward, forward-pre, backward, backward-pre): 0
    once a localizer that hooks it (Grad-CAM, torch-cam's methods) is done, errors included."""
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        + len(getattr(m, "_backward_pre_hooks", {}))
        for m in model.modules()
    )  # fmt: skip


def map_problem(value: object) -> str | None:
    """Why `value` cannot localize ("a tuple, not ...", "1x1 maps ..."), or None. A localization
    map (CAM, Grad-CAM's layer, Backprop) must be a (B, K, h, w) tensor with h > 1 and w > 1: a
    side of one cell makes every box span the image on that side (a 1x1 map after global
    pooling: whole-image boxes), numbers that look like results."""
    if not isinstance(value, Tensor):
        return f"a {type(value).__name__}, not a (B, K, h, w) feature map"
    if value.dim() != 4:
        return f"a tensor of shape {tuple(value.shape)}, not a (B, K, h, w) feature map"
    h, w = value.shape[-2:]
    if h < 2 or w < 2:
        return (
            f"{h}x{w} maps (shape {tuple(value.shape)}): a box on a map with a side of one "
            "cell spans the whole image there"
        )
    return None


def global_pool(features: Tensor, kind: str) -> Tensor:
    """(B, K, h, w) -> (B, K): the mean (gap) or the max (gmp) of each map. The max has one
    winner per map, like Caffe's and torch's max pooling (amax would split ties' gradients)."""
    if kind == "gap":
        return features.mean(dim=(2, 3))
    return features.flatten(2).max(dim=2).values


@dataclass(frozen=True)
class CAMLayers:
    """Where CAM lives in a network: the feature map's name (a module, or a graph node such as
    DenseNet's final functional `relu`), the linear layer's module name, the pooling (gap | gmp),
    and the LayerNorm module between pooling and linear layer, if any (ConvNeXt)."""

    features: str
    classifier: str
    pool: str = "gap"
    norm: str | None = None


# Ops that change a pooled vector's shape, or drop units in training, and nothing else.
_PASS_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity, nn.Flatten)
_PASS_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze, F.dropout, torch.permute}
_AVG_POOL_FUNCTIONS = (F.adaptive_avg_pool2d, torch._C._nn.adaptive_avg_pool2d)
_PASS_METHODS = {"flatten", "view", "reshape", "squeeze", "contiguous", "permute", "float"}


class _Tracer(NodePathTracer):
    """torchvision's tracer (nodes named by module path), with every LayerNorm a leaf so that
    ConvNeXt's channels-first LayerNorm2d is one node, as its module."""

    def is_leaf_module(self, m: nn.Module, module_qualname: str) -> bool:
        return isinstance(m, nn.LayerNorm) or super().is_leaf_module(m, module_qualname)


@dataclass
class TracedGraph:
    """A network's fx graph, with its nodes' module paths and its modules by name."""

    graph: fx.Graph
    names: dict[fx.Node, str]  # node -> qualified name (module path, or path + op name)
    modules: dict[str, nn.Module]


def _trace(model: nn.Module) -> TracedGraph | None:
    """The network's graph in eval mode (GoogLeNet and Inception give one output there), or None
    if fx cannot trace it."""
    was_training = model.training
    model.eval()
    try:
        tracer = _Tracer()
        graph = tracer.trace(model)
    except Exception:  # fx raises many types on untraceable code
        return None
    finally:
        model.train(was_training)
    return TracedGraph(graph, dict(tracer.node_to_qualname), dict(model.named_modules()))


def _describe(g: TracedGraph, node: fx.Node) -> str:
    name = g.names.get(node, node.name)
    if node.op == "call_module":
        return f"{name} ({type(g.modules[node.target]).__name__})"
    target = getattr(node.target, "__name__", node.target)
    return name if name == target else f"{name} ({target})"


def _is_linear(module: nn.Module | None) -> bool:
    weight = getattr(module, "weight", None)
    return isinstance(weight, Tensor) and weight.dim() == 2 and not isinstance(module, nn.Embedding)


def _dims(node: fx.Node) -> set[int] | None:
    dims = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
    if isinstance(dims, int):
        dims = (dims,)
    if not isinstance(dims, list | tuple) or not all(isinstance(d, int) for d in dims):
        return None
    return {d % 4 if d < 0 else d for d in dims}


def _ones(size: object) -> bool:
    return size == 1 or (isinstance(size, list | tuple) and all(s == 1 for s in size))


def _pool_kind(g: TracedGraph, node: fx.Node) -> str | None:
    """'gap' / 'gmp' if `node` pools its input globally over (h, w), else None."""
    if node.op == "call_module":
        m = g.modules[node.target]
        if isinstance(m, nn.AdaptiveAvgPool2d) and _ones(m.output_size):
            return "gap"
        if isinstance(m, nn.AdaptiveMaxPool2d) and _ones(m.output_size) and not m.return_indices:
            return "gmp"
        return None
    if node.op == "call_function" and node.target in _AVG_POOL_FUNCTIONS:
        size = node.kwargs.get("output_size", node.args[1] if len(node.args) > 1 else None)
        return "gap" if _ones(size) else None
    if node.op == "call_function" and node.target is F.adaptive_max_pool2d:
        size = node.kwargs.get("output_size", node.args[1] if len(node.args) > 1 else None)
        return "gmp" if _ones(size) else None
    mean = (node.op == "call_method" and node.target == "mean") or node.target is torch.mean
    amax = (node.op == "call_method" and node.target == "amax") or node.target is torch.amax
    if (mean or amax) and _dims(node) == {2, 3}:
        return "gap" if mean else "gmp"
    return None


def _passes(g: TracedGraph, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(g.modules[node.target], _PASS_MODULES)
    if node.op == "call_method":
        return node.target in _PASS_METHODS
    return node.op == "call_function" and node.target in _PASS_FUNCTIONS


def _first_input(node: fx.Node) -> fx.Node | None:
    arg = node.args[0] if node.args else node.kwargs.get("input")
    return arg if isinstance(arg, fx.Node) else None


def _output_node(g: TracedGraph, classifier: str | None) -> fx.Node:
    """The linear layer the scores come from: the graph's output, back through reshapes."""
    out = next(n for n in reversed(g.graph.nodes) if n.op == "output")
    node = out.args[0]
    if not isinstance(node, fx.Node):
        raise NoScoresError(f"a {_kind(node)}")
    while _passes(g, node) and _first_input(node) is not None:
        node = _first_input(node)
    if _pool_kind(g, node) is not None:
        raise CAMUnavailableError(
            f"its scores are the global pooling ({_describe(g, node)}) of maps from "
            f"{_describe(g, _first_input(node))}, with no linear layer after it"
        )
    if not (node.op == "call_module" and _is_linear(g.modules[node.target])):
        raise CAMUnavailableError(
            f"its scores come from {_describe(g, node)}, not from a linear layer (its head is "
            "not global pooling and one linear layer)"
        )
    if classifier is not None and node.target != classifier:
        raise CAMUnavailableError(
            f"its scores come from {node.target}, not from classifier layer {classifier}"
        )
    return node


def _walk_head(g: TracedGraph, linear: fx.Node) -> tuple[fx.Node, str, str | None]:
    """From the linear layer back to the global pooling: (the pooled map's node, pool, norm)."""
    node, norm = _first_input(linear), None
    between: list[str] = []
    while node is not None:
        kind = _pool_kind(g, node)
        if kind is not None:
            source = _first_input(node)
            if source is None:
                break
            return source, kind, norm
        if node.op == "call_module" and isinstance(g.modules[node.target], nn.LayerNorm):
            if norm is not None:
                between.append(_describe(g, node))
                break
            norm = node.target
        elif not _passes(g, node):
            between.append(_describe(g, node))
            break
        node = _first_input(node)
    where = f": it has {', '.join(between)} there" if between else ""
    raise CAMUnavailableError(
        f"its last linear layer ({linear.target}) is not fed by global pooling through only "
        f"reshapes and dropout{where}, so it has no class activation map"
    )


def _node_name(g: TracedGraph, node: fx.Node) -> str:
    """The shortest module path whose output `node` is (e.g. 'layer4' for ResNet's last block's
    final ReLU), else the node's own qualified name (e.g. DenseNet's functional 'relu')."""
    qual = g.names[node]
    order = {n: i for i, n in enumerate(g.graph.nodes)}
    parts = qual.split(".")
    for i in range(1, len(parts)):
        prefix = ".".join(parts[:i])
        if prefix not in g.modules:
            continue
        inside = [n for n, q in g.names.items() if q == prefix or q.startswith(prefix + ".")]
        if max(inside, key=order.__getitem__) is node:
            return prefix
    return qual


def _named_node(g: TracedGraph, name: str) -> fx.Node:
    """The node whose output a layer name means: the last node inside that module (as
    torchvision's create_feature_extractor reads names), or the node of that name."""
    inside = [n for n in g.graph.nodes if n in g.names
              and (g.names[n] == name or g.names[n].startswith(name + "."))]  # fmt: skip
    if not inside:
        raise CAMUnavailableError(f"features layer {name!r} is not a layer of this network")
    return inside[-1]


def analyse_layers(
    model: nn.Module, features: str | None, classifier: str | None
) -> tuple[CAMLayers, TracedGraph | None]:
    if classifier is not None and not _is_linear(dict(model.named_modules()).get(classifier)):
        raise CAMUnavailableError(
            f"classifier layer {classifier!r} is not a linear layer of this network "
            f"(its linear layers: {', '.join(_linear_names(model)[-4:]) or 'none'})"
        )
    g = _trace(model)
    if g is None:
        if features is None or classifier is None:
            raise CAMUnavailableError(
                f"torch.fx cannot trace {type(model).__name__}, so its CAM layers cannot be found "
                "automatically: name them (model.features_layer=, model.classifier_layer=; in "
                "Python layers=(features, linear))"
            )
        if features not in dict(model.named_modules()):
            raise CAMUnavailableError(f"features layer {features!r} is not a module of the network")
        return CAMLayers(features, classifier), None
    try:
        linear = _output_node(g, classifier)
    except NoScoresError as err:  # nothing can use it: not CAM, not Grad-CAM, not Backprop
        raise no_scores(type(model).__name__, str(err)) from None
    source, pool, norm = _walk_head(g, linear)
    if features is not None and _named_node(g, features) is not source:
        raise CAMUnavailableError(
            f"features layer {features!r} is not what the global pooling reads "
            f"({_node_name(g, source)} is)"
        )
    return CAMLayers(features or _node_name(g, source), linear.target, pool, norm), g


def _linear_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if _is_linear(m)]


def cam_layers(
    model: nn.Module, features: str | None = None, classifier: str | None = None
) -> CAMLayers:
    """Where CAM lives in `model` (names found, or the given ones checked): see CAMLayers.

    A CAMUnavailableError (one line, naming the network) if its head is not global pooling and
    one linear layer."""
    try:
        return analyse_layers(model, features, classifier)[0]
    except CAMUnavailableError as err:
        raise refused(model, err) from None


def find_cam_layers(model: nn.Module) -> tuple[str, str]:
    """(feature map, linear layer): the names of the last feature map before global pooling and
    of the final linear layer, e.g. ('layer4', 'fc') for a torchvision ResNet; a one-line
    CAMUnavailableError for a network whose head is not global pooling + one linear layer."""
    found = cam_layers(model)
    return found.features, found.classifier


def refused(model: nn.Module, err: CAMUnavailableError) -> CAMUnavailableError:
    """`err` as one line naming the network and what localizes it instead (its own `cam_hint`
    too, e.g. the zoo's originals: their -GAP variant)."""
    hint = getattr(model, "cam_hint", None)
    reason = f"{type(model).__name__}: {err}"
    return CAMUnavailableError(f"{reason}; {other_localizers(model)}" +
                               (f", or {hint}" if hint else ""), reason)  # fmt: skip


def features_module(net: nn.Module, g: TracedGraph, features: str) -> fx.GraphModule:
    """A graph module that runs `net` up to the feature map and returns it."""
    graph = fx.Graph()
    remap: dict[fx.Node, fx.Node] = {}
    target = _named_node(g, features)
    for node in g.graph.nodes:
        if node.op == "output":
            break
        remap[node] = graph.node_copy(node, remap.__getitem__)
        if node is target:
            break
    graph.output(remap[target])
    module = fx.GraphModule(net, graph, class_name=f"{type(net).__name__}Features")
    module.graph.eliminate_dead_code()
    module.recompile()
    return module


__all__ = [
    "NO_SCORES",
    "SUGGEST",
    "CAMLayers",
    "CAMUnavailableError",
    "NoScoresError",
    "NotSpatialError",
    "TracedGraph",
    "analyse_layers",
    "cam_layers",
    "class_scores",
    "features_module",
    "find_cam_layers",
    "global_pool",
    "map_problem",
    "other_localizers",
    "refused",
]
