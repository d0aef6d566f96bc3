"""`cam-visualize`: run trained networks on images and write the paper's kinds of figures.

- cam_<image>.png: the image, its top-1 CAM with the CAM's box (red) and the ground truth (green),
  and a row of the top-k classes' CAMs with names and scores (the paper's Figures 3-4);
- compare.png: the top-1 CAMs of several runs (e.g. GAP and GMP) side by side on the same images;
- units_<variant>_<class>.png: a class's units with the largest weights w_k^c and where they
  fire, beside the class's CAM (the paper's class-specific units);
- sweep.png: cam-eval's threshold sweeps (sweep.csv), mean +- std over runs of the same model;
- linear_cams.png: CAMs from a cam-features run's linear classifier (its weights on the network's
  last conv maps: the paper's generic localization, Section 4), one test image per class;
- text_cams.png: the text detector of Section 4.2 on text images: their word boxes, the text
  class's CAM with its box and peak, the detector's answer; from a cam-features run's classifier
  on text data, or from a CAM network trained on text / no text (its own last layer;
  text_cams_<variant>.png when a features run's is drawn too);
- vqa_panels.png: a VQA checkpoint (cam-train task=vqa, Section 4.2) on questions of its data:
  the image with the target object's box, the predicted and the true answer's CAMs.

Every map is drawn with its box under the paper's rule (red), the ground truth (green) and, in
the Section 4.2 figures and linear_cams.png, its peak (the pointing game's point, a cross).
"""

from __future__ import annotations

import csv
import logging
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from cam_repro.data import (
    DataConfig,
    DataSplit,
    Sample,
    dataset_kind,
    load_image,
    model_input,
    read_split,
)
from cam_repro.data.loaders import extra_inputs
from cam_repro.data.transforms import eval_transform
from cam_repro.data.vqa import read_vqa
from cam_repro.evaluate.config import SPLITS, BoxKeys, DataOverrides, box_rule, resolve_data
from cam_repro.evaluate.localizer import Localizer, check_batch, localize_batch
from cam_repro.evaluate.outputs import read_sweep
from cam_repro.localize.boxes import BoxRule, frame_boxes, iou_matrix, scale_boxes
from cam_repro.localize.cam import LinearHead, cam_model, class_activation_maps, upsample_cams
from cam_repro.localize.loc_error import map_peaks, points_in_boxes
from cam_repro.models import model_config, paper_name, variant_name
from cam_repro.models.checkpoint import load_model
from cam_repro.models.vqa import answer_cams
from cam_repro.present.draw import (
    Curve,
    cam_figure,
    cam_panel,
    figure_png,
    grid_figure,
    sweep_figure,
)
from cam_repro.runtime.config import RuntimeConfig, check_choice, runtime_config, to_schema
from cam_repro.runtime.context import RunContext, run_context
from cam_repro.runtime.errors import ConfigError, InputFileError
from cam_repro.runtime.files import atomic_write, read_json
from cam_repro.runtime.precision import autocast

log = logging.getLogger(__name__)


@dataclass
class VisualizeConfig(BoxKeys):
    """`cam-visualize`: figures of class activation maps from cam-train checkpoints (the box
    rule's threshold and normalize: as in cam-eval); of a VQA checkpoint, vqa_panels.png."""

    checkpoint: str | None = None  # RUN_DIR/checkpoints/last.pt (or best.pt); VQA: vqa_panels
    compare: list[str] = field(default_factory=list)  # more checkpoints for compare.png
    images: list[str] = field(default_factory=list)  # image files; empty: num_images of the data
    data: DataOverrides = field(default_factory=DataOverrides)  # type: ignore[valid-type]
    split: str = "val"
    num_images: int = 6
    topk: int = 5
    units: int = 4  # class-specific units per class (0: no units figure)
    unit_classes: list[str] = field(default_factory=list)  # wnids or names; empty: first image's
    sweeps: list[str] = field(default_factory=list)  # cam-eval run folders (or sweeps) to plot
    features_run: str | None = None  # a cam-features run folder: linear_cams.png (text_cams.png)
    per_image: bool = True  # cam_<image>.png for every image
    dpi: int = 100
    runtime: RuntimeConfig = field(default_factory=lambda: RuntimeConfig(progress=False))


def visualize_config(cfg: Any) -> VisualizeConfig:
    spec = to_schema(VisualizeConfig, cfg)
    check_choice(spec.split, "split", SPLITS)
    box_rule(spec)
    spec.runtime = runtime_config(spec.runtime)
    if spec.checkpoint is None and not spec.sweeps and spec.features_run is None:
        raise ConfigError(
            "nothing to draw: give checkpoint=RUN_DIR/checkpoints/last.pt (CAM figures), "
            "sweeps=[EVAL_RUN_DIR, ...] (threshold-sweep curves) and/or features_run=DIR (CAMs "
            "of a cam-features run's linear classifier)"
        )
    if spec.compare and spec.checkpoint is None:
        raise ConfigError("compare=[...] needs checkpoint=... (the first run of the comparison)")
    if spec.num_images < 1 or spec.topk < 1 or spec.units < 0 or spec.dpi < 20:
        raise ConfigError("num_images and topk must be >= 1, units >= 0 and dpi >= 20")
    return spec


# --- running a network on images ----------------------------------------------------------------


@dataclass
class Picture:
    """An image to draw: the evaluated frame and what is known about it."""

    name: str  # image id or file stem
    frame: np.ndarray  # (S, S, 3) uint8: the whole image resized as cam-eval sees it
    label: int | None  # true class, when known
    gt_boxes: np.ndarray  # (m, 4) inclusive boxes of the true class in the frame (may be empty)


@dataclass
class Seen:
    """One network's view of one picture."""

    classes: list[int]  # top-k, best first
    scores: list[float]  # softmax probabilities
    maps: np.ndarray  # (k, S, S) CAMs of the top-k, bilinear to the frame (not normalised)
    boxes: np.ndarray  # (k, 4) the paper's box of each map, in the frame
    ious: list[float | None]  # IoU of each box with the true class's boxes (None: no GT)
    features: np.ndarray  # (K, h, w) last conv maps f_k


@dataclass
class TrainedNet:
    """A trained network (a cam-train checkpoint) and what it needs to look at images."""

    checkpoint: str
    model: torch.nn.Module
    name: str  # paper name, e.g. Tiny-GAP
    variant: str  # our name, e.g. tiny_gap
    classes: list[str]  # VQA: the answers
    class_names: list[str]
    data: DataConfig
    question_vocab: list[str] | None = None  # a VQA model's question words; None: a classifier


def load_net(path: str, spec: VisualizeConfig, run: RunContext) -> TrainedNet:
    model, state = load_model(path)
    model.to(run.device).eval()
    if run.runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    trained = state["config"]
    data = resolve_data(spec.data, trained.get("data"))
    classes = list(state["classes"])
    names = list(state.get("class_names") or classes)
    model_cfg = model_config(trained["model"])
    return TrainedNet(
        path, model, paper_name(model_cfg), variant_name(model_cfg), classes, names, data,
        state.get("question_vocab"),
    )  # fmt: skip


def load_pictures(spec: VisualizeConfig, net: TrainedNet) -> list[Picture]:
    """The given image files (no ground truth), or the first num_images of the data's split."""
    transform = eval_transform(net.data)
    pictures = []
    if spec.images:
        for path in spec.images:
            image = load_image(Path(path), net.data.max_image_pixels)
            frame = transform(image).permute(1, 2, 0).numpy()  # (S, S, 3)
            pictures.append(Picture(Path(path).stem, frame, None, np.zeros((0, 4), np.int64)))
        return pictures
    split = read_split(net.data, spec.split)
    if list(split.classes) != net.classes:
        raise ConfigError(
            f"{net.checkpoint} was trained on other classes than {split.root} has: give "
            "images=[...] or data with the same classes"
        )
    return [sample_picture(sample, net.data) for sample in split.samples[: spec.num_images]]


def sample_picture(sample: Sample, data: DataConfig) -> Picture:
    """A sample of a split as cam-eval sees it, with its own class's boxes in that frame."""
    size = data.image_size
    image = load_image(sample.path, data.max_image_pixels)
    own = sample.own_boxes
    gt = scale_boxes(own, image.size, (size, size)) if len(own) else np.zeros((0, 4), np.int64)
    frame = eval_transform(data)(image).permute(1, 2, 0).numpy()  # (S, S, 3)
    return Picture(sample.image_id, frame, sample.label, np.asarray(gt, np.int64))


_BATCH = 16  # pictures per forward pass


def look(
    net: TrainedNet, pictures: Sequence[Picture], topk: int, rule: BoxRule, run: RunContext
) -> list[Seen]:
    """Top-k classes, CAMs and boxes (under `rule`) of every picture, a batch at a time."""
    loc = Localizer(net.model, "cam", run.runtime.amp, run.device)
    seen = []
    for first in range(0, len(pictures), _BATCH):
        chunk = pictures[first : first + _BATCH]
        x = _model_input(chunk, net.data, run)
        labels = torch.zeros(len(chunk), dtype=torch.long, device=run.device)  # unused slot
        out = localize_batch(loc, x, labels, topk, wsol=False)
        check_batch(out, f"{net.checkpoint}, picture {chunk[0].name}", run.runtime.amp)
        maps = out.maps[:, :-1].float().cpu().numpy()  # (B, k, S, S): the top-k, no label slot
        probs = out.logits.softmax(dim=1).gather(1, out.classes[:, :-1]).cpu().numpy()
        assert out.features is not None  # a CAM network's single view
        features = out.features.float().cpu().numpy()  # (B, K, h, w)
        b, k, s = maps.shape[0], maps.shape[1], maps.shape[-1]
        boxes = frame_boxes(maps.reshape(b * k, s, s), rule).reshape(b, k, 4)
        for i, picture in enumerate(chunk):
            classes = out.classes[i, :-1].tolist()
            ious: list[float | None] = [None] * k
            if len(picture.gt_boxes):
                best = iou_matrix(boxes[i], picture.gt_boxes).max(axis=1)
                hits = zip(best, classes, strict=True)
                ious = [float(v) if c == picture.label else None for v, c in hits]
            seen.append(
                Seen(classes, probs[i].tolist(), maps[i], boxes[i], ious, features[i])
            )  # fmt: skip
    return seen


# --- the figures --------------------------------------------------------------------------------


def _short(name: str, width: int = 22) -> str:
    """A class name short enough for a panel title (the synthetic names are long)."""
    name = name.split(":")[0] if name.startswith("synthetic class") else name.split(",")[0]
    return name if len(name) <= width else name[: width - 1] + "…"


def _caption(net: TrainedNet, seen: Seen, j: int) -> str:
    text = f"{_short(net.class_names[seen.classes[j]])} {seen.scores[j]:.2f}"
    iou = seen.ious[j]
    return text if iou is None else f"{text}\nIoU {iou:.2f}"


def picture_figure(net: TrainedNet, picture: Picture, seen: Seen, spec: VisualizeConfig):
    """The paper's Figures 3-4 for one image."""
    truth = ""
    if picture.label is not None:
        truth = f", true class {_short(net.class_names[picture.label])}"
    top = [
        cam_panel(picture.frame, None, None, picture.gt_boxes, "image" + truth),
        cam_panel(
            picture.frame, seen.maps[0], seen.boxes[:1], picture.gt_boxes,
            f"top-1 CAM: {_caption(net, seen, 0)}", spec.normalize,
        ),
    ]  # fmt: skip
    row = [
        cam_panel(picture.frame, seen.maps[j], None, None, _caption(net, seen, j), spec.normalize)
        for j in range(len(seen.classes))
    ]
    title = f"{net.name}: {picture.name} (threshold {spec.threshold:g}; box red, truth green)"
    return cam_figure(top, row, title)


def compare_figure(nets: Sequence[TrainedNet], pictures, seens: Sequence[Sequence[Seen]], spec):
    """Top-1 CAMs of several nets side by side: rows are images, columns the image and each net."""
    rows = []
    for i, picture in enumerate(pictures):
        row = [cam_panel(picture.frame, None, None, picture.gt_boxes, picture.name)]
        for net, seen in zip(nets, seens, strict=True):
            s = seen[i]
            row.append(
                cam_panel(picture.frame, s.maps[0], s.boxes[:1], picture.gt_boxes,
                          _caption(net, s, 0), spec.normalize)
            )  # fmt: skip
        rows.append(row)
    return grid_figure(
        rows, ["image", *[r.name for r in nets]],
        f"top-1 CAMs at threshold {spec.threshold:g} (box red, truth green)",
    )  # fmt: skip


def units_figure(net: TrainedNet, c: int, pictures, seen: Sequence[Seen], spec: VisualizeConfig):
    """Class c's units with the largest weights w_k^c: where each fires on the class's images,
    beside the class's CAM (the paper's Section 5, class-specific units)."""
    weight = cam_model(net.model).classifier.weight.detach().float().cpu()  # (C, K)
    w = weight[c].numpy()  # (K,): w_k^c
    units = np.argsort(-w, kind="stable")[: spec.units]
    own = [i for i, p in enumerate(pictures) if p.label == c] or [
        i for i, s in enumerate(seen) if s.classes[0] == c
    ]
    chosen = (own or list(range(len(pictures))))[:4]
    rows = []
    for i in chosen:
        picture, s = pictures[i], seen[i]
        features = torch.from_numpy(s.features)[None]  # (1, K, h, w)
        cam = class_activation_maps(features, weight, torch.tensor([[c]]))  # (1, 1, h, w)
        maps = torch.cat([cam, features[:, torch.from_numpy(units)]], dim=1)  # (1, 1 + U, h, w)
        up = upsample_cams(maps, picture.frame.shape[:2])[0].numpy()  # (1 + U, S, S)
        row = [cam_panel(picture.frame, None, None, picture.gt_boxes, picture.name),
               cam_panel(picture.frame, up[0], None, None, "", spec.normalize)]  # fmt: skip
        row += [
            cam_panel(picture.frame, up[1 + j], None, None, f"unit {u}\nw={w[u]:.3f}")
            for j, u in enumerate(units)
        ]
        rows.append(row)
    title = (
        f"{net.name}: the {len(units)} units with the largest weights for "
        f"{_short(net.class_names[c], 40)} ({net.classes[c]})"
    )
    return grid_figure(rows, ["image", "class CAM", *[f"#{r + 1}" for r in range(len(units))]],
                       title)  # fmt: skip


def _class_index(net: TrainedNet, given: str) -> int:
    for table in (net.classes, net.class_names):
        if given in table:
            return table.index(given)
    if given.isdigit() and int(given) < len(net.classes):
        return int(given)
    raise ConfigError(f"unit_classes: {given!r} is not a class of {net.checkpoint} (wnid or name)")


# --- maps as the paper's rule and the pointing game see them -----------------------------------


@dataclass
class Located:
    """One map of one picture under the paper's box rule and the pointing game (frame pixels)."""

    box: np.ndarray  # (4,) inclusive
    peak: np.ndarray  # (2,) x, y: where the map is highest
    iou: float | None  # the box's best IoU with the picture's ground truth (None: it has none)
    hit: bool | None  # the peak lies on a ground-truth box (None: it has none)


def locate(maps: np.ndarray, gt_boxes: np.ndarray, rule: BoxRule) -> list[Located]:
    """Box (under `rule`), peak, IoU and pointing-game hit of each (S, S) map of `maps`."""
    n, h, w = maps.shape
    boxes = frame_boxes(maps, rule)  # (n, 4)
    peaks = map_peaks(maps, np.tile([w, h], (n, 1)))  # (n, 2)
    found = []
    for box, peak in zip(boxes, peaks, strict=True):
        iou = hit = None
        if len(gt_boxes):
            iou = float(iou_matrix(box[None], gt_boxes).max())
            hit = bool(points_in_boxes(peak[None], [gt_boxes])[0])
        found.append(Located(box, peak, iou, hit))
    return found


def map_panel(picture: Picture, cam: np.ndarray, where: Located, caption: str, mode: str = "max"):
    """A map over the picture with its box (red), the picture's ground truth (green) and the
    map's peak (a cross); the IoU and the pointing game's outcome under the caption."""
    if where.iou is not None:
        caption += f"\nIoU {where.iou:.2f}, peak {'on' if where.hit else 'off'} target"
    return cam_panel(picture.frame, cam, where.box[None], picture.gt_boxes, caption, mode,
                     peak=where.peak)  # fmt: skip


def _model_input(pictures: Sequence[Picture], data: DataConfig, run: RunContext) -> torch.Tensor:
    """The pictures' frames as the network's normalised input batch, on the run's device."""
    images = torch.from_numpy(np.stack([p.frame for p in pictures])).permute(0, 3, 1, 2)
    return model_input(images.to(run.device), data.mean, data.std, run.runtime.channels_last)


# --- CAMs of a linear head over the last conv maps (cam-features' classifier, a CAM network's) ---


@dataclass
class HeadNet:
    """A network's last conv maps f_k and a linear head over their pooled values, whose weights
    make the CAMs M_c = sum_k w_k^c f_k: a cam-features run's fitted classifier (`cam_head`), or
    a CAM network's own last layer (LinearHead.of_network)."""

    model: torch.nn.Module
    data: DataConfig
    head: Callable[[int, torch.device], LinearHead]  # the head over K maps, on a device


def head_cams(
    net: HeadNet, pictures: Sequence[Picture], classes: Sequence[Sequence[int]], run: RunContext
) -> tuple[np.ndarray, np.ndarray]:
    """The CAMs of classes[i] on pictures[i], bilinear to the frame, (N, k, S, S), and the head's
    class scores (N, C); a batch at a time."""
    maps, scores = [], []
    for first in range(0, len(pictures), _BATCH):
        chunk = pictures[first : first + _BATCH]
        x = _model_input(chunk, net.data, run)
        with torch.no_grad():
            features = cam_model(net.model).features(x).float()  # (B, K, h, w)
        head = net.head(features.shape[1], features.device)
        wanted = torch.tensor([list(c) for c in classes[first : first + _BATCH]],
                              device=features.device)  # fmt: skip
        cams = head.cams(features, wanted)  # (B, k, h, w)
        maps.append(upsample_cams(cams, chunk[0].frame.shape[:2]).cpu().numpy())
        scores.append(head.logits(features).cpu().numpy())
    return np.concatenate(maps), np.concatenate(scores)


def _features_predictions(path: Path) -> dict[str, str]:
    """image id -> predicted class, from a cam-features run's predictions.csv."""
    if not path.is_file():
        raise InputFileError(f"{path}: missing (a cam-features run's predictions)")
    with path.open(newline="") as f:
        return {row["image"]: row["predicted"] for row in csv.DictReader(f)}


@dataclass
class FeaturesRunView:
    """A cam-features run folder, loaded to draw its classifier's CAMs on its test split."""

    run_dir: Path
    net: HeadNet
    test: DataSplit
    predicted: dict[str, int]  # image id -> the classifier's class (its predictions.csv)
    rule: BoxRule  # the run's threshold, max-normalised (as its localization scores)
    title: str  # e.g. "svm on Tiny-GAP gap features (crop full)"
    task: str  # the test data's task (dataset_kind): classes | text


def load_features_run(run_dir: Path, run: RunContext) -> FeaturesRunView:
    """The network, classifier, predictions and test split of a cam-features run."""
    from cam_repro.features.config import features_config
    from cam_repro.features.extract import head_pool
    from cam_repro.features.linear import load_classifier
    from cam_repro.features.run import load_network

    config = run_dir / "config.yaml"
    if not config.is_file():
        raise InputFileError(f"{config}: missing: {run_dir} is not a cam-features run folder")
    fspec = features_config(OmegaConf.load(config))
    if fspec.features == "fc7":
        raise ConfigError(f"{run_dir}: features=fc7 has no conv maps, so no CAMs to draw")
    clf = load_classifier(run_dir / "classifier.npz")
    network = load_network(fspec, len(clf.classes))
    _check_same_weights(run_dir, network)
    model = network.model.to(run.device).eval()
    if run.runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    test = read_split(network.data, fspec.test_split)
    if list(test.classes) != clf.classes:
        raise ConfigError(f"{run_dir}: its classifier's classes differ from {test.root}'s now")
    pool = head_pool(fspec.features)
    predicted = {
        image: clf.classes.index(c)
        for image, c in _features_predictions(run_dir / "predictions.csv").items()
    }
    return FeaturesRunView(
        run_dir,
        HeadNet(model, network.data, lambda k, device: clf.cam_head(k, pool, device)),
        test,
        predicted,
        BoxRule(fspec.threshold, "max"),
        f"{clf.kind} on {paper_name(network.config)} {fspec.features} features (crop {fspec.crop})",
        dataset_kind(network.data)["task"],
    )


def _check_same_weights(run_dir: Path, network: Any) -> None:
    """The classifier was fitted on the features of the weights the run recorded (metrics.json's
    `weights_sha256`): a checkpoint or weights file rewritten since would give the network other
    maps, and the classifier's CAMs drawn on them would be silently wrong."""
    from cam_repro.features.outputs import check_features_metrics
    from cam_repro.features.run import weights_sha256

    path = run_dir / "metrics.json"
    if not path.is_file():
        raise InputFileError(f"{path}: missing: {run_dir} is not a finished cam-features run")
    fitted = check_features_metrics(path, read_json(path)).get("weights_sha256")
    now = weights_sha256(network)
    if fitted is None and now is not None:
        log.warning("%s: records no weights digest (written before cam-features recorded one): "
                    "not checked to be the weights its classifier was fitted on", path)  # fmt: skip
    if fitted is None or now is None:  # torchvision's weights or a random init: named, not hashed
        return
    if fitted != now:
        raise InputFileError(
            f"{run_dir}: its classifier was fitted on features of weights with SHA-256 "
            f"{fitted[:12]}, but the network's file now has {now[:12]} (rewritten since); "
            f"re-run cam-features, or draw from a run of the weights as they are now"
        )


def linear_cams_figure(fv: FeaturesRunView, run: RunContext, num_images: int):
    """The classifier's CAMs (M_c = sum_k w_k^c f_k with the fitted w) on one test image of each
    of the first num_images classes: the image with its ground truth, the map of the predicted
    class with its box (the paper's rule), the map of the true class (GT-known)."""
    data = fv.test
    first: dict[int, int] = {}
    for i, sample in enumerate(data.samples):
        if sample.image_id in fv.predicted:
            first.setdefault(sample.label, i)
    chosen = [first[c] for c in sorted(first)][:num_images]
    if not chosen:
        raise InputFileError(f"{fv.run_dir}: none of its test images is left to draw")
    pictures = [sample_picture(data.samples[i], fv.net.data) for i in chosen]
    predicted = [fv.predicted[p.name] for p in pictures]
    maps, _ = head_cams(
        fv.net, pictures, [[c, p.label] for c, p in zip(predicted, pictures, strict=True)], run
    )
    rows = []
    for picture, pred, cams in zip(pictures, predicted, maps, strict=True):
        assert picture.label is not None  # a sample of the split
        mark = "right" if pred == picture.label else "wrong"
        captions = [
            f"{_short(data.class_names[pred])} ({mark})",
            _short(data.class_names[picture.label]),
        ]
        found = locate(cams, picture.gt_boxes, fv.rule)
        rows.append([
            cam_panel(picture.frame, None, None, picture.gt_boxes, picture.name),
            *[map_panel(picture, cams[j], found[j], captions[j], fv.rule.normalize)
              for j in (0, 1)],
        ])  # fmt: skip
    title = (
        f"CAMs from the {fv.title}\nthreshold {fv.rule.threshold:g} (box red, truth green, peak +)"
    )
    return grid_figure(rows, ["image", "predicted class", "true class"], title)


# --- the text detector (Section 4.2): CAMs of the text class on text images ----------------------


def text_pictures(data: DataSplit, cfg: DataConfig, n: int, keep=None) -> list[Picture]:
    """The first n text images of a split (those with word boxes; `keep(sample)` may pass over
    more), as cam-eval sees them."""
    chosen = [s for s in data.samples if len(s.own_boxes) and (keep is None or keep(s))][:n]
    return [sample_picture(s, cfg) for s in chosen]


def text_cams_figure(
    net: HeadNet,
    pictures: Sequence[Picture],
    predicted: Sequence[int] | None,
    class_names: Sequence[str],
    rule: BoxRule,
    title: str,
    run: RunContext,
):
    """The paper's text-detector figure: each text image with its word boxes (green), and the
    text class's CAM (the image's own class) from the head's weights with its box under the
    paper's rule (red) and its peak; captioned with the detector's prediction (`predicted`, or
    the head's own top class when None)."""
    if not pictures:
        raise InputFileError("no text image (an image with word boxes) to draw")
    maps, scores = head_cams(net, pictures, [[p.label] for p in pictures], run)
    if predicted is None:
        predicted = scores.argmax(axis=1).tolist()
    rows = []
    for picture, pred, cams in zip(pictures, predicted, maps, strict=True):
        mark = "right" if pred == picture.label else "wrong"
        (where,) = locate(cams[:1], picture.gt_boxes, rule)
        rows.append([
            cam_panel(picture.frame, None, None, picture.gt_boxes, picture.name),
            map_panel(picture, cams[0], where, f"says {_short(class_names[pred])} ({mark})",
                      rule.normalize),
        ])  # fmt: skip
    return grid_figure(
        rows, ["image, word boxes", "CAM of the text class"],
        f"{title}\nthreshold {rule.threshold:g} (box red, words green, peak +)",
    )  # fmt: skip


def features_text_figure(fv: FeaturesRunView, run: RunContext, num_images: int):
    """text_cams_figure for a cam-features run: the linear classifier's CAMs and predictions."""
    pictures = text_pictures(fv.test, fv.net.data, num_images, lambda s: s.image_id in fv.predicted)
    predicted = [fv.predicted[p.name] for p in pictures]
    title = f"text detector: CAMs from the {fv.title}"
    return text_cams_figure(
        fv.net, pictures, predicted, fv.test.class_names, fv.rule, title, run
    )  # fmt: skip


def network_text_figure(net: TrainedNet, spec: VisualizeConfig, run: RunContext):
    """text_cams_figure for a CAM network trained on text / no text: its own last layer's CAMs
    and predictions."""
    data = read_split(net.data, spec.split)
    pictures = text_pictures(data, net.data, spec.num_images)
    head = HeadNet(net.model, net.data, lambda k, device: LinearHead.of_network(net.model))
    title = f"text detector: CAMs of {net.name} trained on text / no text"
    return text_cams_figure(
        head, pictures, None, net.class_names, box_rule(spec), title, run
    )  # fmt: skip


# --- VQA (Section 4.2): the answer's CAM -----------------------------------------------------


def vqa_questions(kinds: Sequence[str], has_target: Sequence[bool], n: int) -> list[int]:
    """n questions to draw (indices, in split order): those with a target box (every question if
    none has one), shared among the question types in turn, each type's evenly spaced over its
    questions (first and last included)."""
    pool = [i for i, t in enumerate(has_target) if t] or list(range(len(kinds)))
    by_kind: dict[str, list[int]] = {}
    for i in pool:
        by_kind.setdefault(kinds[i], []).append(i)
    quota = dict.fromkeys(sorted(by_kind), 0)
    left = min(n, len(pool))
    while left:
        for kind in quota:
            if left and quota[kind] < len(by_kind[kind]):
                quota[kind] += 1
                left -= 1
    chosen = []
    for kind, count in quota.items():
        items = by_kind[kind]
        if count:  # floor(x + 0.5): distinct indices when count <= len(items)
            at = np.floor(np.linspace(0, len(items) - 1, count) + 0.5).astype(int)
            chosen += [items[j] for j in at]
    return sorted(chosen)


def _wrap(text: str, width: int = 30) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def vqa_figure(net: TrainedNet, spec: VisualizeConfig, run: RunContext):
    """The paper's VQA figure: num_images questions of the split, a row each: the image with the
    target object's box (green) and the question; the predicted answer's CAM (the image part of
    the answer layer's weights) with its box under the paper's rule (red) and its peak; the true
    answer's CAM likewise."""
    assert net.question_vocab is not None
    rule = box_rule(spec)
    data = read_vqa(net.data, spec.split, vocab=net.question_vocab, answers=net.classes)
    q = data.questions
    assert q is not None
    chosen = vqa_questions(q.kinds, [len(s.own_boxes) > 0 for s in data.samples], spec.num_images)
    if not chosen:
        raise InputFileError(f"{data.root} {spec.split}: no question to draw")
    rows = []
    for first in range(0, len(chosen), _BATCH):
        index = chosen[first : first + _BATCH]
        pictures = [sample_picture(data.samples[i], net.data) for i in index]
        x = _model_input(pictures, net.data, run)
        tokens = extra_inputs(data, torch.tensor(index), run.device)[0]
        labels = torch.tensor([p.label for p in pictures], device=run.device)
        with torch.no_grad(), autocast(run.device, run.runtime.amp):  # predicted, true
            out = answer_cams(net.model, x, tokens, topk=1, append=labels)
        maps = upsample_cams(out.cams.float(), pictures[0].frame.shape[:2]).cpu().numpy()
        scores = out.scores.float().cpu().numpy()  # (B, 2): softmax of each map's answer
        for i, picture, cams, answer, score in zip(index, pictures, maps, out.classes.tolist(),
                                                   scores, strict=True):  # fmt: skip
            pred, truth = answer
            found = locate(cams, picture.gt_boxes, rule)
            mark = "right" if pred == truth else "wrong"
            rows.append([
                cam_panel(picture.frame, None, None, picture.gt_boxes,
                          f"{_wrap(q.text[i])}\n[{q.kinds[i]}]"),
                map_panel(picture, cams[0], found[0],
                          f"{_short(data.classes[pred])} {score[0]:.2f} ({mark})", rule.normalize),
                map_panel(picture, cams[1], found[1],
                          f"{_short(data.classes[truth])} {score[1]:.2f}"
                          + (" (= predicted)" if pred == truth else ""), rule.normalize),
            ])  # fmt: skip
    title = (
        f"{net.name} + BoW (VQA): the answer's CAM\nthreshold {rule.threshold:g} (box red, "
        "target object green, peak +)"
    )
    return grid_figure(rows, ["question", "predicted answer", "true answer"], title, cell=2.6)


# --- threshold sweeps ---------------------------------------------------------------------------


def sweep_curves(paths: Sequence[str]) -> list[Curve]:
    """Curves of the eval runs under `paths` (run folders or sweeps), one per model: the runs of
    the same model and data (seeds) are stacked for a mean +- std band."""
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if (path / "sweep.csv").is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(p.parent for p in path.rglob("sweep.csv"))
        else:
            raise InputFileError(
                f"{path}: no sweep.csv here (a cam-eval run folder or sweep, evaluated with "
                "sweep=true)"
            )
    if not found:
        raise InputFileError(
            f"{', '.join(paths)}: no cam-eval sweep.csv found (cam-eval writes it with sweep=true)"
        )
    groups: dict[str, list[tuple]] = {}
    for run_dir in found:
        label = run_dir.name
        metrics = run_dir / "metrics.json"
        if metrics.is_file():
            try:
                m = read_json(metrics)
            except InputFileError:
                m = None
            if isinstance(m, dict):
                data = m.get("data") or {}
                label = m.get("paper_name") or label
                if data.get("evidence"):
                    label = f"{label}, {data['evidence']}"
        groups.setdefault(label, []).append(read_sweep(run_dir / "sweep.csv"))
    curves = []
    for label, sweeps in groups.items():
        t = sweeps[0][0]
        if any(len(s[0]) != len(t) or not np.allclose(s[0], t) for s in sweeps):
            raise InputFileError(f"{label}: its runs' sweeps use different thresholds")
        levels = set.intersection(*(set(s[2]) for s in sweeps))
        n = f" (n={len(sweeps)})" if len(sweeps) > 1 else ""
        curves.append(
            Curve(
                label + n, t, np.stack([s[1] for s in sweeps]),
                {lv: np.stack([s[2][lv] for s in sweeps]) for lv in sorted(levels)},
            )
        )  # fmt: skip
    return curves


# --- the job ------------------------------------------------------------------------------------


def _write_png(path: Path, fig, dpi: int) -> None:
    data = figure_png(fig, dpi)
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def visualize_run(cfg: Any, out_dir: str | Path) -> list[Path]:
    """Draw what `cfg` asks into `out_dir` (locked while drawing); returns the files written."""
    spec = visualize_config(cfg)
    out = Path(out_dir)
    with run_context(spec.runtime, out) as run:
        return _draw(spec, out, run)


def _draw(spec: VisualizeConfig, out: Path, run: RunContext) -> list[Path]:
    written: list[Path] = []

    def save(name: str, fig) -> None:
        _write_png(out / name, fig, spec.dpi)
        written.append(out / name)

    if spec.sweeps:
        save("sweep.png", sweep_figure(sweep_curves(spec.sweeps), spec.threshold))
    if spec.features_run is not None:
        fv = load_features_run(Path(spec.features_run), run)
        save("linear_cams.png", linear_cams_figure(fv, run, spec.num_images))
        if fv.task == "text":
            save("text_cams.png", features_text_figure(fv, run, spec.num_images))
    if spec.checkpoint is None:
        return written
    rule = box_rule(spec)
    nets = [load_net(p, spec, run) for p in [spec.checkpoint, *spec.compare]]
    if nets[0].question_vocab is not None:
        if spec.compare or spec.images:
            raise ConfigError(
                f"{spec.checkpoint} is a VQA model: it is drawn on its data's questions "
                "(vqa_panels.png), without compare=[...] or images=[...]"
            )
        save("vqa_panels.png", vqa_figure(nets[0], spec, run))
        return written
    for other in nets[1:]:
        if other.classes != nets[0].classes:
            raise ConfigError(f"{other.checkpoint} has other classes than {spec.checkpoint}")
    pictures = load_pictures(spec, nets[0])
    seens = [look(net, pictures, spec.topk, rule, run) for net in nets]
    main, seen = nets[0], seens[0]
    if spec.per_image:
        for picture, s in zip(pictures, seen, strict=True):
            save(f"cam_{_file_name(picture.name)}.png", picture_figure(main, picture, s, spec))
    if len(nets) > 1:
        save("compare.png", compare_figure(nets, pictures, seens, spec))
    if spec.units:
        wanted = [_class_index(main, c) for c in spec.unit_classes]
        first = pictures[0].label if pictures[0].label is not None else seen[0].classes[0]
        for net, net_seen in zip(nets, seens, strict=True):
            for c in wanted or [first]:
                tag = f"{net.variant}_{_file_name(net.classes[c])}"
                save(f"units_{tag}.png", units_figure(net, c, pictures, net_seen, spec))
    if not spec.images and dataset_kind(main.data)["task"] == "text":
        # beside a features run's text_cams.png, the network's own gets its variant's name
        name = "text_cams.png" if spec.features_run is None else f"text_cams_{main.variant}.png"
        save(name, network_text_figure(main, spec, run))
    return written
