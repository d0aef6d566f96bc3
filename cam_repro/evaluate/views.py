"""What a network sees in pictures: top-k classes, maps and scored boxes, for cam-visualize.

Pictures are read as cam-eval reads them (data.dataset.LocalizationDataset's decoding and the
network's eval transform), so a picture's maps are cam-eval's numbers; every map is scored by
localize.scoring in the ORIGINAL image (boxes, peaks, IoUs, hits), as in predictions.csv, and
only scaled to the drawn frame by the figures (present.figures). Beside the classifier's view
(`look`, with any of cam-eval's localizers): CAMs of a linear head over the last conv maps
(`HeadNet`, `head_cams`: a cam-features classifier's or the network's own), a class's strongest
units on its own images (`class_pictures`, `unit_maps`) and a VQA model's answer maps
(`vqa_views`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cam_repro.data import DataConfig, DataSplit, model_input
from cam_repro.data.dataset import LocalizationDataset
from cam_repro.data.loaders import extra_inputs
from cam_repro.data.samples import IMAGE_EXTENSIONS, is_image_file, original_sizes, read_image
from cam_repro.data.transforms import eval_transform
from cam_repro.evaluate.localizer import (
    TOPK,
    Localizer,
    check_batch,
    hooked_layer,
    localize_batch,
    posthoc_cost,
)
from cam_repro.evaluate.network import Network
from cam_repro.localize.boxes import BoxRule
from cam_repro.localize.cam import LinearHead, cam_model, class_activation_maps, upsample_cams
from cam_repro.localize.gradcam import GradCAMLayerError
from cam_repro.localize.posthoc_methods import PosthocSpec
from cam_repro.localize.scoring import score_maps
from cam_repro.models.vqa import answer_cams
from cam_repro.runtime.errors import ConfigError, InputFileError
from cam_repro.runtime.precision import autocast

_BATCH = 16  # pictures per forward pass


@dataclass
class Picture:
    """An image to draw: the evaluated frame and what is known about it."""

    name: str  # image id or file stem
    frame: np.ndarray  # (S, S, 3) uint8: the whole image resized as cam-eval sees it
    label: int | None  # true class, when known
    size: tuple[int, int]  # the original image's (W, H)
    gt_boxes: np.ndarray  # (m, 4) inclusive boxes of the true class, ORIGINAL pixels (may be empty)


def split_pictures(data: DataSplit, indices: Sequence[int], cfg: DataConfig) -> list[Picture]:
    """Samples of a split as cam-eval reads them (LocalizationDataset, the eval transform), with
    their own class's boxes in the original image."""
    dataset = LocalizationDataset(data, eval_transform(cfg), max_pixels=cfg.max_image_pixels)
    # the original sizes as cam-eval scores in them (evaluate.loop.Evaluator._score)
    sizes = original_sizes([data.samples[i] for i in indices], cfg.max_image_pixels)
    pictures = []
    for i, (w, h) in zip(indices, sizes, strict=True):
        sample = data.samples[i]
        image, _, _ = dataset[i]  # (3, S, S) uint8: cam-eval's decoding and transform
        frame = image.permute(1, 2, 0).numpy()
        size = (int(w), int(h))
        own = np.asarray(sample.own_boxes, np.int64).reshape(-1, 4)
        pictures.append(Picture(sample.image_id, frame, sample.label, size, own))
    return pictures


def image_paths(given: Sequence[str]) -> list[Path]:
    """images=: each file as it is, each folder as its image files (the data readers' rule,
    data.samples.is_image_file: by suffix, hidden files skipped; sorted); a missing path or a
    folder without images is a one-line InputFileError naming it."""
    paths: list[Path] = []
    for item in given:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and is_image_file(p))
            if not found:
                raise InputFileError(
                    f"images: {path} holds no image file ({', '.join(IMAGE_EXTENSIONS)})"
                )
            paths += found
        elif path.is_file():
            paths.append(path)
        else:
            raise InputFileError(f"images: {path} does not exist")
    return paths


def picture_names(paths: Sequence[Path]) -> list[str]:
    """A name per image for its figure's file: the file's stem, or, where two stems are alike
    (a.jpg, a.png; two folders' 0001.jpg), the parent folder and full file name."""
    stems = [p.stem for p in paths]
    return [s if stems.count(s) == 1 else f"{p.parent.name}_{p.name}"
            for s, p in zip(stems, paths, strict=True)]  # fmt: skip


def file_pictures(paths: Sequence[str | Path], cfg: DataConfig) -> list[Picture]:
    """Image files (no ground truth), decoded and resized as cam-eval's data."""
    files = [Path(p).expanduser() for p in paths]
    pictures = []
    for path, name in zip(files, picture_names(files), strict=True):
        image = read_image(path, cfg.max_image_pixels)
        frame = eval_transform(cfg)(image).permute(1, 2, 0).numpy()
        size = (int(image.shape[-1]), int(image.shape[-2]))
        pictures.append(Picture(name, frame, None, size, np.zeros((0, 4), np.int64)))
    return pictures


def pictures_input(pictures: Sequence[Picture], net: Network, device: torch.device):
    """The pictures' frames as the network's normalised input batch, on `device`."""
    images = torch.from_numpy(np.stack([p.frame for p in pictures])).permute(0, 3, 1, 2)
    data = net.data
    return model_input(images.to(device), data.mean, data.std, net.channels_last)


@dataclass
class Seen:
    """One network's view of one picture; boxes, peaks and IoUs in the ORIGINAL image."""

    classes: list[int]  # top-k, best first
    scores: list[float]  # softmax probabilities
    maps: np.ndarray  # (k, S, S) CAMs of the top-k, bilinear to the frame (not normalised)
    boxes: np.ndarray  # (k, 4) each map's box under the rule (localize.scoring)
    ious: list[float | None]  # IoU of each box with the true class's boxes (None: no GT)


def localizer(
    net: Network,
    kind: str,
    device: torch.device,
    amp: str = "none",
    layer: str | None = None,
    posthoc: PosthocSpec | None = None,
) -> Localizer:
    """cam-eval's Localizer of `kind` (cam | backprop | gradcam | torchcam) for the network: a
    network without a CAM head refused for kind=cam in cam-eval's one line, an unknown `layer`
    as a ConfigError naming gradcam_layer; a torch-cam method (`posthoc`) checked as cam-eval
    checks it (evaluate.localizer.posthoc_cost). Use it as a context manager."""
    if posthoc is not None:
        posthoc = hooked_layer(posthoc, posthoc_cost(net.model, posthoc, net.data.image_size))
    try:
        return Localizer(net.model, kind, amp, device, layer, posthoc)
    except GradCAMLayerError as err:
        raise ConfigError(f"gradcam_layer: {err}") from None


def look(
    net: Network,
    pictures: Sequence[Picture],
    topk: int,
    rule: BoxRule,
    device: torch.device,
    amp: str = "none",
    loc: Localizer | None = None,
) -> list[Seen]:
    """Top-k classes, their maps (`loc`'s: cam-eval's localizer; None: CAM) and the maps' scored
    boxes (under `rule`) of every picture, a batch at a time; the IoUs are cam-eval's
    (predictions.csv) for the same image."""
    loc = loc or localizer(net, "cam", device, amp)
    source = net.checkpoint or net.variant
    seen = []
    for first in range(0, len(pictures), _BATCH):
        chunk = pictures[first : first + _BATCH]
        x = pictures_input(chunk, net, device)
        labels = torch.zeros(len(chunk), dtype=torch.long, device=device)  # unused slot
        out = localize_batch(loc, x, labels, topk, wsol=False)
        check_batch(out, f"{source}, picture {chunk[0].name}", amp)
        maps = out.maps[:, TOPK].float().cpu().numpy()  # (B, k, S, S): the top-k, no label slot
        classes = out.classes[:, TOPK].cpu().numpy()
        probs = out.topk_probs().cpu().numpy()
        scored = score_maps(
            maps, classes, np.array([p.size for p in chunk]), [p.gt_boxes for p in chunk],
            [np.full(len(p.gt_boxes), -1 if p.label is None else p.label) for p in chunk], rule,
        )  # fmt: skip
        for i, picture in enumerate(chunk):
            known = len(picture.gt_boxes) > 0
            ious = [float(v) if known and c == picture.label else None
                    for v, c in zip(scored.ious[i], classes[i], strict=True)]  # fmt: skip
            seen.append(Seen(classes[i].tolist(), probs[i].tolist(), maps[i], scored.boxes[i],
                             ious))  # fmt: skip
    return seen


@dataclass
class Located:
    """One map of one picture under a box rule and the pointing game (ORIGINAL pixels)."""

    box: np.ndarray  # (4,) inclusive
    peak: np.ndarray  # (2,) x, y: where the map is highest
    iou: float | None  # the box's best IoU with the picture's ground truth (None: it has none)
    hit: bool | None  # the peak lies on a ground-truth box (None: it has none)


def locate(
    maps: np.ndarray, size: tuple[int, int], gt_boxes: np.ndarray, rule: BoxRule
) -> list[Located]:
    """Box (under `rule`), peak, IoU and pointing-game hit of each (S, S) map of `maps` of one
    image of original `size` (W, H), scored against all of `gt_boxes` (original pixels)."""
    n = len(maps)
    gt = np.asarray(gt_boxes, np.int64).reshape(-1, 4)
    scored = score_maps(maps[None], np.zeros((1, n), np.int64), np.array([size]), [gt],
                        [np.zeros(len(gt), np.int64)], rule)  # fmt: skip
    if not len(gt):
        return [Located(scored.boxes[0, j], scored.peaks[0, j], None, None) for j in range(n)]
    ious, hits = scored.ious[0].tolist(), scored.hits[0].tolist()
    return [Located(scored.boxes[0, j], scored.peaks[0, j], ious[j], hits[j]) for j in range(n)]


@dataclass
class HeadNet:
    """A network's last conv maps f_k and a linear head over their pooled values, whose weights
    make the CAMs M_c = sum_k w_k^c f_k: a cam-features run's fitted classifier (`cam_head`), or
    a CAM network's own last layer (LinearHead.of_network)."""

    net: Network
    head: Callable[[int, torch.device], LinearHead]  # the head over K maps, on a device
    # the network's own head: its maps are cam-eval's (a method's `localization_maps`, ACoL's
    # fused maps, where the network has them)
    own: bool = False


def own_head(net: Network) -> HeadNet:
    """A CAM network's own last layer as a HeadNet."""
    return HeadNet(net, lambda k, device: LinearHead.of_network(net.model), own=True)


def head_cams(
    head: HeadNet,
    pictures: Sequence[Picture],
    classes: Sequence[Sequence[int]],
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray]:
    """The CAMs of classes[i] on pictures[i], bilinear to the frame, (N, k, S, S), and the head's
    class scores (N, C); a batch at a time. The network's own head with its own
    `localization_maps` (ACoL's): those maps, as cam-eval's."""
    maps, scores = [], []
    net = cam_model(head.net.model)
    fused = getattr(net, "localization_maps", None) if head.own else None
    for first in range(0, len(pictures), _BATCH):
        chunk = pictures[first : first + _BATCH]
        x = pictures_input(chunk, head.net, device)
        with torch.no_grad():
            features = net.features(x).float()  # (B, K, h, w)
        linear = head.head(features.shape[1], features.device)
        wanted = torch.tensor([list(c) for c in classes[first : first + _BATCH]],
                              device=features.device)  # fmt: skip
        if fused is not None:
            with torch.no_grad():
                cams = fused(x, wanted).float()  # (B, k, h, w)
        else:
            cams = linear.cams(features, wanted)  # (B, k, h, w)
        maps.append(upsample_cams(cams, chunk[0].frame.shape[:2]).cpu().numpy())
        scores.append(linear.logits(features).cpu().numpy())
    return np.concatenate(maps), np.concatenate(scores)


def class_pictures(data: DataSplit, c: int, n: int, cfg: DataConfig) -> list[Picture]:
    """The first n pictures of the split whose true class is c, read as cam-eval reads them; a
    ConfigError naming the class when the split has none."""
    chosen = [i for i, s in enumerate(data.samples) if s.label == c][:n]
    if not chosen:
        raise ConfigError(
            f"unit_classes: {data.root} has no image of class {data.classes[c]} in this split"
        )
    return split_pictures(data, chosen, cfg)


@dataclass
class Units:
    """A class's units with the largest weights w_k^c and where they fire on the class's
    pictures."""

    units: np.ndarray  # (U,) unit indices, largest weight first
    weights: np.ndarray  # (U,) their w_k^c
    pictures: list[Picture]  # the pictures shown (images of the class)
    maps: list[np.ndarray]  # per picture (1 + U, S, S): the class's CAM, then each unit


def unit_maps(
    net: Network, c: int, pictures: Sequence[Picture], count: int, device: torch.device
) -> Units:
    """Class c's `count` units with the largest weights and where they fire on `pictures` (the
    class's own: `class_pictures`), beside the class's CAM: the paper's class-specific units.
    Needs a CAM head (localize.cam.cam_model's one-line refusal otherwise)."""
    cam_net = cam_model(net.model)
    weight = cam_net.classifier.weight.detach().float().cpu()  # (C, K)
    w = weight[c].numpy()  # (K,): w_k^c
    units = np.argsort(-w, kind="stable")[:count]
    maps = []
    for first in range(0, len(pictures), _BATCH):
        chunk = pictures[first : first + _BATCH]
        x = pictures_input(chunk, net, device)
        with torch.no_grad():
            features = cam_net.features(x).float().cpu()  # (B, K, h, w)
        wanted = torch.full((len(chunk), 1), c)
        cam = class_activation_maps(features, weight, wanted)  # (B, 1, h, w)
        stacked = torch.cat([cam, features[:, torch.from_numpy(units)]], dim=1)
        maps += list(upsample_cams(stacked, chunk[0].frame.shape[:2]).numpy())
    return Units(units, w[units], list(pictures), maps)


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


@dataclass
class AnswerView:
    """A VQA model on one question: its picture, the predicted and the true answer's CAMs (2,
    S, S) with their softmax scores and scored boxes."""

    index: int  # the question's index in the split
    picture: Picture
    answers: tuple[int, int]  # predicted, true
    scores: np.ndarray  # (2,)
    maps: np.ndarray  # (2, S, S)
    located: list[Located]


def vqa_views(
    net: Network,
    data: DataSplit,
    chosen: Sequence[int],
    rule: BoxRule,
    device: torch.device,
    amp: str = "none",
) -> list[AnswerView]:
    """The answer's CAM (the image part of the answer layer's weights, models.vqa.answer_cams)
    of the predicted and of the true answer for each chosen question, scored against its target
    box."""
    views = []
    for first in range(0, len(chosen), _BATCH):
        index = list(chosen[first : first + _BATCH])
        pictures = split_pictures(data, index, net.data)
        x = pictures_input(pictures, net, device)
        tokens = extra_inputs(data, torch.tensor(index), device)[0]
        labels = torch.tensor([p.label for p in pictures], device=device)
        with torch.no_grad(), autocast(device, amp):  # predicted, true
            out = answer_cams(net.model, x, tokens, topk=1, append=labels)
        maps = upsample_cams(out.cams.float(), pictures[0].frame.shape[:2]).cpu().numpy()
        scores = out.scores.float().cpu().numpy()  # (B, 2): softmax of each map's answer
        for i, picture, cams, answer, score in zip(index, pictures, maps, out.classes.tolist(),
                                                   scores, strict=True):  # fmt: skip
            found = locate(cams, picture.size, picture.gt_boxes, rule)
            views.append(AnswerView(i, picture, (answer[0], answer[1]), score, cams, found))
    return views
