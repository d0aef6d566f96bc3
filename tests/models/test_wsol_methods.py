"""The WSOL methods' network parts (models/methods.py): each mechanism exactly (ADL's drop mask,
importance map and rate; ACoL's erasing and fused maps; SPG's masks and loss), every method built
on tiny_gap, the refusals, and checkpoints that rebuild with their method."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cam_repro.evaluate.localizer import Localizer, forward_maps
from cam_repro.localize.cam import class_activation_maps
from cam_repro.models import build_model
from cam_repro.models.checkpoint import load_model, save_checkpoint
from cam_repro.models.methods import (
    ADL,
    ACoLNet,
    SPGNet,
    acol_erase,
    adl_attention,
    adl_drop_mask,
    method_problem,
    minmax_normalize,
    spg_aux_loss,
    spg_mask,
    spg_mask_loss,
)
from cam_repro.runtime.errors import ConfigError

TINY = {"arch": "tiny", "pool": "gap", "head_channels": 0, "dropout": 0.0}
TINY_HEAD = {**TINY, "head_channels": 8}  # with CAMNet's added conv: branch B copies it


def test_minmax_normalize_per_map_and_constant_maps() -> None:
    maps = torch.tensor([[[[1.0, 3.0], [2.0, 5.0]], [[4.0, 4.0], [4.0, 4.0]]]])  # (1, 2, 2, 2)
    out = minmax_normalize(maps)
    assert torch.equal(out[0, 0], torch.tensor([[0.0, 0.5], [0.25, 1.0]]))
    assert torch.equal(out[0, 1], torch.zeros(2, 2))  # constant: 0, not NaN


# --- ADL ----------------------------------------------------------------------------------


def test_adl_drop_mask_and_importance_map_exactly() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 5, 6, 6)
    attention = adl_attention(x)
    assert torch.equal(attention, x.mean(dim=1, keepdim=True))
    mask = adl_drop_mask(attention, 0.9)
    peak = attention.amax(dim=(1, 2, 3), keepdim=True)
    assert torch.equal(mask == 0, attention >= 0.9 * peak)  # zeros exactly there
    assert set(mask.unique().tolist()) <= {0.0, 1.0} and (mask == 0).any()
    layer = ADL(drop_rate=1.0, threshold=0.9).train()  # always the drop mask
    assert torch.equal(layer(x), x * mask)
    layer = ADL(drop_rate=0.0, threshold=0.9).train()  # always the importance map
    assert torch.equal(layer(x), x * torch.sigmoid(attention))


def test_adl_rate_one_draw_per_forward_and_identity_in_eval() -> None:
    # attention [0, 1]: the drop mask gives [0, 0], the importance map [0, sigmoid(1)], so the
    # second value says which map a forward pass chose
    x = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2)
    layer = ADL(drop_rate=0.75, threshold=0.9).train()
    n = 4000
    torch.manual_seed(0)
    dropped = [bool(layer(x)[0, 0, 0, 1] == 0) for _ in range(n)]
    torch.manual_seed(0)  # one torch.rand(()) per forward, drop iff it is < 0.75
    assert dropped == [bool(torch.rand(()) < 0.75) for _ in range(n)]
    # Binomial(4000, 0.75): sd of the fraction sqrt(0.75 * 0.25 / 4000) = 0.0068; 5 sd = 0.034
    # (a random seed fails this with probability < 1e-6)
    assert abs(sum(dropped) / n - 0.75) < 5 * math.sqrt(0.75 * 0.25 / n)
    layer.eval()
    before = torch.get_rng_state()
    assert layer(x) is x and torch.equal(torch.get_rng_state(), before)  # no draw in eval


def test_adl_network_hooks_state_dict_and_eval_identity() -> None:
    torch.manual_seed(1)
    plain = build_model(TINY, 3)
    torch.manual_seed(1)
    adl = build_model(TINY, 3, {"name": "adl"})
    assert adl.method == "adl" and not adl.method_aux and plain.method == "cam"
    hooked = [name for name, m in adl.named_modules() if m._forward_hooks]
    # tiny: after the second max pooling, the third conv's ReLU and the last ReLU
    assert hooked == ["backbone.7", "backbone.10", "backbone.13"]
    assert len(adl.adl) == 3 and all(layer.drop_rate == 0.75 for layer in adl.adl)
    assert plain.state_dict().keys() == adl.state_dict().keys()
    assert all(torch.equal(v, adl.state_dict()[k]) for k, v in plain.state_dict().items())
    x = torch.randn(2, 3, 32, 32)
    plain.eval(), adl.eval()
    assert all(not layer.training for layer in adl.adl)  # .eval() reaches them
    assert torch.equal(plain(x), adl(x))
    adl.train()
    with pytest.raises(ConfigError, match=r"method.adl_positions: .*'backbone.77'.*did you mean"):
        build_model(TINY, 3, {"name": "adl", "adl_positions": ["backbone.77"]})
    chosen = build_model(TINY, 3, {"name": "adl", "adl_positions": ["backbone.2"]})
    assert [n for n, m in chosen.named_modules() if m._forward_hooks] == ["backbone.2"]


def test_adl_vgg16_positions_with_and_without_batch_norm() -> None:
    for bn, want in ((False, [16, 22, 29]), (True, [23, 32, 42])):
        cfg = {"arch": "vgg16", "width_mult": 0.0625, "head_channels": 8, "batch_norm": bn}
        model = build_model(cfg, 2, {"name": "adl"})
        hooked = [n for n, m in model.named_modules() if m._forward_hooks]
        assert hooked == [f"backbone.{i}" for i in want]
        kinds = [type(model.get_submodule(n)).__name__ for n in hooked]
        assert kinds == ["MaxPool2d", "ReLU", "ReLU"]  # pool3, conv4_3's ReLU, conv5_3's ReLU


# --- ACoL ---------------------------------------------------------------------------------


def test_acol_erase_exactly() -> None:
    torch.manual_seed(2)
    features = torch.rand(2, 4, 5, 5) + 0.1
    cam = torch.randn(2, 5, 5)
    out = acol_erase(features, cam, 0.7)
    erased = minmax_normalize(cam)[:, None] >= 0.7
    assert torch.equal(out == 0, erased.expand_as(out))
    assert torch.equal(out, features * (~erased))
    assert torch.equal(acol_erase(features, cam[:, None], 0.7), out)  # (B, 1, h, w) too


def _erased_input(model: ACoLNet, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    seen = {}
    handles = [
        model.backbone.register_forward_hook(lambda _m, _i, out: seen.setdefault("base", out)),
        model.head_b.register_forward_pre_hook(lambda _m, inp: seen.setdefault("b", inp[0])),
    ]
    model(x, labels=labels)
    for h in handles:
        h.remove()
    base = seen["base"].detach()
    with torch.no_grad():
        cam = class_activation_maps(model.head(base), model.classifier.weight, labels[:, None])
    expected = base * (minmax_normalize(cam) < model.threshold)
    assert torch.equal(seen["b"].detach(), expected)
    return expected


def test_acol_erases_branch_a_map_of_the_true_class() -> None:
    torch.manual_seed(3)
    model = build_model(TINY_HEAD, 3, {"name": "acol"}).train()
    assert isinstance(model, ACoLNet) and model.method_aux and model.threshold == 0.7
    assert not torch.equal(model.head_b[0].weight, model.head[0].weight)  # fresh branch B
    x, labels = torch.randn(2, 3, 32, 32), torch.tensor([0, 2])
    first = _erased_input(model, x, labels)
    assert (first == 0).any() and (first != 0).any()
    with torch.no_grad():
        model.classifier.weight.neg_()  # branch A's maps change: so does the erasure
    second = _erased_input(model, x, labels)
    assert not torch.equal(first == 0, second == 0)
    logits, aux = model(x, labels=labels)
    assert logits.shape == (2, 3) and aux.dim() == 0
    _, logits_b = model.branches(x, labels)
    assert torch.allclose(aux, F.cross_entropy(logits_b, labels), atol=1e-6)
    model.eval()
    assert torch.equal(model(x, labels=labels), model(x))  # eval: branch A's logits only


def test_acol_localization_maps_fuse_both_branches() -> None:
    torch.manual_seed(4)
    model = build_model(TINY_HEAD, 3, {"name": "acol"}).eval()
    x, classes = torch.randn(2, 3, 32, 32), torch.tensor([[0, 1], [2, 0]])
    with torch.no_grad():
        fused = model.localization_maps(x, classes)
        base = model.backbone(x)
        cam_a = class_activation_maps(model.head(base), model.classifier.weight, classes)
        for j in range(2):
            erased = base * (minmax_normalize(cam_a[:, j : j + 1]) < 0.7)
            cam_b = class_activation_maps(
                model.head_b(erased), model.classifier_b.weight, classes[:, j : j + 1]
            )
            want = torch.maximum(minmax_normalize(cam_a[:, j : j + 1]), minmax_normalize(cam_b))
            assert torch.allclose(fused[:, j : j + 1], want, atol=1e-6)
    assert fused.shape == (2, 2, 8, 8) and fused.min() >= 0 and fused.max() <= 1
    assert not torch.allclose(fused, minmax_normalize(cam_a))  # branch B adds to A's map


# --- SPG ----------------------------------------------------------------------------------


def test_spg_mask_thresholds_fallback_and_background_wins() -> None:
    att = torch.zeros(3, 1, 8, 8)
    att[0, 0, :5] = 0.9  # 40 pixels > 0.7: foreground as they are
    att[0, 0, 5, :] = 0.3  # between: ignored
    att[1, 0, 0, :5] = 0.8  # only 5 > 0.7: fallback, > 0.7 * 0.8 = 0.56
    att[1, 0, 1, :] = 0.6
    att[1, 0, 2, :] = 0.5
    att[2] = 0.005  # max 0.005: the fallback's pixels are all < bg: background wins
    att[2, 0, 0, 0] = 0.0
    mask = spg_mask(att, 0.7, 0.01)
    assert torch.equal(mask[0, 0, :5], torch.ones(5, 8))
    assert torch.equal(mask[0, 0, 5], torch.full((8,), -1.0))
    assert torch.equal(mask[0, 0, 6:], torch.zeros(2, 8))
    assert torch.equal(mask[1, 0, 0], torch.tensor([1.0] * 5 + [0.0] * 3))
    assert torch.equal(mask[1, 0, 1], torch.ones(8))  # 0.6 > 0.56 (fallback foreground)
    assert torch.equal(mask[1, 0, 2], torch.full((8,), -1.0))  # 0.5: neither
    assert torch.equal(mask[2], torch.zeros(1, 8, 8))
    assert set(spg_mask(att, 0.7, 0.01, min_foreground=5)[1, 0, 1].tolist()) == {-1.0}


def test_spg_mask_loss_ignores_ignored_pixels() -> None:
    torch.manual_seed(5)
    logits = torch.randn(2, 1, 4, 4, requires_grad=True)
    mask = torch.randint(-1, 2, (2, 1, 4, 4)).float()
    used = mask >= 0
    want = F.binary_cross_entropy_with_logits(logits[used], mask[used])
    assert torch.allclose(spg_mask_loss(logits, mask), want, atol=1e-7)
    moved = logits.detach().clone()
    moved[~used] += 10.0  # ignored pixels do not count
    assert torch.equal(spg_mask_loss(moved, mask), spg_mask_loss(logits.detach(), mask))
    none = spg_mask_loss(logits, torch.full_like(mask, -1.0))
    none.backward()
    assert float(none.detach()) == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))


def test_spg_aux_loss_is_the_three_guided_losses() -> None:
    torch.manual_seed(6)
    att = torch.rand(2, 1, 8, 8)
    b1, b2, c = (torch.randn(2, 1, 8, 8) for _ in range(3))
    t = [[0.7, 0.01], [0.5, 0.05], [0.7, 0.1]]
    s1, s2 = torch.sigmoid(b1), torch.sigmoid(b2)
    want = (
        spg_mask_loss(b2, spg_mask(att, 0.7, 0.01))
        + spg_mask_loss(b1, spg_mask(s2, 0.5, 0.05))
        + spg_mask_loss(c, spg_mask((s1 + s2) / 2, 0.7, 0.1))
    )
    assert torch.allclose(spg_aux_loss(att, b1, b2, c, t), want, atol=1e-6)


def test_spg_network_taps_and_training_forward() -> None:
    torch.manual_seed(7)
    model = build_model(TINY, 3, {"name": "spg"}).train()
    assert isinstance(model, SPGNet) and model.method_aux
    assert model.taps == ("backbone.6", "backbone.10")  # the second and third conv's ReLU
    x, labels = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    logits, aux = model(x, labels=labels)
    assert logits.shape == (2, 3) and aux.dim() == 0 and math.isfinite(float(aux.detach()))
    (logits.sum() + aux).backward()
    for part in (model.spg_b1, model.spg_b2, model.spg_shared, model.spg_c):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    assert model._captured is None  # captured only during a training forward with labels
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model.logits_from_features(model.features(x)))


# --- building and refusing ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["cam", "has", "cutmix", "adl", "acol", "spg"])
def test_every_method_on_tiny_gap_trains_and_round_trips(method: str, tmp_path: Path) -> None:
    torch.manual_seed(8)
    model = build_model(TINY, 4, {"name": method}).train()
    assert model.method == method
    x, labels = torch.randn(2, 3, 32, 32), torch.tensor([0, 3])
    out = model(x, labels=labels) if model.method_aux else model(x)
    logits, aux = out if isinstance(out, tuple) else (out, torch.zeros(()))
    (F.cross_entropy(logits, labels) + aux).backward()
    assert all(p.grad is not None for p in model.parameters())
    path = tmp_path / "last.pt"
    config = {"model": TINY, "method": {"name": method}}
    save_checkpoint(path, {"model": model.state_dict(), "config": config, "classes": list("abcd")})
    loaded, _ = load_model(path)  # strict: a method's own layers must be there
    assert type(loaded) is type(model) and loaded.method == method
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    ("model_cfg", "method", "said"),
    [
        ({"arch": "vgg16", "modified": False}, "acol", r"use its -GAP variant \(model=vgg16_gap"),
        ({"arch": "alexnet", "modified": False}, "adl", "fully connected"),
        ({"arch": "torchvision", "name": "resnet18"}, "spg", "layers are not the zoo's"),
        ({"arch": "torchvision", "name": "resnet18"}, "adl", "needs method.adl_positions"),
        ({"arch": "file", "file": "net.pt2"}, "adl", "torch.export program"),
        ({"arch": "nin"}, "spg", "no default taps for arch nin"),
        ({"arch": "nin"}, "adl", "give method.adl_positions"),
    ],
)
def test_method_problem_refuses_in_one_line(model_cfg: dict, method: str, said: str) -> None:
    problem = method_problem(model_cfg, {"name": method})
    assert problem is not None and "\n" not in problem and f"method={method}" in problem
    assert re.search(said, problem)
    with pytest.raises(ConfigError, match=said):
        build_model(model_cfg, 2, {"name": method})


def test_method_problem_accepts() -> None:
    for name in ("cam", "has", "cutmix"):
        assert method_problem({"arch": "vgg16", "modified": False}, {"name": name}) is None
    assert method_problem({"arch": "nin"}, {"name": "acol"}) is None
    assert method_problem({"arch": "alexnet"}, {"name": "acol"}) is None  # alexnet_gap
    positions = {"name": "adl", "adl_positions": ["net.layer3"]}
    assert method_problem({"arch": "torchvision", "name": "resnet18"}, positions) is None
    for arch in ("tiny", "vgg16", "resnet50", "googlenet"):
        for name in ("acol", "spg", "adl"):
            assert method_problem({"arch": arch}, {"name": name}) is None


def test_cam_eval_localizer_takes_acol_fused_maps() -> None:
    torch.manual_seed(9)
    model = build_model(TINY_HEAD, 3, {"name": "acol"}).eval()
    x, labels = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    out = forward_maps(Localizer(model, "cam", "none", torch.device("cpu")), x, labels, topk=2)
    with torch.no_grad():
        assert torch.equal(out.raw, model.localization_maps(x, out.classes))
        assert torch.equal(out.logits, model(x))
