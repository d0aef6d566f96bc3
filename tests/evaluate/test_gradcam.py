"""Grad-CAM (cam_repro/localize/gradcam.py): the identity with CAM on GAP networks, the default
layer, hooks and graphs that do not outlive a call, batching, and cam-eval / cam-report with
localizer=gradcam."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest
import torch
from helpers import eval_cfg
from metrics_records import write_record
from tolerances import assert_close_at_scale, assert_sums_close
from torch import Tensor, nn

from cam_repro.cam import GradCAMLayerError, class_activation_maps, grad_cam
from cam_repro.evaluate.localizer import Localizer, localize_batch
from cam_repro.evaluate.loop import evaluate_run
from cam_repro.localize.gradcam import gradcam_layer
from cam_repro.localize.layers import hooks_on
from cam_repro.models import build_model
from cam_repro.present.report import write_report
from cam_repro.runtime.errors import ConfigError


def vgg16_original(classes: int = 10) -> nn.Module:
    return build_model({"arch": "vgg16", "modified": False, "width_mult": 0.125}, classes).eval()


def live_tensors() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if issubclass(type(obj), Tensor))


# --- the math -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "size"),
    [
        ({"arch": "tiny", "head_channels": 0}, 64),
        ({"arch": "vgg16", "width_mult": 0.125}, 64),
        ({"arch": "alexnet", "pool": "gmp", "width_mult": 0.25}, 128),
    ],
)
def test_on_cam_networks_grad_cam_is_relu_cam_over_hw(cfg, size: int) -> None:
    """y^c = sum_k w_k^c mean_xy f_k + b_c, so alpha_k^c = w_k^c / (h w) and Grad-CAM of the last
    conv map is ReLU(M_c) / (h w) (Selvaraju et al. 2017, eq. 1-2, on Zhou et al.'s eq. 2). With
    GMP too: the max's gradient is 1 at one pixel of each map, its mean 1 / (h w)."""
    model = build_model(cfg, num_classes=5).eval()
    with torch.no_grad():
        nn.init.normal_(model.classifier.weight)  # maps with both signs
        nn.init.normal_(model.classifier.bias)
    x = torch.randn(3, 3, size, size)
    classes = torch.tensor([[0, 4], [2, 1], [3, 3]])
    with torch.no_grad():
        f = model.features(x)
    h, w = f.shape[-2:]
    cam = class_activation_maps(f, model.classifier.weight, classes)
    assert (cam < 0).any() and (cam > 0).any()
    maps = grad_cam(model, x, classes)
    assert maps.shape == (3, 2, h, w) and maps.dtype == torch.float32
    # the terms: w_k f_k over K channels, alpha_k a mean of h w gradients (GAP)
    scale = class_activation_maps(f.abs(), model.classifier.weight.abs(), classes) / (h * w)
    terms = f.shape[1] + h * w
    assert_sums_close(maps, cam.clamp_min(0) / (h * w), scale, terms)
    # the same through a hook on the module whose output is f (tiny: no head conv)
    if cfg["arch"] == "tiny":
        hooked = grad_cam(model, x, classes, layer="backbone.13")
        assert_sums_close(hooked, maps, scale, terms)


def test_by_hand_on_a_one_layer_network() -> None:
    """A = x itself (one channel, 2 x 2), y_c = v_c mean(A) + u_c max(A), u = (0, 3): alpha_c =
    v_c / 4 + u_c / 4 (the max's gradient is 1 at the argmax only)."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.maps = nn.Identity()
            self.v = nn.Parameter(torch.tensor([2.0, -1.0]))

        def forward(self, x: Tensor) -> Tensor:
            a = self.maps(x)  # (B, 1, 2, 2)
            pooled = a.mean(dim=(2, 3))  # (B, 1)
            peak = a.flatten(1).max(dim=1, keepdim=True).values
            return pooled * self.v + torch.tensor([0.0, 3.0]) * peak  # (B, 2)

    x = torch.tensor([[[[1.0, -2.0], [3.0, 0.5]]]])
    maps = grad_cam(Net(), x, torch.tensor([[0, 1]]), layer="maps")
    # class 0: alpha = 2 / 4 -> ReLU(0.5 A); class 1: alpha = (-1 + 3) / 4 = 0.5 -> ReLU(0.5 A)
    half = [[0.5, 0.0], [1.5, 0.25]]
    assert maps.tolist() == [[half, half]]


def test_vgg16_original_default_layer_is_relu5_3() -> None:
    model = vgg16_original()
    assert gradcam_layer(model) == "backbone.29"  # the ReLU after conv5_3
    x = torch.randn(2, 3, 64, 64)
    classes = torch.tensor([[1, 7], [3, 3]])
    maps = grad_cam(model, x, classes)
    assert maps.shape == (2, 2, 4, 4)  # input / 16: conv5_3 before the last max pool
    # by hand, without hooks: relu5_3's output, then the rest of the network
    a = model.backbone[:30](x).detach().requires_grad_(True)
    logits = model.classifier(torch.flatten(model.avgpool(model.backbone[30](a)), 1))
    for j in range(2):
        (g,) = torch.autograd.grad(logits.gather(1, classes[:, j : j + 1]).sum(), a,
                                   retain_graph=True)  # fmt: skip
        weighted = g.mean(dim=(2, 3))[:, :, None, None] * a  # (B, K, h, w)
        expected = weighted.sum(dim=1).clamp_min(0)
        scale = weighted.abs().sum(dim=1)
        assert_sums_close(maps[:, j], expected.detach(), scale.detach(), a.shape[1] + 16)
    assert maps.amax() > 0
    # conv5_3 itself, before its in-place ReLU: its own values are differentiated
    conv = grad_cam(model, x, classes, layer="backbone.28")
    assert conv.shape == (2, 2, 4, 4) and not torch.equal(conv, maps)


def test_vgg16_original_at_224_px_gives_14x14() -> None:
    model = vgg16_original(4)
    maps = grad_cam(model, torch.randn(1, 3, 224, 224), torch.tensor([2]))
    assert maps.shape == (1, 1, 14, 14)


def test_unknown_layer_is_one_line_naming_it() -> None:
    model = vgg16_original()
    with pytest.raises(GradCAMLayerError, match=r"layer 'conv5_3' is not a module of FCNet") as err:
        grad_cam(model, torch.randn(1, 3, 64, 64), torch.tensor([0]), layer="conv5_3")
    assert "\n" not in str(err.value) and "backbone.29" in str(err.value)
    assert isinstance(err.value, ValueError)


# --- hooks, graphs, gradients -------------------------------------------------------------------


def test_no_hook_and_no_tensor_outlives_a_call() -> None:
    model = vgg16_original()
    x = torch.randn(2, 3, 64, 64)
    classes = torch.tensor([[0, 1], [2, 3]])
    grad_cam(model, x, classes)  # warm-up
    assert hooks_on(model) == 0
    before = live_tensors()
    for _ in range(3):
        grad_cam(model, x, classes)
    assert live_tensors() == before  # nothing kept from the calls
    # errors: a layer without a (B, K, h, w) output, and a forward pass that fails
    with pytest.raises(GradCAMLayerError, match=r"layer 'classifier\.0' gives a tensor of shape"):
        grad_cam(model, x, classes, layer="classifier.0")
    assert hooks_on(model) == 0
    with pytest.raises(RuntimeError):
        grad_cam(model, torch.randn(2, 4, 64, 64), classes, layer="backbone.29")  # 4 channels
    assert hooks_on(model) == 0


def test_parameters_grad_and_callers_grad_mode_are_untouched() -> None:
    model = vgg16_original()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        maps = grad_cam(model, x, torch.tensor([1, 2]))
        assert not torch.is_grad_enabled()  # the caller's no_grad holds after the call
    assert maps.amax() > 0 and not maps.requires_grad
    assert all(p.grad is None for p in model.parameters())
    assert x.grad is None and not x.requires_grad
    assert model.training is False


def test_a_batch_equals_each_image_alone_and_k_classes_each_class_alone() -> None:
    model = vgg16_original()
    x = torch.randn(3, 3, 64, 64)
    classes = torch.tensor([[0, 5, 9], [1, 1, 2], [8, 3, 4]])
    maps = grad_cam(model, x, classes)
    for i in range(3):
        alone = grad_cam(model, x[i : i + 1], classes[i : i + 1])
        assert_close_at_scale(maps[i : i + 1], alone)
    for j in range(3):
        single = grad_cam(model, x, classes[:, j])  # (B,) classes: k = 1
        assert_close_at_scale(maps[:, j : j + 1], single)


def test_localizer_gradcam_upsamples_to_the_frame() -> None:
    model = vgg16_original(4)
    loc = Localizer(model, "gradcam", "none", torch.device("cpu"))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():  # as cam-eval calls it
        out = localize_batch(loc, x, torch.tensor([0, 3]), topk=2)
    assert out.maps.shape == (2, 3, 64, 64) and out.features is None
    assert out.wsol_maps.shape == (2, 64, 64) and (out.maps >= 0).all()
    with pytest.raises(GradCAMLayerError, match="'nope'"):
        Localizer(model, "gradcam", "none", torch.device("cpu"), layer="nope")


# --- cam-eval and cam-report --------------------------------------------------------------------


def test_cam_eval_gradcam_end_to_end_and_cam_report(
    trained: Path, small_data: Path, tmp_path: Path
) -> None:
    run = tmp_path / "gradcam"
    metrics = evaluate_run(
        eval_cfg(f"checkpoint={trained}", "localizer=gradcam", "sweep=true"), run
    )
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert metrics["paper_name"] == "Grad-CAM on Tiny-GAP"
    assert metrics["protocol"]["localizer"] == "gradcam"
    assert metrics["protocol"]["gradcam_layer"] is None
    assert metrics["num_images"] == 48 and 0 <= metrics["loc_top1_err"] <= 100
    assert 0 < metrics["maxboxacc_v2"] <= 100
    assert (run / "table.md").read_text().splitlines()[2].startswith("| Grad-CAM on Tiny-GAP |")

    # the original VGG16 (no checkpoint): the row of the brief's example
    vgg = evaluate_run(
        eval_cfg("model=vgg16", "model.width_mult=0.125", "localizer=gradcam", "data=synthetic",
                 f"data.root={small_data}", "data.image_size=64", "data.resize_size=64",
                 "maxboxacc=false"),
        tmp_path / "vgg",
    )  # fmt: skip
    assert vgg["paper_name"] == "Grad-CAM on VGGnet"

    # a named layer is recorded and shown as a protocol change
    named = evaluate_run(
        eval_cfg(f"checkpoint={trained}", "localizer=gradcam", "gradcam_layer=backbone.13",
                 "maxboxacc=false"),
        tmp_path / "named",
    )  # fmt: skip
    assert named["protocol"]["gradcam_layer"] == "backbone.13"
    # backbone.13 gives f itself on this network (no head conv): the same maps, the same boxes
    assert named["loc_top1_err"] == metrics["loc_top1_err"]

    done = write_report([run, tmp_path / "vgg", tmp_path / "named"], tmp_path / "report")
    assert done["groups"] == 3
    table2 = (tmp_path / "report" / "table2.md").read_text()
    assert f"| Grad-CAM on Tiny-GAP | {metrics['loc_top1_err']:.2f} |" in table2
    assert "| Grad-CAM on Tiny-GAP (gradcam layer backbone.13) |" in table2
    assert "| Grad-CAM on VGGnet |" in table2
    write_report([run], tmp_path / "paper", paper="true")  # no paper numbers for Grad-CAM
    row = next(line for line in (tmp_path / "paper" / "table2.md").read_text().splitlines()
               if line.startswith("| Grad-CAM on Tiny-GAP |"))  # fmt: skip
    assert row.endswith("| - | - | [1] |")

    # threshold_from: another localizer's or another layer's thresholds are refused
    with pytest.raises(ConfigError, match="localizer=gradcam, this run with localizer=cam"):
        evaluate_run(eval_cfg(f"checkpoint={trained}", f"threshold_from={run}"), tmp_path / "x")
    with pytest.raises(ConfigError, match="gradcam_layer=null, this run with gradcam_layer=back"):
        evaluate_run(
            eval_cfg(f"checkpoint={trained}", "localizer=gradcam", "gradcam_layer=backbone.13",
                     f"threshold_from={run}"),
            tmp_path / "x",
        )  # fmt: skip


def test_bad_gradcam_layer_is_a_one_line_config_error(trained: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^gradcam_layer: layer 'relu5_3' is not a module") as e:
        evaluate_run(
            eval_cfg(f"checkpoint={trained}", "localizer=gradcam", "gradcam_layer=relu5_3"),
            tmp_path / "a",
        )
    assert "\n" not in str(e.value) and not (tmp_path / "a" / "metrics.json").exists()
    with pytest.raises(ConfigError, match="gradcam_layer: applies to localizer=gradcam only"):
        evaluate_run(eval_cfg(f"checkpoint={trained}", "gradcam_layer=backbone.13"), tmp_path / "b")


def test_cam_report_compares_grad_cam_rows_only_with_grad_cam_rows(tmp_path: Path) -> None:
    """GAP - GMP for CAM and for Grad-CAM of the same networks: two comparisons, none across."""
    for name, variant, pool, loc in [
        ("Tiny-GAP", "tiny_gap", "gap", 20.0),
        ("Tiny-GMP", "tiny_gmp", "gmp", 30.0),
        ("Grad-CAM on Tiny-GAP", "tiny_gap", "gap", 25.0),
        ("Grad-CAM on Tiny-GMP", "tiny_gmp", "gmp", 45.0),
    ]:
        run = tmp_path / "runs" / name.replace(" ", "_")
        localizer = "gradcam" if name.startswith("Grad-CAM") else "cam"
        metrics = {
            "cls_top1_err": 10.0, "cls_top5_err": 1.0, "loc_top1_err": loc,
            "loc_top5_err": loc, "gt_known_loc_err": loc, "maxboxacc_v2": 100 - loc,
            "variant": variant, "paper_name": name, "pool": pool, "map_size": "8x8", "seed": 0,
            "checkpoint_sha256": None,
        }  # fmt: skip
        protocol = {"localizer": localizer, "gradcam_layer": None}
        write_record(run, "eval", data={"kind": "synthetic", "evidence": "parts"},
                     protocol=protocol, **metrics)  # fmt: skip
    done = write_report([tmp_path / "runs"], tmp_path / "out")
    assert done["groups"] == 4 and done["comparisons"] == 2
    text = (tmp_path / "out" / "comparisons.md").read_text()
    assert "| Tiny-GAP - Tiny-GMP | 0 | +0.00 (n=1) | -10.00 (n=1) |" in text
    assert (
        "| Grad-CAM on Tiny-GAP - Grad-CAM on Tiny-GMP | 0 | +0.00 (n=1) | -20.00 (n=1) |" in text
    )


def test_cam_eval_localizer_runs_one_forward_pass_per_batch() -> None:
    """The localizer's scores and Grad-CAM maps come from one pass (kept between `logits` and
    `raw_maps`), equal to grad_cam's; a second `raw_maps` makes a pass of its own."""
    model = build_model({"arch": "vgg16", "modified": False, "width_mult": 0.125}, 5).eval()
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    loc = Localizer(model, "gradcam", "none", torch.device("cpu"))
    x = torch.randn(2, 3, 64, 64)
    logits = loc.logits(x)
    classes = logits.topk(2, dim=1).indices
    maps = loc.raw_maps(x, classes)
    assert len(calls) == 1
    with torch.no_grad():
        torch.testing.assert_close(logits, model(x))
    torch.testing.assert_close(maps, grad_cam(model, x, classes))
    torch.testing.assert_close(loc.raw_maps(x, classes), maps)  # the pass was freed: a new one
