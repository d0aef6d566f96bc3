"""cam-train's WSOL methods (train/methods.py): HaS hides whole cells at its rate and only in
training, CutMix's pasted box and label weight, ACoL's/SPG's loss = CE + the network's aux loss,
and every method's run deterministic under a seed and resumed bit-identically."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from helpers import SMALL, train_cfg
from torch import Tensor, nn

from cam_repro.data import read_split
from cam_repro.data.dataset import SkipLog
from cam_repro.data.loaders import eval_loader, train_loader
from cam_repro.data.synth_writer import generate
from cam_repro.models.checkpoint import load_checkpoint
from cam_repro.models.config import model_config
from cam_repro.models.method_config import METHODS, MethodConfig, method_config
from cam_repro.runtime.distributed import Dist
from cam_repro.runtime.errors import ConfigError, RunInterruptedError
from cam_repro.train import train, validate
from cam_repro.train.config import train_config
from cam_repro.train.epoch import Inputs, train_one_epoch
from cam_repro.train.methods import MethodLoss, cell_of, cutmix, cutmix_box, hide_cells
from cam_repro.train.optim import Optimization
from cam_repro.train.state import RunState, check_compatible

PLAIN = Inputs(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), channels_last=False, amp="none")


def coded(b: int, c: int, h: int, w: int) -> Tensor:
    """A batch whose every value is distinct and non-zero: image i's pixels are 1000 (i + 1) +
    their flat index, so a value names its image and place."""
    return (torch.arange(b * c * h * w, dtype=torch.float32).view(b, c, h, w) % (c * h * w)) + (
        1000 * (torch.arange(b, dtype=torch.float32) + 1)
    ).view(b, 1, 1, 1)


# -- HaS -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "grid"), [(13, 4), (32, 4), (10, 3), (7, 7), (5, 1)])
def test_cells_cover_the_side_in_floor_or_ceil_sizes(size: int, grid: int) -> None:
    cells = cell_of(size, grid)
    counts = torch.bincount(cells, minlength=grid)
    assert len(counts) == grid and counts.sum() == size
    assert set(counts.tolist()) <= {size // grid, -(-size // grid)}
    assert (cells.diff() >= 0).all()  # each cell one run of rows


@pytest.mark.parametrize("channels_last", [False, True])
def test_has_hides_whole_cells_only(channels_last: bool) -> None:
    x = coded(6, 3, 13, 10)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    hidden_x, hidden = hide_cells(x, 4, 0.5)
    assert hidden.shape == (6, 4, 4) and hidden.dtype == torch.bool
    assert torch.equal(x, coded(6, 3, 13, 10))  # the input is left alone
    assert hidden_x.is_contiguous(memory_format=torch.channels_last) == channels_last
    rows, cols = cell_of(13, 4), cell_of(10, 4)
    for i in range(6):
        for r in range(4):
            for c in range(4):
                cell = hidden_x[i][:, rows == r][:, :, cols == c]
                own = x[i][:, rows == r][:, :, cols == c]
                assert torch.equal(cell, torch.zeros_like(own) if hidden[i, r, c] else own)
    assert 0 < hidden.sum() < hidden.numel()


def test_has_hides_at_the_set_rate() -> None:
    # 4000 images x 16 cells = 64000 independent Bernoulli(p) draws: the hidden fraction's std is
    # sqrt(p (1 - p) / n) <= 0.002; 6 std (0.012) fails a correct draw with probability < 1e-8.
    # Per cell position (4000 draws each): 6 std = 6 sqrt(0.25 / 4000) = 0.047.
    for p in (0.5, 0.2):
        x = torch.ones(4000, 1, 4, 4)
        hidden_x, hidden = hide_cells(x, 4, p)
        assert torch.equal(hidden_x[:, 0] == 0, hidden)  # one pixel per cell here
        assert abs(hidden.float().mean().item() - p) < 6 * math.sqrt(p * (1 - p) / hidden.numel())
        per_place = hidden.float().mean(0)
        assert (per_place - p).abs().max() < 6 * math.sqrt(p * (1 - p) / 4000)
        # independent cells: the hidden count per image is Binomial(16, p), mean 16p, variance
        # 16p(1-p); its sample variance over 4000 images is within 10% of that (std of the
        # estimate ~ sqrt(2 / 4000) = 2.2% relative, plus the kurtosis term, < 3% here)
        count = hidden.flatten(1).sum(1).float()
        assert abs(count.var().item() / (16 * p * (1 - p)) - 1) < 0.1
    assert not hide_cells(torch.ones(50, 1, 4, 4), 4, 0.0)[1].any()
    assert hide_cells(torch.ones(50, 1, 4, 4), 4, 1.0)[1].all()


class Recorder(nn.Module):
    """A protocol-following toy network: GAP then a linear layer; records every input it sees,
    with the network's mode."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.fc = nn.Linear(3, classes)
        self.seen: list[tuple[bool, Tensor]] = []

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append((self.training, x.detach().clone()))
        return self.fc(x.mean((2, 3)))


@pytest.fixture(scope="module")
def fewer_data(tmp_path_factory) -> Path:
    """3 classes of 16 px images, 4 train and 1 val each: 3 batches of 4 per epoch."""
    out = tmp_path_factory.mktemp("fewer") / "data"
    generate({**SMALL, "image_size": 16, "train_per_class": 4, "val_per_class": 1, "out": str(out)})
    return out


def test_has_hides_in_training_and_never_in_validation(fewer_data: Path) -> None:
    settings = ["method=has", "data.batch_size=4", "data.num_workers=0", "data.image_size=16"]
    spec = train_config(train_cfg(fewer_data, *settings, "data.resize_size=16"))
    env = Dist()
    data = read_split(spec.data, "train")
    loader = train_loader(data, spec.data, env, seed=0)
    loader.sampler.set_position(0)
    model = Recorder()
    optimization = Optimization(
        opt := torch.optim.SGD(model.parameters(), lr=0.1),
        torch.optim.lr_scheduler.ConstantLR(opt, 1.0),
        torch.amp.GradScaler("cpu", enabled=False),
    )
    inputs = Inputs(spec.data.mean, spec.data.std, False, "none")
    train_one_epoch(
        model, model, loader, optimization, inputs, env, RunState(), SkipLog(data),
        method_loss=MethodLoss(spec.method), desc="t", log_every=2, progress=False,
        on_window=lambda _: None, after_step=lambda _: None, diverged=RuntimeError,
    )  # fmt: skip
    trained = [x for training, x in model.seen if training]
    assert len(trained) == 3 and len(model.seen) == 3
    rows = cell_of(16, 4)
    cells = torch.stack([x[:, :, rows == r][:, :, :, rows == c] for x in trained for r in range(4)
                         for c in range(4)])  # fmt: skip
    zero = (cells == 0).flatten(2).all(2)  # (cells, B): a whole cell hidden
    some = (cells == 0).flatten(2).any(2)
    assert torch.equal(zero, some)  # zeros come as whole cells only
    assert 0.3 < zero.float().mean() < 0.7  # 192 cells at p = 0.5: std 0.036

    model.seen.clear()
    val_data = read_split(spec.data, "val", like=data)
    val_loader = eval_loader(val_data, spec.data, env)
    validate(model, val_loader, inputs, env)
    seen = [x for _, x in model.seen]
    assert all(not training for training, _ in model.seen)
    plain = [inputs(batch[0]) for batch in val_loader]
    assert len(seen) == len(plain) and all(
        torch.equal(a, b) for a, b in zip(seen, plain, strict=True)
    )
    assert model.training  # validate puts the mode back


def test_has_step_feeds_the_hidden_batch() -> None:
    images = torch.randint(0, 256, (4, 3, 12, 12), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 0])
    model = Recorder()
    torch.manual_seed(3)
    step = MethodLoss(method_config({"name": "has", "has_grid_size": 3, "has_drop_rate": 0.5}))
    _, loss = step(model, model, PLAIN, images, labels)
    torch.manual_seed(3)
    expected, _ = hide_cells(PLAIN(images), 3, 0.5)
    assert torch.equal(model.seen[0][1], expected)
    assert torch.equal(loss, F.cross_entropy(model.fc(expected.mean((2, 3))), labels))


# -- CutMix ----------------------------------------------------------------------------------


def test_cutmix_box_is_the_clipped_box_of_the_area() -> None:
    for h, w in [(32, 32), (9, 14), (1, 5)]:
        for lam in (0.0, 0.3, 0.5, 0.9, 1.0):
            half_h = int(h * math.sqrt(1 - lam)) // 2
            half_w = int(w * math.sqrt(1 - lam)) // 2
            for _ in range(30):
                top, left, bottom, right = cutmix_box(h, w, lam)
                assert 0 <= top <= bottom <= h and 0 <= left <= right <= w
                assert bottom - top <= 2 * half_h and right - left <= 2 * half_w
                if top > 0 and bottom < h:  # not clipped: the full side
                    assert bottom - top == 2 * half_h
                if left > 0 and right < w:
                    assert right - left == 2 * half_w


def test_cutmix_pastes_the_other_image_and_weighs_labels_by_the_area() -> None:
    b, h, w = 6, 9, 11
    x = coded(b, 2, h, w)
    labels = torch.arange(b) + 10
    areas = []
    for seed in range(40):
        torch.manual_seed(seed)
        mixed, labels_b, weight_a = cutmix(x, labels, beta=1.0, prob=1.0)
        assert torch.equal(x, coded(b, 2, h, w))  # the input is left alone
        source = (labels_b - 10).tolist()  # the image each one got its box from
        assert sorted(source) == list(range(b))  # a permutation of the batch
        changed = (mixed != x).any(1)  # (B, H, W)
        moved = [i for i in range(b) if source[i] != i]
        box = changed[moved].any(0) if moved else torch.zeros(h, w, dtype=torch.bool)
        if box.any():
            ys, xs = box.nonzero(as_tuple=True)
            top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            assert box[top:bottom, left:right].all() and box.sum() == (bottom - top) * (
                right - left
            )
            area = int(box.sum())
            # every moved image holds its source's pixels in the box, its own elsewhere
            for i in range(b):
                assert torch.equal(mixed[i][:, box], x[source[i]][:, box])
                assert torch.equal(mixed[i][:, ~box], x[i][:, ~box])
            assert weight_a == 1 - area / (h * w)
            areas.append(area)
        elif moved:  # an empty box (lam near 1): nothing pasted, full weight
            assert torch.equal(mixed, x) and weight_a == 1.0
    assert len(areas) > 30 and len(set(areas)) > 10  # the draws vary the box


def test_cutmix_prob_zero_leaves_the_batch_alone() -> None:
    x, labels = torch.randn(5, 3, 8, 8), torch.arange(5)
    for _ in range(50):
        mixed, labels_b, weight_a = cutmix(x, labels, beta=1.0, prob=0.0)
        assert torch.equal(mixed, x) and torch.equal(labels_b, labels) and weight_a == 1.0
    # prob 0.5: about half the batches are mixed (200 draws: std 0.035)
    mixed = sum(cutmix(x, labels, 1.0, 0.5)[2] != 1.0 for _ in range(200))
    assert 0.3 * 200 < mixed < 0.7 * 200


def test_cutmix_step_mixes_the_loss_by_the_weight() -> None:
    images = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 0, 1])
    model = Recorder()
    torch.manual_seed(11)
    logits, loss = MethodLoss(method_config({"name": "cutmix"}))(
        model, model, PLAIN, images, labels
    )
    torch.manual_seed(11)
    mixed, labels_b, weight_a = cutmix(PLAIN(images), labels, 1.0, 1.0)
    assert torch.equal(model.seen[0][1], mixed) and 0 < weight_a < 1
    expected = weight_a * F.cross_entropy(logits, labels) + (1 - weight_a) * F.cross_entropy(
        logits, labels_b
    )
    assert torch.equal(loss, expected)


# -- ACoL, SPG: the network's auxiliary loss -------------------------------------------------


class AuxToy(nn.Module):
    """The `method_aux` protocol (models/methods.py): forward(x, labels=None); in training with
    labels -> (logits, aux loss), otherwise logits."""

    method_aux = True

    def __init__(self, method: str) -> None:
        super().__init__()
        self.method = method
        self.fc = nn.Linear(3, 3)
        self.labels: list[Tensor | None] = []

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        self.labels.append(labels)
        logits = self.fc(x.mean((2, 3)))
        if self.training and labels is not None:
            return logits, 0.5 * logits.gather(1, labels[:, None]).square().mean()
        return logits


class Batches(list):
    """Batches as a loader yields them (images, labels, index, skipped), over data without
    questions (what `validate` reads of a loader)."""

    dataset = SimpleNamespace(data=SimpleNamespace(questions=None))


@pytest.mark.parametrize("method", ["acol", "spg"])
def test_aux_methods_add_the_network_loss(method: str) -> None:
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    labels = torch.tensor([2, 1, 0, 2])
    model = AuxToy(method)
    logits, loss = MethodLoss(method_config({"name": method}))(model, model, PLAIN, images, labels)
    assert torch.equal(model.labels[0], labels)  # called with the labels
    x = PLAIN(images)
    plain = model.fc(x.mean((2, 3)))
    aux = 0.5 * plain.gather(1, labels[:, None]).square().mean()
    assert aux > 0 and torch.equal(logits, plain)
    assert torch.equal(loss, F.cross_entropy(plain, labels) + aux)
    loss.backward()
    assert model.fc.weight.grad is not None
    # validation calls it without labels and gets logits only
    loader = Batches([(images, labels, torch.arange(4), [])])
    val = validate(model, loader, PLAIN, Dist())
    assert model.labels[-1] is None and val["images"] == 4


def test_a_network_not_built_for_the_method_is_refused() -> None:
    images, labels = torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.tensor([0, 1])
    with pytest.raises(ConfigError, match=r"method=acol needs the network built for it"):
        MethodLoss(method_config({"name": "acol"}))(Recorder(), Recorder(), PLAIN, images, labels)
    with pytest.raises(ConfigError, match=r"built for method=spg"):
        toy = AuxToy("spg")
        MethodLoss(MethodConfig())(toy, toy, PLAIN, images, labels)


# -- identity and refusals -------------------------------------------------------------------


def test_resume_with_another_method_config_is_refused(tmp_path: Path) -> None:
    model = model_config({"arch": "tiny"})
    saved = {"config": {"model": asdict(model), "method": asdict(method_config({"name": "has"}))},
             "classes": ["a"]}  # fmt: skip
    check = dict(
        classes=["a"], question_vocab=None, data_root="D", schedule="step", epochs=1, steps=1,
        command="cam-train method=has trainer.resume=auto",
    )  # fmt: skip
    check_compatible(saved, tmp_path, model=model, method=method_config({"name": "has"}), **check)
    other = method_config({"name": "has", "has_drop_rate": 0.25})
    with pytest.raises(
        ConfigError,
        match=r"another method config \(has_drop_rate 0.5 in the file, 0.25 here\); resume with "
        r"the same method.\* settings; the command that resumes it: cam-train method=has",
    ):
        check_compatible(saved, tmp_path, model=model, method=other, **check)
    with pytest.raises(ConfigError, match=r"\(name 'has' in the file, 'cam' here\)"):
        check_compatible(saved, tmp_path, model=model, method=MethodConfig(), **check)
    # a checkpoint from before the methods was trained with plain CAM
    old = {"config": {"model": asdict(model)}, "classes": ["a"]}
    check_compatible(old, tmp_path, model=model, method=MethodConfig(), **check)
    with pytest.raises(ConfigError, match=r"name 'cam' in the file, 'acol' here"):
        check_compatible(
            old, tmp_path, model=model, method=method_config({"name": "acol"}), **check
        )


def test_vqa_trains_plain_cam_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^method=has: task=vqa trains plain CAM only"):
        train_config(train_cfg(tmp_path, "task=vqa", "data=synthetic_vqa", "method=has"))
    assert train_config(train_cfg(tmp_path, "task=vqa", "data=synthetic_vqa")).method.name == "cam"


# -- determinism and bit-identical resume, per method ----------------------------------------


def weights_of(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a: dict[str, Tensor], b: dict[str, Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("method", METHODS)
def test_method_runs_are_deterministic_and_resume_bit_identically(
    method: str, fewer_data: Path, tmp_path: Path
) -> None:
    """Run A straight; run B with the same seed (identical weights at step 5, where it is
    killed), then resumed from its checkpoint of step 4 (epoch 2, batch 1): A's final weights.
    B loads in a worker process, A in the main one (which reseeds torch's RNG for each image's
    augmentation): the method's draws are the same stream either way (`batches_keeping_rng`)."""
    overrides = [
        f"method={method}", "data.batch_size=4", "data.image_size=16",
        "data.resize_size=16", "trainer.epochs=2", "trainer.deterministic=true",
        "trainer.checkpoint_every=2", "trainer.tensorboard=false", "trainer.cam_images=0",
    ]  # fmt: skip
    at_step_5: list[dict[str, Tensor]] = []

    def keep_step_5(trainer) -> None:
        if trainer.global_step == 5:
            at_step_5.append(weights_of(trainer.model))

    a = train_cfg(fewer_data, *overrides, "data.num_workers=0")
    straight = train(a, tmp_path / "a", on_step=keep_step_5)
    assert straight["global_step"] == 6

    def kill_at_step_5(trainer) -> None:
        if trainer.global_step == 5:
            at_step_5.append(weights_of(trainer.model))
            raise KeyboardInterrupt

    run, b = tmp_path / "b", [*overrides, "data.num_workers=1"]
    with pytest.raises(RunInterruptedError, match=r"the last checkpoint .at epoch 2, batch 1"):
        train(train_cfg(fewer_data, *b), run, on_step=kill_at_step_5)
    assert same_weights(*at_step_5)  # the same seed: the same weights, step for step
    resumed = train(train_cfg(fewer_data, *b, "trainer.resume=auto"), run)
    final = load_checkpoint(tmp_path / "a" / "checkpoints/last.pt")["model"]
    state = load_checkpoint(run / "checkpoints/last.pt")
    assert same_weights(final, state["model"])
    for a, b in zip(straight["epochs"], resumed["epochs"], strict=True):
        assert (a["train_loss"], a["val_loss"]) == (b["train_loss"], b["val_loss"])

    # the method is part of the run's identity
    title = {"cam": "", "has": " (HaS)", "acol": " (ACoL)", "spg": " (SPG)", "adl": " (ADL)",
             "cutmix": " (CutMix)"}[method]  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["method"] == method and metrics["paper_name"] == f"Tiny-GAP{title}"
    assert f"(Tiny-GAP{title}), method {method}:" in (run / "train.log").read_text()
    assert state["config"]["method"]["name"] == method
    assert state["paper_name"] == metrics["paper_name"]
