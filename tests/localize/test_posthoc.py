"""torch-cam's methods as localizers (cam_repro/localize/posthoc.py, posthoc_methods.py): CAM and
Grad-CAM agree with ours and with torch-cam called by hand, hooks never outlive the extractor,
each costly (image, class) is computed once, the noise is seeded, the cost, the names."""

from __future__ import annotations

import math

import pytest
import torch
import torchcam.methods
import torchvision
from any_nets import TwoLayerHead
from tolerances import assert_close_at_scale, assert_sums_close
from torch import Tensor, nn

from cam_repro.evaluate.localizer import Localizer, localize_batch
from cam_repro.localize.cam import cam_model, class_activation_maps, predict_with_cams
from cam_repro.localize.gradcam import GradCAMLayerError, grad_cam
from cam_repro.localize.layers import hooks_on
from cam_repro.localize.posthoc import PosthocError, PosthocMaps
from cam_repro.localize.posthoc_methods import POSTHOC_METHODS, PosthocSpec, posthoc_method
from cam_repro.models import build_model
from cam_repro.runtime.errors import ConfigError

CPU = torch.device("cpu")
# two classes per image, one image asking the same class twice
CLASSES = torch.tensor([[0, 1], [2, 2], [4, 3], [1, 0]])


def tiny(pool: str = "gap") -> nn.Module:
    """Tiny-GAP / Tiny-GMP at a quarter width (24 channels, an 8x8 map at 32 px), with a random
    linear layer of both signs (maps that cancel)."""
    cfg = {"arch": "tiny", "pool": pool, "width_mult": 0.25, "head_channels": 0}
    model = build_model(cfg, num_classes=5).eval()
    with torch.no_grad():
        nn.init.normal_(model.classifier.weight)
    return model


def resnet18() -> nn.Module:
    """Any classifier: torchvision's, random weights, not wrapped."""
    return torchvision.models.resnet18(weights=None, num_classes=5).eval()


def posthoc(model: nn.Module, spec: PosthocSpec, x: Tensor, classes: Tensor) -> Tensor:
    with PosthocMaps(model, spec, x[:1]) as maps:
        return maps.maps(x, classes)


def hand_gradcam(model: nn.Module, x: Tensor, classes: Tensor, layer: str) -> tuple[Tensor, ...]:
    """Grad-CAM by hand (Selvaraju et al. 2017, eq. 1-2) on the output of `layer`: the maps, the
    sums of |alpha_k A_k| (the scale of their rounding errors) and the activations."""
    kept: list[Tensor] = []
    handle = model.get_submodule(layer).register_forward_hook(lambda m, i, out: kept.append(out))
    try:
        with torch.enable_grad():
            logits = model(x)
    finally:
        handle.remove()
    (acts,) = kept
    maps, scales = [], []
    for j in range(classes.shape[1]):
        score = logits.gather(1, classes[:, j : j + 1]).sum()
        (grad,) = torch.autograd.grad(score, acts, retain_graph=True)
        weighted = grad.mean(dim=(2, 3))[:, :, None, None] * acts.detach()  # (B, K, h, w)
        maps.append(weighted.sum(dim=1).clamp_min(0))
        scales.append(weighted.abs().sum(dim=1))
    return torch.stack(maps, dim=1), torch.stack(scales, dim=1), acts.detach()


# --- agreement with ours and with torch-cam by hand ---------------------------------------------


def test_torch_cams_grad_cam_pp_is_its_own_with_alpha_undivided() -> None:
    """torch-cam 0.5's Grad-CAM++ weighs channel k by sum_ij grad^2 relu(grad) (its alpha, grad^2,
    is never divided: a masked in-place division on a copy), not by Chattopadhay et al.'s alpha:
    the reason its title says "torch-cam 0.5". Should torch-cam fix it, this fails: retitle it."""
    assert POSTHOC_METHODS["GradCAMpp"].title == "Grad-CAM++ (torch-cam 0.5)"
    model, x = tiny(), torch.randn(4, 3, 32, 32)
    theirs = posthoc(model, PosthocSpec("GradCAMpp"), x, CLASSES)
    # its default layer, tiny's head, is an Identity on the backbone's output: differentiate that
    with torch.no_grad():
        acts = model.backbone(x)
    feats = acts.clone().requires_grad_(True)
    logits = model.logits_from_features(feats)
    for j in range(CLASSES.shape[1]):
        (grad,) = torch.autograd.grad(logits.gather(1, CLASSES[:, j : j + 1]).sum(), feats,
                                      retain_graph=True)  # fmt: skip
        undivided = (grad.pow(2) * grad.clamp_min(0)).sum(dim=(2, 3))  # (B, K)
        expected = (undivided[:, :, None, None] * acts).sum(dim=1).clamp_min(0)
        # weights summed over h x w in another order than torch-cam's, then over K channels
        assert_close_at_scale(theirs[:, j], expected, rtol=1e-4)
        # the paper's alpha (g^2 / (2 g^2 + sum A g^3)) gives other weights
        g2, g3 = grad.pow(2), grad.pow(3)
        alpha = g2 / (2 * g2 + (g3 * acts).sum(dim=(2, 3), keepdim=True) + 1e-8)
        paper = (alpha * grad.clamp_min(0)).sum(dim=(2, 3))
        assert not torch.allclose(paper, undivided, rtol=1e-3)


@pytest.mark.parametrize(
    ("make", "size", "layer", "fc"),
    [
        (tiny, 32, "head", "classifier"),
        (lambda: tiny("gmp"), 32, "head", "classifier"),
        (resnet18, 64, "layer4", "fc"),
    ],
    ids=["tiny_gap", "tiny_gmp", "resnet18"],
)
def test_cam_and_grad_cam_agree_with_ours_and_torch_cam_by_hand(make, size, layer, fc) -> None:
    """CAM is M_c = sum_k w_k^c f_k (no bias, no ReLU) in both; Grad-CAM's alpha_k^c is the mean
    gradient, w_k^c / (h w) for GAP and, summed over a max's (tied) winners, for GMP too. Each
    map is a float32 sum of K products (Grad-CAM: of a mean of h w gradients): the two orders of
    summation differ by at most 2 (K + h w) eps x the sum of the terms' |values|
    (tests/tolerances.py), a bound that scales with the terms where the map cancels to ~0."""
    model = make()
    x = torch.randn(4, 3, size, size)
    with PosthocMaps(model, PosthocSpec("CAM"), x[:1]) as cams:
        assert cams.layer == layer  # the module whose output is the CAM feature map
        theirs = cams.maps(x, CLASSES)
    with torch.no_grad():
        ours = predict_with_cams(model, x, classes=CLASSES).cams
        f = cam_model(model).features(x)  # (B, K, h, w)
        weight = cam_model(model).classifier.weight
    k, h, w = f.shape[1:]
    assert theirs.shape == (4, 2, h, w) == ours.shape and theirs.dtype == torch.float32
    assert (ours < 0).any() and (ours > 0).any()  # CAM keeps both signs: no ReLU
    scale = class_activation_maps(f.abs(), weight.abs(), CLASSES)
    assert_sums_close(theirs, ours, scale, k)
    # torch-cam's CAM by hand, normalized=False: the same numbers, bit for bit
    with torchcam.methods.CAM(model, target_layer=layer, fc_layer=fc) as extractor:
        with torch.no_grad():
            scores = model(x)
        by_hand = [extractor(CLASSES[:, j].tolist(), scores, normalized=False)[0] for j in (0, 1)]
    assert torch.equal(theirs, torch.stack(by_hand, dim=1))
    assert hooks_on(model) == 0

    theirs = posthoc(model, PosthocSpec("GradCAM"), x, CLASSES)
    ours = grad_cam(model, x, CLASSES)
    hand, scale, acts = hand_gradcam(model, x, CLASSES, layer)
    assert theirs.shape == ours.shape == (4, 2, h, w) and theirs.amax() > 0
    assert_sums_close(theirs, ours, scale, k + h * w)
    assert_sums_close(theirs, hand, scale, k + h * w)
    assert torch.equal(acts, f)  # the hooked layer's output is f
    with torchcam.methods.GradCAM(model, target_layer=layer) as extractor:
        scores = model(x)  # the weights require grad: a graph
        by_hand = [
            extractor(CLASSES[:, j].tolist(), scores, normalized=False, retain_graph=True)[0]
            for j in (0, 1)
        ]
    assert torch.equal(theirs, torch.stack(by_hand, dim=1))
    assert hooks_on(model) == 0


def test_grad_cam_at_a_named_earlier_layer_agrees_with_ours() -> None:
    """tiny's second block's ReLU (backbone.6, 16x16 at 32 px): the same gradients through the
    same modules, so only the final sums' order differs (bounded as above)."""
    model = tiny()
    x = torch.randn(4, 3, 32, 32)
    with PosthocMaps(model, PosthocSpec("GradCAM", layer="backbone.6"), x[:1]) as maps:
        assert maps.layer == "backbone.6"
        theirs = maps.maps(x, CLASSES)
    ours = grad_cam(model, x, CLASSES, layer="backbone.6")
    hand, scale, acts = hand_gradcam(model, x, CLASSES, "backbone.6")
    assert theirs.shape == (4, 2, 16, 16) and acts.shape[1] == 12 and theirs.amax() > 0
    assert_sums_close(theirs, ours, scale, 12 + 16 * 16)
    assert_sums_close(theirs, hand, scale, 12 + 16 * 16)
    # not the default layer's maps
    assert posthoc(model, PosthocSpec("GradCAM"), x, CLASSES).shape == (4, 2, 8, 8)


def test_a_wrapped_torchvision_classifier_hooks_layer4_and_shows_it_unwrapped() -> None:
    """cam-eval's model=torchvision wraps the network (its modules under `net.`); the layer is
    shown as the user names it, and named that way it is accepted."""
    model = build_model({"arch": "torchvision", "name": "resnet18"}, 5).eval()
    x = torch.randn(2, 3, 64, 64)
    with PosthocMaps(model, PosthocSpec("CAM"), x[:1]) as maps:
        assert maps.shown_layer == "layer4" and maps.layer.endswith("layer4")
        default = maps.maps(x, CLASSES[:2])
    named = posthoc(model, PosthocSpec("CAM", layer="layer4"), x, CLASSES[:2])
    assert torch.equal(default, named) and default.shape == (2, 2, 2, 2)


# --- hooks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["CAM", "GradCAM", "ScoreCAM", "SmoothGradCAMpp"])
def test_hooks_are_removed_on_every_exit(method: str) -> None:
    """ScoreCAM and Smooth Grad-CAM++ also hook the model's input (a forward pre-hook)."""
    model = tiny()
    x = torch.randn(2, 3, 32, 32)
    noisy = method == "SmoothGradCAMpp"
    spec = PosthocSpec(method, num_samples=1) if noisy else PosthocSpec(method)
    with PosthocMaps(model, spec, x[:1]) as maps:
        assert hooks_on(model) > 0
        maps.logits(x)
        maps.maps(x, CLASSES[:2])
    assert hooks_on(model) == 0
    for error in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(error)), PosthocMaps(model, spec, x[:1]) as maps:
            maps.logits(x)
            assert hooks_on(model) > 0
            raise error
        assert hooks_on(model) == 0
    # an error inside torch-cam's call (a class the network does not have)
    out_of_range = pytest.raises((IndexError, RuntimeError), match="index 99 is out of bounds")
    with out_of_range, PosthocMaps(model, spec, x[:1]) as maps:
        maps.maps(x, torch.tensor([[0], [99]]))
    assert hooks_on(model) == 0


def test_a_refused_extractor_leaves_no_hook() -> None:
    model = tiny()
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(GradCAMLayerError, match="'conv9' is not a module") as err:
        PosthocMaps(model, PosthocSpec("GradCAM", layer="conv9"), x)
    assert "\n" not in str(err.value)
    assert hooks_on(model) == 0
    # CAM needs a linear head: refused before torch-cam registers anything
    for net in (
        TwoLayerHead(5).eval(),  # a ReLU'd hidden layer between pooling and head
        build_model({"arch": "vgg16", "modified": False, "width_mult": 0.125}, 5).eval(),
    ):
        with pytest.raises(PosthocError, match=r"^torch-cam's CAM: .*use a gradient method") as err:
            PosthocMaps(net, PosthocSpec("CAM"), torch.randn(1, 3, 64, 64))
        assert "\n" not in str(err.value)
        assert hooks_on(net) == 0


def test_localizer_removes_the_hooks_on_every_exit() -> None:
    model = tiny()
    x = torch.randn(2, 3, 32, 32)
    labels = torch.tensor([1, 2])
    spec = PosthocSpec("ScoreCAM")
    with Localizer(model, "torchcam", "none", CPU, posthoc=spec) as loc:
        out = localize_batch(loc, x, labels, topk=2)
        assert out.maps.shape == (2, 3, 32, 32) and hooks_on(model) > 0
    assert hooks_on(model) == 0
    for error in (RuntimeError("boom"), KeyboardInterrupt()):
        with (
            pytest.raises(type(error)),
            Localizer(model, "torchcam", "none", CPU, posthoc=spec) as loc,
        ):
            localize_batch(loc, x, labels, topk=2)
            raise error
        assert hooks_on(model) == 0
    with pytest.raises(ValueError, match="kind=torchcam"):
        Localizer(model, "cam", "none", CPU, posthoc=spec)


# --- each costly map once -----------------------------------------------------------------------


def test_score_cam_computes_a_repeated_class_once_and_the_same() -> None:
    """A column's map is the same whether its images share a pass with others or not: the
    scores of masked images agree across batch sizes to rounding, which carries through the
    softmax of their differences to ~1e-6 of the map's scale (rtol 1e-4: a wide margin)."""
    model = tiny()
    x = torch.randn(4, 3, 32, 32)
    spec = PosthocSpec("ScoreCAM")
    classes = CLASSES.clone()  # image 1 asks class 2 twice
    both = posthoc(model, spec, x, classes)
    for j in (0, 1):
        alone = posthoc(model, spec, x, classes[:, j : j + 1])
        assert_close_at_scale(both[:, j], alone[:, 0])
    assert torch.equal(both[1, 0], both[1, 1])  # the second is the first's map, not recomputed
    # a second column equal to the first: copied, no pass of its own
    with PosthocMaps(model, spec, x[:1]) as maps:
        maps.logits(x)
        calls = []
        forward = maps._forward
        maps._forward = lambda images: calls.append(len(images)) or forward(images)
        same = maps.maps(x, classes[:, [0, 0]])
    assert calls == [] and torch.equal(same[:, 0], same[:, 1])
    assert torch.equal(same[:, 0], both[:, 0])


def test_the_cheap_methods_give_each_column_as_a_call_of_its_own() -> None:
    """Grad-CAM++ from one pass whose graph is kept between the three classes: each column as
    if called alone (the same backward, bit for bit or to rounding of the sums)."""
    model = tiny()
    x = torch.randn(4, 3, 32, 32)
    classes = torch.tensor([[0, 1, 2], [2, 2, 3], [4, 3, 0], [1, 0, 1]])
    spec = PosthocSpec("GradCAMpp")
    together = posthoc(model, spec, x, classes)
    assert together.shape == (4, 3, 8, 8) and together.amax() > 0
    for j in range(3):
        alone = posthoc(model, spec, x, classes[:, j])  # (B,) classes: one column
        assert_close_at_scale(together[:, j], alone[:, 0], rtol=1e-5)
    assert torch.equal(together[1, 0], together[1, 1])


# --- noise --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [PosthocSpec("SmoothGradCAMpp", num_samples=2), PosthocSpec("SSCAM", num_samples=2)],
    ids=["SmoothGradCAMpp", "SSCAM"],
)
def test_noise_is_seeded_and_leaves_the_global_rng_alone(spec: PosthocSpec) -> None:
    model = tiny()
    x = torch.randn(4, 3, 32, 32)
    state = torch.get_rng_state()
    first = posthoc(model, spec, x, CLASSES)
    assert torch.equal(torch.get_rng_state(), state)
    again = posthoc(model, spec, x, CLASSES)
    assert torch.equal(first, again)
    other = posthoc(model, PosthocSpec(spec.method, num_samples=2, seed=1), x, CLASSES)
    assert not torch.equal(first, other)
    # and the global RNG's own state does not reach the maps
    torch.manual_seed(123)
    assert torch.equal(posthoc(model, spec, x, CLASSES), first)


# --- cost ---------------------------------------------------------------------------------------


def test_passes_per_map_by_method() -> None:
    k = 24
    expected = {
        "CAM": (0, 0),
        "GradCAM": (0, 1),
        "GradCAMpp": (0, 1),
        "ScoreCAM": (k + 1, 0),
        "SSCAM": (35 * k + 1, 0),
        "ISCAM": (10 * k + 1, 0),
        "SmoothGradCAMpp": (4, 4),
    }
    for name, passes in expected.items():
        assert POSTHOC_METHODS[name].passes_per_map(k) == passes, name
    assert POSTHOC_METHODS["SSCAM"].passes_per_map(k, num_samples=3) == (3 * k + 1, 0)
    assert POSTHOC_METHODS["SmoothGradCAMpp"].passes_per_map(k, num_samples=2) == (2, 2)


@pytest.mark.parametrize(
    ("spec", "passes"),
    [
        (PosthocSpec("ScoreCAM"), (25, 0)),  # K + 1
        (PosthocSpec("SSCAM", num_samples=2), (49, 0)),  # n K + 1
        (PosthocSpec("ISCAM", num_samples=2), (49, 0)),
        (PosthocSpec("SmoothGradCAMpp", num_samples=3), (3, 3)),
        (PosthocSpec("GradCAM"), (0, 1)),
        (PosthocSpec("CAM"), (0, 0)),
    ],
    ids=["ScoreCAM", "SSCAM", "ISCAM", "SmoothGradCAMpp", "GradCAM", "CAM"],
)
def test_passes_per_map_are_the_images_the_network_sees(spec, passes) -> None:
    """On a layer of K = 24 channels, counted: the images through the network per map, beyond
    the batch's own pass, and the backward passes (the hooked layer's gradients)."""
    model = tiny()
    x = torch.randn(2, 3, 32, 32)
    seen, grads = [], []
    # every backward pass to the layer starts at the linear layer (hooked before the batch's
    # pass, which sets up its backward hook)
    back = model.classifier.register_full_backward_hook(lambda m, gi, go: grads.append(len(go[0])))
    with PosthocMaps(model, spec, x[:1]) as maps:
        maps.logits(x)
        assert maps.channels == 24 and maps.passes_per_map() == passes
        count = model.register_forward_pre_hook(lambda m, args: seen.append(len(args[0])))
        try:
            maps.maps(x, torch.tensor([[0], [3]]))
        finally:
            count.remove()
            back.remove()
    assert (sum(seen) / 2, sum(grads) / 2) == passes


def test_passes_per_map_is_unknown_before_a_pass() -> None:
    model = tiny()
    with PosthocMaps(model, PosthocSpec("ScoreCAM"), torch.randn(1, 3, 32, 32)) as maps:
        assert maps.passes_per_map() is None and maps.channels is None


# --- names and options --------------------------------------------------------------------------


def _one_line(call, *args) -> str:
    with pytest.raises(ConfigError) as err:
        call(*args)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_method_names_any_case_and_the_refusals() -> None:
    for given in ("scorecam", "SCORECAM", "ScoreCAM", "sCoReCaM"):
        assert posthoc_method(given).name == "ScoreCAM"
    assert posthoc_method("gradcampp").name == "GradCAMpp"
    assert PosthocSpec("smoothgradcampp").info.name == "SmoothGradCAMpp"
    message = _one_line(posthoc_method, "ScoreCam2")
    assert message.startswith("torchcam.method: unknown torch-cam method 'ScoreCam2'; choose one")
    assert "ScoreCAM" in message and "FinerCAM" in message
    for name, why in (("LeGrad", "vision transformers"), ("refinecam", "two or more layers")):
        message = _one_line(posthoc_method, name)
        assert message.startswith("torchcam.method: torch-cam's ") and why in message
        assert "choose one of CAM, GradCAM" in message


def test_options_apply_only_to_their_methods_and_in_range() -> None:
    message = _one_line(PosthocSpec("ScoreCAM", num_samples=3).options)
    assert message == (
        "torchcam.num_samples: applies to SmoothGradCAMpp, SSCAM, ISCAM, not to ScoreCAM"
    )
    message = _one_line(PosthocSpec("GradCAM", batch_size=8).options)
    assert message.startswith("torchcam.batch_size: applies to ScoreCAM, SSCAM, ISCAM")
    for bad, key in (
        (PosthocSpec("SSCAM", num_samples=-1), "num_samples"),
        (PosthocSpec("SSCAM", num_samples=0), "num_samples"),
        (PosthocSpec("SSCAM", std=0.0), "std"),
        (PosthocSpec("SmoothGradCAMpp", std=-0.3), "std"),
        (PosthocSpec("ScoreCAM", batch_size=0), "batch_size"),
        (PosthocSpec("FinerCAM", num_references=-2), "num_references"),
    ):
        value = getattr(bad, key)
        assert _one_line(bad.options) == f"torchcam.{key} must be a finite number > 0, got {value}"
    assert _one_line(PosthocSpec("FinerCAM", gamma=-0.1).options) == (
        "torchcam.gamma must be a finite number >= 0, got -0.1"
    )
    for bad in (PosthocSpec("FinerCAM", gamma=float("nan")), PosthocSpec("SSCAM", std=math.inf)):
        assert "must be a finite number" in _one_line(bad.options)
    assert PosthocSpec("FinerCAM", gamma=0.0).options() == {"gamma": 0.0}
    assert PosthocSpec("ScoreCAM", batch_size=8).options() == {"batch_size": 8}
    assert PosthocSpec("CAM").options() == {}


def test_protocol_has_the_defaults_and_the_seed_of_noise_only() -> None:
    # batch_size is speed only; no noise, no seed
    assert PosthocSpec("ScoreCAM", batch_size=8, seed=5).protocol() == {
        "method": "ScoreCAM",
        "layer": None,
    }
    assert PosthocSpec("sscam", layer="backbone.6").protocol() == {
        "method": "SSCAM", "layer": "backbone.6", "num_samples": 35, "std": 2.0, "seed": 0,
    }  # fmt: skip
    assert PosthocSpec("SmoothGradCAMpp", num_samples=2, seed=3).protocol() == {
        "method": "SmoothGradCAMpp", "layer": None, "num_samples": 2, "std": 0.3, "seed": 3,
    }  # fmt: skip
    assert PosthocSpec("ISCAM").protocol() == {"method": "ISCAM", "layer": None, "num_samples": 10}
    assert PosthocSpec("FinerCAM", gamma=0.2).protocol() == {
        "method": "FinerCAM", "layer": None, "gamma": 0.2, "num_references": 3,
    }  # fmt: skip
    assert PosthocSpec("GradCAM", seed=7).protocol() == {"method": "GradCAM", "layer": None}
    with pytest.raises(ConfigError, match=r"^torchcam\.std must be a finite number > 0, got -1"):
        PosthocSpec("SSCAM", std=-1.0).protocol()  # checked there too
