"""cam-features (cam_repro/features/): feature extraction, the linear classifier and its CAMs, the
crops (the top-1 CAM's box, the ground-truth box), the caches, and the run end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import write_classic, write_cub
from helpers import read_csv
from omegaconf import DictConfig
from PIL import Image
from tolerances import assert_close_at_scale
from torch import nn
from torchvision.transforms import v2

import cam_repro.evaluate.network as network_module
import cam_repro.features.run as run_module
from cam_repro.apps import compose
from cam_repro.boxes import box_from_cam
from cam_repro.cam import class_activation_maps
from cam_repro.data import data_config, read_split
from cam_repro.data.dataset import LocalizationDataset, crop_image
from cam_repro.data.samples import DataSplit, Sample
from cam_repro.features.cache import PartFeatures, load_cache, save_cache
from cam_repro.features.extract import feature_extractor, pool_features
from cam_repro.features.linear import (
    LinearClassifier,
    fit_linear,
    l2_normalized,
    load_classifier,
    per_class_accuracy,
    save_classifier,
)
from cam_repro.features.run import combine, features_run, gt_crop_boxes
from cam_repro.localize.cam import LinearHead
from cam_repro.models import build_model
from cam_repro.models.checkpoint import load_checkpoint, save_checkpoint
from cam_repro.models.heads import CAMNet
from cam_repro.runtime.errors import ConfigError, InputFileError

RUN = [
    "runtime.device=cpu",
    "runtime.progress=false",
    "runtime.threads=1",
    "data.num_workers=0",
]
CLASSIC = ["model=tiny_gap", "data.image_size=32", "data.layout=classic"]


def features_cfg(*overrides: str) -> DictConfig:
    return compose("features", [*RUN, *overrides])


@pytest.fixture(autouse=True)
def _keep_threads():
    """runtime.threads=1 sets torch's threads for the whole process: give them back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# --- feature extraction -------------------------------------------------------------------------


def test_pool_features_by_hand() -> None:
    maps = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[-1.0, 0.0], [5.0, -6.0]]]])  # (1, 2, 2, 2)
    torch.testing.assert_close(pool_features(maps, "gap"), torch.tensor([[2.5, -0.5]]))
    torch.testing.assert_close(pool_features(maps, "avgpool"), torch.tensor([[2.5, -0.5]]))
    torch.testing.assert_close(pool_features(maps, "gmp"), torch.tensor([[4.0, 5.0]]))


def test_gap_features_are_what_the_networks_own_layer_reads(model_cfg) -> None:
    net = build_model(model_cfg("tiny_gap", "model.width_mult=0.25"), 3).eval()
    x = torch.randn(2, 3, 32, 32)
    vectors, maps = feature_extractor(net, "gap", "tiny")(x)
    with torch.no_grad():
        own = net.features(x)
        logits = net(x)
    assert vectors.shape == (2, 24)  # 96 x 0.25 units of the last conv
    torch.testing.assert_close(maps, own)
    torch.testing.assert_close(vectors, net.pool(own))
    w, b = net.classifier.weight, net.classifier.bias
    assert_close_at_scale(logits, vectors @ w.T + b, rtol=1e-5)


def test_gmp_features_are_the_spatial_max(model_cfg) -> None:
    net = build_model(model_cfg("tiny_gmp", "model.width_mult=0.25"), 3).eval()
    x = torch.randn(2, 3, 32, 32)
    vectors, _ = feature_extractor(net, "gmp", "tiny")(x)
    with torch.no_grad():
        own = net.features(x)
        logits = net(x)
    torch.testing.assert_close(vectors, own.amax(dim=(2, 3)))
    w, b = net.classifier.weight, net.classifier.bias
    assert_close_at_scale(logits, vectors @ w.T + b, rtol=1e-5)


@pytest.mark.parametrize("variant", ["alexnet", "vgg16"])
def test_fc7_is_the_input_of_the_last_fc_layer(model_cfg, variant: str) -> None:
    net = build_model(model_cfg(variant, "model.width_mult=0.0625"), 4).eval()
    x = torch.randn(2, 3, 64, 64)
    seen = []
    net.classifier[-1].register_forward_hook(lambda m, inputs, out: seen.append(inputs[0]))
    with torch.no_grad():
        logits = net(x)
        vectors, maps = feature_extractor(net, "fc7", variant)(x)
    assert maps is None
    assert vectors.shape == (2, 256)  # 4096 x 0.0625 hidden units
    assert (vectors >= 0).all()  # after fc7's ReLU
    torch.testing.assert_close(vectors, seen[0])
    last = net.classifier[-1]
    assert_close_at_scale(logits, vectors @ last.weight.T + last.bias, rtol=1e-5)


@pytest.mark.parametrize(("arch", "k"), [("googlenet", 128), ("resnet50", 256)])
def test_avgpool_of_the_originals_ending_in_gap(arch: str, k: int) -> None:
    net = build_model({"arch": arch, "modified": False, "width_mult": 0.125}, 4).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        vectors, maps = feature_extractor(net, "avgpool", arch)(x)
        logits = net(x)
    assert vectors.shape == (2, k)  # 1024 (GoogLeNet) or 2048 (ResNet-50) x 0.125
    assert maps is not None and maps.shape[:2] == (2, k)
    w, b = net.classifier.weight, net.classifier.bias
    assert_close_at_scale(logits, vectors @ w.T + b)


def test_features_a_network_lacks_are_clear_errors(model_cfg) -> None:
    tiny = build_model(model_cfg("tiny_gap", "model.width_mult=0.25"), 3)
    alexnet = build_model(model_cfg("alexnet", "model.width_mult=0.0625"), 3)
    googlenet_gap = build_model(model_cfg("googlenet_gap", "model.width_mult=0.125"), 3)
    with pytest.raises(ConfigError, match="features=fc7: tiny has no fully connected layers"):
        feature_extractor(tiny, "fc7", "tiny")
    with pytest.raises(ConfigError, match="features=gap: alexnet has no globally pooled"):
        feature_extractor(alexnet, "gap", "alexnet")
    with pytest.raises(ConfigError, match=r"features=avgpool .* googlenet_gap is modified for CAM"):
        feature_extractor(googlenet_gap, "avgpool", "googlenet_gap")
    with pytest.raises(ConfigError, match="features must be one of"):
        feature_extractor(tiny, "pool5", "tiny")


@pytest.mark.parametrize("variant", ["tiny_gap", "tiny_gmp"])
def test_avgpool_of_any_modified_network_is_a_clear_error(tmp_path: Path, variant: str) -> None:
    """Tiny-GAP/GMP are modified networks without an added conv (model.head_channels=0): avgpool
    is the originals' pooled vector, so, as for GoogLeNet-GAP, the answer is features=gap/gmp
    (for Tiny-GMP the mean is not even what its own layer reads)."""
    root = write_classic(tmp_path / "classic")
    cfg = features_cfg(f"model={variant}", "data.image_size=32", "data.layout=classic",
                       f"data.root={root}", "features=avgpool")  # fmt: skip
    with pytest.raises(ConfigError, match="features=avgpool"):
        features_run(cfg, tmp_path / "run")


# --- LinearHead ---------------------------------------------------------------------------------


def test_linear_head_of_a_network_is_its_last_layer(model_cfg) -> None:
    for variant in ("tiny_gap", "tiny_gmp"):
        net = build_model(model_cfg(variant, "model.width_mult=0.25"), 3).eval()
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            f = net.features(x)
            head = LinearHead.of_network(net)
            assert_close_at_scale(head.logits(f), net(x), rtol=1e-5)
        assert head.pool == variant[-3:]
        classes = torch.tensor([[2, 0], [1, 1]])
        torch.testing.assert_close(
            head.cams(f, classes), class_activation_maps(f, net.classifier.weight, classes)
        )


def test_linear_head_l2_normalize_by_hand() -> None:
    # f (1, 2, 1, 2): channel 0 averages to 3, channel 1 to 4, so the unit vector is (0.6, 0.8)
    f = torch.tensor([[[[2.0, 4.0]], [[4.0, 4.0]]]])
    w = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    b = torch.tensor([0.5, -1.0, 0.0])
    plain = LinearHead(w, b)
    unit = LinearHead(w, b, l2_normalize=True)
    torch.testing.assert_close(plain.logits(f), torch.tensor([[3.5, 7.0, 7.0]]))
    torch.testing.assert_close(unit.logits(f), torch.tensor([[1.1, 0.6, 1.4]]))
    classes = torch.tensor([[1, 2]])
    # M_1 = 2 f_1 = (8, 8); M_2 = f_0 + f_1 = (6, 8): unchanged by the normalisation
    want = torch.tensor([[[[8.0, 8.0]], [[6.0, 8.0]]]])
    torch.testing.assert_close(plain.cams(f, classes), want)
    torch.testing.assert_close(unit.cams(f, classes), want)


def test_linear_head_l2_normalize_on_a_network(model_cfg) -> None:
    net = build_model(model_cfg("tiny_gap", "model.width_mult=0.25"), 3).eval()
    with torch.no_grad():
        f = net.features(torch.randn(2, 3, 32, 32))
    w, b = net.classifier.weight.detach(), net.classifier.bias.detach()
    head = LinearHead(w, b, "gap", l2_normalize=True)
    pooled = f.mean(dim=(2, 3))
    want = (pooled / pooled.norm(dim=1, keepdim=True)) @ w.T + b
    assert_close_at_scale(head.logits(f), want, rtol=1e-5)
    classes = torch.tensor([[0, 1], [2, 0]])
    torch.testing.assert_close(head.cams(f, classes), LinearHead(w, b).cams(f, classes))


# --- the linear classifier ----------------------------------------------------------------------


def clusters(per_class: int, seed: int, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points around each centre (row), 0.3 apart at most per coordinate: far apart classes."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([c + rng.uniform(-0.3, 0.3, (per_class, len(c))) for c in centres])
    return x.astype(np.float32), np.repeat(np.arange(len(centres)), per_class)


@pytest.mark.parametrize("kind", ["svm", "logistic"])
def test_separable_classes_are_all_right(kind: str) -> None:
    centres = 10 * np.eye(3) + 1  # (11, 1, 1), (1, 11, 1), (1, 1, 11)
    x, y = clusters(20, 0, centres)
    tx, ty = clusters(10, 1, centres)
    clf = fit_linear(x, y, ["a", "b", "c"], kind=kind, C=1.0)
    assert clf.weight.shape == (3, 3) and clf.weight.dtype == np.float32
    assert clf.bias.shape == (3,) and np.isfinite(clf.bias).all()
    assert clf.classes == ["a", "b", "c"] and clf.kind == kind and clf.l2_normalize
    assert (clf.predict(x) == y).all()
    assert (clf.predict(tx) == ty).all()
    # scores are the normalised features through the layer
    np.testing.assert_allclose(
        clf.scores(tx), l2_normalized(tx) @ clf.weight.T + clf.bias, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("kind", ["svm", "logistic"])
def test_two_classes_get_two_rows_that_agree_with_sklearn(kind: str) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] + 0.3 * rng.normal(size=60) > 0).astype(np.int64)  # overlapping
    test = rng.normal(size=(40, 4)).astype(np.float32)
    clf = fit_linear(x, y, ["neg", "pos"], kind=kind, C=0.5, l2_normalize=False)
    ref = (LinearSVC(C=0.5, max_iter=5000, random_state=0) if kind == "svm"
           else LogisticRegression(C=0.5, max_iter=5000, random_state=0))  # fmt: skip
    ref.fit(x.astype(np.float64), y)
    assert clf.weight.shape == (2, 4) and clf.bias.shape == (2,)
    # class 1's score minus class 0's is sklearn's decision function
    # (an optimiser's output: agreement at the weights' scale, not to fixed digits near 0)
    ours = np.append(clf.weight[1] - clf.weight[0], clf.bias[1] - clf.bias[0])
    assert_close_at_scale(ours, np.append(ref.coef_[0], ref.intercept_[0]))
    pred = clf.predict(test)
    assert 0 < pred.sum() < len(pred)  # both classes are predicted
    np.testing.assert_array_equal(pred, ref.predict(test.astype(np.float64)))


@pytest.mark.parametrize(
    ("num_classes", "present"), [(4, [0, 1, 3]), (3, [0, 2])], ids=["multi", "binary"]
)
def test_a_class_missing_from_train_never_wins(num_classes: int, present: list[int]) -> None:
    centres = 10 * np.eye(num_classes) + 1
    x, y = clusters(15, 0, centres[present])
    y = np.array(present)[y]
    classes = [f"c{i}" for i in range(num_classes)]
    clf = fit_linear(x, y, classes, kind="svm")
    missing = next(i for i in range(num_classes) if i not in present)
    assert clf.weight.shape == (num_classes, num_classes)
    assert (clf.weight[missing] == 0).all() and np.isfinite(clf.bias[missing])
    # points right at the missing class's centre, or anywhere, still go to a fitted class
    probe, _ = clusters(10, 2, centres)
    probe = np.concatenate([probe, np.random.default_rng(3).normal(size=(50, num_classes))])
    assert set(clf.predict(probe).tolist()) <= set(present)
    assert (clf.predict(x) == y).all()


def _svm_objective(clf, x: np.ndarray, y: np.ndarray, C: float) -> float:  # noqa: N803
    """LinearSVC's primal objective (OvR squared hinge, the bias regularised) of a fit."""
    w = np.concatenate([clf.weight, clf.bias[:, None]], axis=1).astype(np.float64)
    xa = np.concatenate([l2_normalized(x), np.ones((len(x), 1))], axis=1)
    signs = np.where(y[:, None] == np.arange(len(w))[None, :], 1.0, -1.0)
    margin = np.maximum(0.0, 1.0 - signs * (xa @ w.T))
    return 0.5 * (w * w).sum() + C * (margin * margin).sum()


@pytest.mark.parametrize("num_classes", [2, 5])
def test_the_lbfgs_solver_solves_linearsvcs_problem(num_classes: int) -> None:
    """solver=lbfgs (torch, every class at once) reaches liblinear's optimum: the same objective,
    the same predictions on overlapping classes. Two solvers that each stop within a tolerance of
    the optimum agree on the objective, not to a fixed number of digits in the weights (a flat
    optimum moves the weights by more than it moves the objective: 3e-3 apart on one CPU while the
    objectives agreed to 1e-4), so the weights are checked through the objective only."""
    rng = np.random.default_rng(0)
    means = rng.normal(size=(num_classes, 16))
    y = rng.integers(0, num_classes, 400)
    x = np.maximum(means[y] + 1.5 * rng.normal(size=(400, 16)), 0).astype(np.float32)
    names = [str(c) for c in range(num_classes)]
    ref = fit_linear(x, y, names, "svm", C=0.5, solver="liblinear")
    ours = fit_linear(x, y, names, "svm", C=0.5, solver="lbfgs")
    assert ref.solver == "liblinear" and ours.solver == "lbfgs"
    if num_classes == 2:  # one problem: the two rows are each other's negatives, like sklearn's
        np.testing.assert_allclose(ours.weight[0], -ours.weight[1])
    # (two classes: both rows count the one problem, doubling both objectives alike)
    want = _svm_objective(ref, x, y, 0.5)
    assert abs(_svm_objective(ours, x, y, 0.5) - want) <= 1e-4 * want
    assert (ours.predict(x) == ref.predict(x)).mean() >= 0.99
    assert 0.3 < (ours.predict(x) == y).mean() < 1.0  # overlapping: a real fit, not a trivial one


@pytest.mark.parametrize("solver", ["liblinear", "lbfgs"])
def test_a_fit_stopped_by_max_iter_is_logged(solver: str, caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    y = rng.integers(0, 3, 200)
    fit_linear(x, y, ["a", "b", "c"], solver=solver, max_iter=2)
    assert "did not converge in classifier.max_iter=2" in caplog.text
    caplog.clear()
    fit_linear(x, y, ["a", "b", "c"], solver=solver)
    assert "did not converge" not in caplog.text


def test_solver_auto_picks_lbfgs_for_large_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    import cam_repro.features.linear as linear

    x, y = clusters(10, 0, 10 * np.eye(3) + 1)
    assert fit_linear(x, y, ["a", "b", "c"]).solver == "liblinear"
    monkeypatch.setattr(linear, "LBFGS_FROM", 10)
    assert fit_linear(x, y, ["a", "b", "c"]).solver == "lbfgs"
    assert fit_linear(x, y, ["a", "b", "c"], kind="logistic").solver == "lbfgs"


def test_one_class_in_train_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="1 class"):
        fit_linear(np.ones((4, 2), np.float32), np.zeros(4, np.int64), ["a", "b"])


def test_per_class_accuracy_by_hand() -> None:
    pred = np.array([0, 1, 1, 2, 0])
    labels = np.array([0, 1, 2, 2, 1])
    acc = per_class_accuracy(pred, labels, 4)
    # class 0: 1 of 1; class 1: 1 of 2; class 2: 1 of 2; class 3: no test image
    np.testing.assert_array_equal(acc[:3], [100.0, 50.0, 50.0])
    assert np.isnan(acc[3])


def test_classifier_file_round_trip(tmp_path: Path) -> None:
    clf = LinearClassifier(
        np.arange(6, dtype=np.float32).reshape(2, 3), np.array([0.5, -1e6], np.float32),
        ["n01440764", "n01443537"], False, "logistic", 0.25,
    )  # fmt: skip
    save_classifier(tmp_path / "classifier.npz", clf)
    back = load_classifier(tmp_path / "classifier.npz")
    np.testing.assert_array_equal(back.weight, clf.weight)
    np.testing.assert_array_equal(back.bias, clf.bias)
    assert (back.classes, back.l2_normalize, back.kind, back.C) == (
        ["n01440764", "n01443537"], False, "logistic", 0.25,
    )  # fmt: skip
    assert back.weight.dtype == np.float32
    assert [p.name for p in tmp_path.iterdir()] == ["classifier.npz"]  # no temp file left


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated", "no weight"])
def test_a_corrupt_classifier_file_is_an_error_naming_it(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "classifier.npz"
    clf = LinearClassifier(np.ones((2, 3), np.float32), np.zeros(2, np.float32), ["a", "b"],
                           True, "svm", 1.0)  # fmt: skip
    save_classifier(path, clf)
    whole = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"this is not a classifier")
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":  # a copy cut short
        path.write_bytes(whole[: len(whole) // 2])
    else:
        np.savez(path, bias=np.zeros(2))
    with pytest.raises(InputFileError, match=r"classifier\.npz: not a readable classifier file"):
        load_classifier(path)
    with pytest.raises(InputFileError, match=r"nothing\.npz: missing"):
        load_classifier(tmp_path / "nothing.npz")


# --- crops --------------------------------------------------------------------------------------


def test_crop_image_cuts_pil_images_and_tensors_alike() -> None:
    pixels = np.arange(10 * 20 * 3, dtype=np.uint8).reshape(10, 20, 3)  # H 10, W 20
    box = np.array([2, 3, 7, 5])  # x 2..7, y 3..5 inclusive: 6 wide, 3 high
    cut = crop_image(Image.fromarray(pixels), box)
    assert cut.size == (6, 3)
    np.testing.assert_array_equal(np.asarray(cut), pixels[3:6, 2:8])
    tensor = torch.from_numpy(pixels).permute(2, 0, 1)  # (3, H, W)
    torch.testing.assert_close(crop_image(tensor, box), tensor[:, 3:6, 2:8])
    one = crop_image(tensor, np.array([19, 9, 19, 9]))  # the last pixel alone
    assert one.shape == (3, 1, 1) and torch.equal(one[:, 0, 0], tensor[:, 9, 19])


@pytest.mark.parametrize("cache", [False, True], ids=["pil", "cached-tensors"])
def test_dataset_crops_each_image_to_its_box(tmp_path: Path, cache: bool) -> None:
    rng = np.random.default_rng(0)
    samples, pixels = [], []
    for i, (w, h) in enumerate([(20, 10), (12, 16)]):
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(a).save(tmp_path / f"{i}.png")
        samples.append(Sample(tmp_path / f"{i}.png", i, (w, h)))
        pixels.append(a)
    data = DataSplit("val", tmp_path, ["a", "b"], ["a", "b"], samples, "test")
    crops = np.array([[2, 3, 7, 5], [0, 0, 11, 15]])  # the second: the whole image
    dataset = LocalizationDataset(data, v2.ToImage(), cache=cache, crops=crops)
    for i, (y0, y1, x0, x1) in enumerate([(3, 6, 2, 8), (0, 16, 0, 12)]):
        image, label, index = dataset[i]
        assert (label, index) == (i, i)
        np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), pixels[i][y0:y1, x0:x1])
    with pytest.raises(ValueError, match=r"crops must be \(2, 4\)"):
        LocalizationDataset(data, v2.ToImage(), crops=crops[:1])


def test_gt_crop_is_the_tight_box_of_the_images_own_class(tmp_path: Path) -> None:
    root = write_classic(tmp_path / "classic")
    val = read_split(data_config({"root": str(root), "layout": "classic"}), "val")
    # image 2 has two boxes of its class, 1-based (5, 6, 20, 25) and (30, 2, 60, 30) in the file
    np.testing.assert_array_equal(
        gt_crop_boxes(val), [[0, 0, 49, 39], [4, 1, 59, 29], [0, 9, 15, 47]]
    )
    val.samples[1].box_labels[:] = 2  # its boxes now belong to another class
    with pytest.raises(InputFileError, match=r"ILSVRC2012_val_00000002\.JPEG: no ground-truth box"):
        gt_crop_boxes(val)
    train = read_split(data_config({"root": str(root), "layout": "classic"}), "train")
    with pytest.raises(InputFileError, match=r"n01440764_0\.JPEG: no ground-truth box"):
        gt_crop_boxes(train)


class HandMaps(nn.Module):
    """A backbone with a known top-1 CAM: channel 0 is a fixed 32 x 32 map (class 0's CAM, by the
    classifier below), channel 1 the image's mean over colours (something of the image)."""

    def __init__(self, cam: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("cam", cam)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 32, 32) -> (B, 2, 32, 32)
        return torch.stack([self.cam.expand(len(x), -1, -1), x.mean(dim=1)], dim=1)


def hand_cam_network() -> CAMNet:
    cam = torch.full((32, 32), 0.1)  # below 0.2 x max: never kept
    cam[8:16, 4:20] = 1.0  # the largest component: x 4..19, y 8..15 of the 32 px frame
    cam[26:30, 26:30] = 0.5  # kept (>= 0.2), but smaller
    net = CAMNet(HandMaps(cam), 2, 3, head_channels=0)
    with torch.no_grad():
        net.classifier.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]))
        net.classifier.bias.copy_(torch.tensor([10.0, 0.0, 0.0]))  # class 0 is always top-1
    return net


def test_cam_crop_is_the_box_of_the_top1_cam_in_the_original_image(
    tmp_path: Path, monkeypatch
) -> None:
    net = hand_cam_network()
    assert box_from_cam(net.backbone.cam, 0.2) == (4, 8, 19, 15)  # the paper's rule, in frame
    monkeypatch.setattr(network_module, "build_model", lambda cfg, num_classes: net)
    loaded = []
    real_loader = run_module.eval_loader

    def spy(data, cfg, env, transform=None, crops=None):
        loaded.append((data.split, None if crops is None else crops.copy()))
        return real_loader(data, cfg, env, transform, crops)

    monkeypatch.setattr(run_module, "eval_loader", spy)
    root = write_classic(tmp_path / "classic")
    run = tmp_path / "run"
    metrics = features_run(features_cfg(*CLASSIC, f"data.root={root}", "crop=cam"), run)
    # Val images 1 and 3 are of classes 1 and 2: their crops too are class 0's (the top-1's) box.
    # The frame's box, edges [4, 20) x [8, 16) of 32, scaled to each image, rounded to pixel edges:
    # 50 x 40: x [6.25, 31.25) -> [6, 31), y [10, 20) -> 6..30, 10..19
    # 60 x 30: x [7.5, 37.5) -> [8, 38), y [7.5, 15) -> 8..37, 8..14
    # 32 x 48: x [4, 20), y [12, 24) -> 4..19, 12..23
    want = np.array([[6, 10, 30, 19], [8, 8, 37, 14], [4, 12, 19, 23]])
    cache = read_npz(run / "cache" / "features_val_cam.npz")
    np.testing.assert_array_equal(cache["boxes"], want)
    np.testing.assert_array_equal(cache["indices"], [0, 1, 2])
    # IoU with the image's own-class boxes: 250/2000; 84/446 (the better of two); 144/672
    np.testing.assert_allclose(cache["box_ious"], [0.125, 84 / 446, 144 / 672])
    # the train images (20..22 x 16 px) have no boxes: IoU NaN; image 0 (20 x 16) gets 3..12, 4..7
    train = read_npz(run / "cache" / "features_train_cam.npz")
    np.testing.assert_array_equal(train["boxes"][0], [3, 4, 12, 7])
    assert np.isnan(train["box_ious"]).all()
    # the images were cut to exactly these boxes: full images for the CAMs, then the crops
    crops = {split: c for split, c in loaded if c is not None}
    np.testing.assert_array_equal(crops["val"], want)
    np.testing.assert_array_equal(crops["train"], train["boxes"])
    rows = read_csv(run / "predictions.csv")
    got = [[int(r[f"crop_{k}"]) for k in ("x0", "y0", "x1", "y1")] for r in rows]
    assert got == want.tolist()
    assert [r["crop_iou"] for r in rows] == ["0.1250", "0.1883", "0.2143"]
    assert metrics["crop"] == "cam" and metrics["crop_box_iou50"] == 0.0


def test_cam_crop_of_a_network_with_fewer_classes_than_the_data(tmp_path: Path) -> None:
    """The crop is the network's own top-1 CAM: the data's labels (3 classes here) are no
    classes of its last layer (2 outputs), as with any network used on another dataset."""
    root = write_classic(tmp_path / "classic")
    run = tmp_path / "run"
    cfg = features_cfg(*CLASSIC, f"data.root={root}", "model_classes=2", "crop=cam")
    metrics = features_run(cfg, run)
    assert metrics["num_test"] == 3 and metrics["crop"] == "cam"
    boxes = read_npz(run / "cache" / "features_val_cam.npz")["boxes"]
    for (x0, y0, x1, y1), (w, h) in zip(boxes, [(50, 40), (60, 30), (32, 48)], strict=True):
        assert 0 <= x0 <= x1 < w and 0 <= y0 <= y1 < h


def test_cam_crop_of_a_network_without_cams_is_a_clear_error(tmp_path: Path) -> None:
    """The refusal advises what cam-features can do (crop=full or gt), not cam-eval's Grad-CAM,
    and the advice works."""
    root = write_classic(tmp_path / "classic")
    alexnet = ("model=alexnet", "model.width_mult=0.0625", "data.image_size=64",
               "data.layout=classic", f"data.root={root}", "features=fc7")  # fmt: skip
    with pytest.raises(ConfigError) as err:
        features_run(features_cfg(*alexnet, "crop=cam"), tmp_path / "run")
    message = str(err.value)
    assert message.startswith("crop=cam cuts the box of the network's own class activation map")
    assert "no class activation map; use crop=full or crop=gt" in message
    assert "Grad-CAM" not in message and "\n" not in message
    assert features_run(features_cfg(*alexnet, "crop=full"), tmp_path / "full")["crop"] == "full"


def test_crop_gt_end_to_end_on_cub(tmp_path: Path) -> None:
    """CUB's train images have boxes too, so crop=gt runs: its crops are the boxes."""
    root = write_cub(tmp_path / "cub")
    metrics = features_run(
        features_cfg("model=tiny_gap", "data=cub", f"data.root={root}", "data.image_size=32",
                     "crop=gt"),
        tmp_path / "run",
    )  # fmt: skip
    assert metrics["crop"] == "gt" and metrics["num_train"] == 2 == metrics["num_test"]
    assert metrics["crop_box_iou50"] == 100.0
    rows = read_csv(tmp_path / "run" / "predictions.csv")
    # test images 2 and 4: x y w h (10, 5, 20, 15) and (60, 40, 4, 8) -> inclusive boxes
    boxes = [[int(r[f"crop_{k}"]) for k in ("x0", "y0", "x1", "y1")] for r in rows]
    assert boxes == [[10, 5, 29, 19], [60, 40, 63, 47]]
    assert [r["crop_iou"] for r in rows] == ["1.0000", "1.0000"]
    train = read_npz(tmp_path / "run" / "cache" / "features_train_gt.npz")
    np.testing.assert_array_equal(train["boxes"], [[0, 0, 39, 29], [3, 4, 7, 9]])


def test_crop_gt_needs_a_box_for_every_image(tmp_path: Path) -> None:
    root = write_classic(tmp_path / "classic")
    with pytest.raises(InputFileError, match=r"n01440764_0\.JPEG: no ground-truth box"):
        features_run(features_cfg(*CLASSIC, f"data.root={root}", "crop=gt"), tmp_path / "run")


def test_combine_keeps_the_images_every_part_read() -> None:
    full = PartFeatures(np.array([[1.0], [2.0], [3.0]], np.float32), np.array([0, 1, 1]),
                        np.array([0, 1, 3]))  # fmt: skip
    boxes = np.array([[0, 0, 1, 1], [1, 1, 2, 2], [2, 2, 3, 3]])
    cam = PartFeatures(np.array([[10.0, 11.0], [30.0, 31.0], [40.0, 41.0]], np.float32),
                       np.array([0, 1, 0]), np.array([0, 3, 4]), boxes,
                       np.array([0.5, np.nan, 0.25]))  # fmt: skip
    both = combine([full, cam])
    np.testing.assert_array_equal(both.indices, [0, 3])
    np.testing.assert_array_equal(both.features, [[1.0, 10.0, 11.0], [3.0, 30.0, 31.0]])
    np.testing.assert_array_equal(both.labels, [0, 1])
    np.testing.assert_array_equal(both.boxes, [[0, 0, 1, 1], [1, 1, 2, 2]])
    np.testing.assert_array_equal(both.box_ious, [0.5, np.nan])


# --- the caches ---------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated"])
def test_a_damaged_cache_is_recomputed(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "features_val_full.npz"
    part = PartFeatures(np.ones((2, 3), np.float32), np.array([0, 1]), np.array([0, 1]))
    save_cache(path, {"net": "a"}, part)
    np.testing.assert_array_equal(load_cache(path, {"net": "a"})[0].features, part.features)
    assert load_cache(path, {"net": "b"}) == (None, "net changed")  # another identity: not used
    whole = path.read_bytes()
    path.write_bytes(
        {"garbage": b"xx", "empty": b"", "truncated": whole[: len(whole) // 2]}[damage]
    )
    found, why = load_cache(path, {"net": "a"})
    assert found is None and why.startswith("unreadable (")


def _count(log: Path, text: str) -> int:
    return log.read_text().count(text)


def computing_fails(*args, **kwargs):
    raise AssertionError("features computed again instead of read from the cache")


def test_the_cache_is_reused_and_a_changed_setting_recomputes(
    trained: Path, tmp_path: Path, monkeypatch
) -> None:
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(trained.read_bytes())
    cache = tmp_path / "cache"
    base = [f"checkpoint={ckpt}", f"cache_dir={cache}"]
    first = features_run(features_cfg(*base), tmp_path / "a")
    before = read_npz(cache / "features_val_full.npz")
    # Same network, data and features in another run folder: nothing is computed again.
    with monkeypatch.context() as patch:
        patch.setattr(run_module.FeatureRun, "_collect", computing_fails)
        again = features_run(features_cfg(*base), tmp_path / "b")
    assert _count(tmp_path / "b" / "features.log", "features: reusing") == 2  # train and val
    assert again["accuracy"] == first["accuracy"]
    # The checkpoint rewritten with other weights at the same path: recomputed
    state = load_checkpoint(ckpt)
    state["model"] = {k: v * 1.5 if v.is_floating_point() else v for k, v in state["model"].items()}
    save_checkpoint(ckpt, state)
    features_run(features_cfg(*base), tmp_path / "c")
    assert _count(tmp_path / "c" / "features.log", ": weights changed; recomputing") == 2
    after = read_npz(cache / "features_val_full.npz")
    assert after["features"].shape == before["features"].shape
    assert not np.allclose(after["features"], before["features"])
    # Another feature kind: recomputed
    gmp = features_run(features_cfg(*base, "features=gmp"), tmp_path / "d")
    assert gmp["features"] == "gmp"
    assert _count(tmp_path / "d" / "features.log", ": features changed; recomputing") == 2
    gmp_val = read_npz(cache / "features_val_full.npz")["features"]
    assert (gmp_val >= after["features"] - 1e-6).all()  # the max over space is >= the mean


# --- end to end ---------------------------------------------------------------------------------


def check_run(run: Path, metrics: dict, num_classes: int = 3, num_test: int = 48) -> None:
    """The files of a finished run agree with each other and with metrics.json."""
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert metrics["kind"] == "features" and metrics["num_test"] == num_test
    assert 0 <= metrics["accuracy"] <= 100
    rows = read_csv(run / "predictions.csv")
    assert len(rows) == num_test
    right = [r["correct"] == "1" for r in rows]
    assert all((r["label"] == r["predicted"]) == ok for r, ok in zip(rows, right, strict=True))
    assert metrics["accuracy"] == pytest.approx(100 * np.mean(right))
    per_class = read_csv(run / "per_class.csv")
    assert list(per_class[0]) == ["class", "name", "num_test", "accuracy"]
    assert len(per_class) == num_classes
    assert sum(int(r["num_test"]) for r in per_class) == num_test
    for r in per_class:
        mine = [ok for row, ok in zip(rows, right, strict=True) if row["label"] == r["class"]]
        assert float(r["accuracy"]) == pytest.approx(100 * np.mean(mine), abs=0.005)
    clf = load_classifier(run / "classifier.npz")
    assert clf.weight.shape == (num_classes, metrics["feature_dim"])
    assert clf.kind == metrics["classifier"]
    assert (run / "config.yaml").is_file() and (run / "features.log").is_file()


def test_end_to_end_on_a_trained_network(trained: Path, tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    full = features_run(features_cfg(f"checkpoint={trained}", f"cache_dir={cache}"),
                        tmp_path / "full")  # fmt: skip
    check_run(tmp_path / "full", full)
    assert full["accuracy"] > 100 / 3  # above chance (3 classes)
    assert full["feature_dim"] == 96 and full["crop"] == "full" and full["crop_box_iou50"] is None
    assert (full["weights"], full["variant"], full["checkpoint"]) == (
        "checkpoint", "tiny_gap", str(trained),
    )  # fmt: skip
    assert full["num_train"] == 192 and full["num_classes"] == 3
    loc = full["localization"]  # synthetic val images have boxes
    assert loc["num_images"] == 48
    assert 0 <= loc["top1_loc_acc"] <= loc["gt_known_loc_acc"] <= 100
    assert 0 <= loc["pointing_game"] <= 100
    # the classifier's predictions are those of its weights on the cached features
    test = read_npz(cache / "features_val_full.npz")
    clf = load_classifier(tmp_path / "full" / "classifier.npz")
    wnids = [clf.classes[p] for p in clf.predict(test["features"])]
    assert wnids == [r["predicted"] for r in read_csv(tmp_path / "full" / "predictions.csv")]

    cam = features_run(features_cfg(f"checkpoint={trained}", f"cache_dir={cache}", "crop=cam"),
                       tmp_path / "cam")  # fmt: skip
    check_run(tmp_path / "cam", cam)
    assert cam["feature_dim"] == 96 and 0 <= cam["crop_box_iou50"] <= 100
    assert 0 <= cam["localization"]["gt_known_loc_acc"] <= 100
    rows = read_csv(tmp_path / "cam" / "predictions.csv")
    for r in rows:  # the CAM boxes lie in the 32 px images
        assert 0 <= int(r["crop_x0"]) <= int(r["crop_x1"]) < 32
        assert 0 <= int(r["crop_y0"]) <= int(r["crop_y1"]) < 32

    # full+cam: both halves side by side, both parts read from the cache
    monkeypatch.setattr(run_module.FeatureRun, "_collect", computing_fails)
    both = features_run(
        features_cfg(f"checkpoint={trained}", f"cache_dir={cache}", "crop=full+cam"),
        tmp_path / "both",
    )
    check_run(tmp_path / "both", both)
    assert both["feature_dim"] == 2 * full["feature_dim"] == 192
    assert _count(tmp_path / "both" / "features.log", "features: reusing") == 4
    assert both["crop_box_iou50"] == cam["crop_box_iou50"]
    assert 0 <= both["localization"]["gt_known_loc_acc"] <= 100


def test_a_random_network_runs_as_the_floor(small_data: Path, tmp_path: Path) -> None:
    metrics = features_run(
        features_cfg("model=tiny_gap", f"data.root={small_data}", "data.image_size=32",
                     "classifier.kind=logistic"),
        tmp_path / "run",
    )  # fmt: skip
    check_run(tmp_path / "run", metrics)
    assert (metrics["weights"], metrics["checkpoint"], metrics["seed"]) == ("random", None, 0)
    assert metrics["classifier"] == "logistic" and metrics["feature_dim"] == 96
    assert metrics["localization"] is not None


def test_a_finished_run_folder_is_refused_unless_overwrite(trained: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = features_run(features_cfg(f"checkpoint={trained}"), run)
    with pytest.raises(ConfigError, match="already holds results") as err:
        features_run(features_cfg(f"checkpoint={trained}"), run)
    assert "\n" not in str(err.value)
    # overwrite=true is a clean run: the run's own caches are rebuilt
    # (tests/features/test_caches.py)
    again = features_run(features_cfg(f"checkpoint={trained}", "overwrite=true"), run)
    assert again["accuracy"] == first["accuracy"]
    assert json.loads((run / "metrics.json").read_text()) == again
    assert [c["reason"] for c in again["caches"]] == ["removed by overwrite=true"] * 2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("crop=bogus", "crop"),
        ("features=pool5", "features"),
        ("classifier.kind=tree", "classifier.kind"),
        ("classifier.C=0", "classifier.C must be > 0"),
        ("test_split=train", "train_split and test_split are both"),
    ],
)
def test_bad_keys_are_one_line_errors(
    trained: Path, tmp_path: Path, override: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        features_run(features_cfg(f"checkpoint={trained}", override), tmp_path / "run")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_checkpoint_or_model_not_both_not_neither(trained: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not neither"):
        features_run(features_cfg(), tmp_path)
    with pytest.raises(ConfigError, match="not both"):
        features_run(features_cfg(f"checkpoint={trained}", "model=tiny_gap"), tmp_path)


@pytest.mark.slow
def test_the_command(trained: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "cam-features"
    if not exe.exists():
        pytest.fail(f"{exe} is not installed: run `pip install -e .` first")

    def cam_features(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(exe), f"checkpoint={trained}", *RUN, *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    done = cam_features("hydra.run.dir=run")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["kind"] == "features" and metrics["num_test"] == 48
    bad = cam_features("hydra.run.dir=bad", "crop=bogus")
    assert bad.returncode == 1
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "crop" in lines[0], bad.stderr
    assert not (tmp_path / "bad" / "metrics.json").exists()
