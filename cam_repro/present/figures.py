"""cam-visualize's figures, built from what networks saw (evaluate.views): no model, no files.

- picture_figure: the image, its top-1 map with the map's box (red) and the ground truth (green),
  and a row of the top-k classes' maps with names and scores (the paper's Figures 3-4); the maps
  are CAMs, or Grad-CAM's or Backprop's (cam-eval's localizers), named in the title;
- compare_figure: the top-1 maps of several runs side by side on the same images;
- units_figure: a class's units with the largest weights w_k^c and where they fire, beside the
  class's CAM (the paper's class-specific units);
- linear_cams_figure: CAMs from a cam-features run's linear classifier (Section 4);
- text_cams_figure: the text detector of Section 4.2 (the text class's CAM on text images);
- vqa_figure: a VQA model's predicted and true answer's CAMs on questions (Section 4.2).

Boxes, peaks and IoUs come in the ORIGINAL image (localize.scoring, as cam-eval's
predictions.csv): the captions print those IoUs, and the boxes and peaks are only scaled to the
drawn frame here. Every map is drawn with its box under the rule (red), the ground truth (green)
and, in the Section 4.2 figures and linear_cams_figure, its peak (a cross).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from cam_repro.localize.boxes import BoxRule, scale_boxes
from cam_repro.present.draw import cam_figure, cam_panel, grid_figure

if TYPE_CHECKING:
    from cam_repro.evaluate.views import AnswerView, Located, Picture, Seen, Units


# How a figure names the maps of each of cam-eval's localizers (evaluate.config.LOCALIZERS); a
# torch-cam method's maps are named by its title (localize.posthoc_methods), given instead.
MAP_NAMES = {"cam": "CAM", "gradcam": "Grad-CAM", "backprop": "Backprop saliency"}


def short_name(name: str, width: int = 22) -> str:
    """A class name short enough for a panel title (the synthetic names are long)."""
    name = name.split(":")[0] if name.startswith("synthetic class") else name.split(",")[0]
    return name if len(name) <= width else name[: width - 1] + "…"


def _side(picture: Picture) -> tuple[int, int]:
    h, w = picture.frame.shape[:2]
    return w, h


def drawn_boxes(picture: Picture, boxes: np.ndarray) -> np.ndarray:
    """Boxes of the original image (n, 4) as drawn on the picture's frame."""
    boxes = np.asarray(boxes, np.int64).reshape(-1, 4)
    if not len(boxes):
        return boxes
    return scale_boxes(boxes, picture.size, _side(picture))


def drawn_peak(picture: Picture, peak: np.ndarray) -> np.ndarray:
    """A point (x, y) of the original image on the picture's frame (pixel centres kept)."""
    scale = np.asarray(_side(picture), np.float64) / np.asarray(picture.size, np.float64)
    return (np.asarray(peak, np.float64) + 0.5) * scale - 0.5


def _caption(class_names: Sequence[str], seen: Seen, j: int) -> str:
    text = f"{short_name(class_names[seen.classes[j]])} {seen.scores[j]:.2f}"
    iou = seen.ious[j]
    return text if iou is None else f"{text}\nIoU {iou:.2f}"


def _top1_panel(picture: Picture, seen: Seen, caption: str, normalize: str):
    gt = drawn_boxes(picture, picture.gt_boxes)
    box = drawn_boxes(picture, seen.boxes[:1])
    return cam_panel(picture.frame, seen.maps[0], box, gt, caption, normalize)


def picture_figure(
    picture: Picture,
    seen: Seen,
    class_names: Sequence[str],
    net_name: str,
    threshold: float,
    normalize: str,
    localizer: str = "cam",
):
    """The paper's Figures 3-4 for one image: the maps of `localizer` (cam | gradcam |
    backprop), named in the title and the top-1 panel."""
    method = MAP_NAMES.get(localizer, localizer)
    truth = ""
    if picture.label is not None:
        truth = f", true class {short_name(class_names[picture.label])}"
    gt = drawn_boxes(picture, picture.gt_boxes)
    top = [
        cam_panel(picture.frame, None, None, gt, "image" + truth),
        _top1_panel(picture, seen, f"top-1 {method}: {_caption(class_names, seen, 0)}", normalize),
    ]
    row = [  # each class's map with its own box under the rule
        cam_panel(picture.frame, m, drawn_boxes(picture, seen.boxes[j : j + 1]), None,
                  _caption(class_names, seen, j), normalize)
        for j, m in enumerate(seen.maps[: len(seen.classes)])
    ]  # fmt: skip
    legend = "box red, truth green" if len(picture.gt_boxes) else "box red"
    title = f"{net_name}, {method}: {picture.name} (threshold {threshold:g}; {legend})"
    return cam_figure(top, row, title)


def compare_figure(
    names: Sequence[str],
    class_names: Sequence[str],
    pictures: Sequence[Picture],
    seens: Sequence[Sequence[Seen]],
    threshold: float,
    normalize: str,
    localizer: str = "cam",
):
    """Top-1 maps (`localizer`'s) of several nets side by side: rows are images, columns the
    image and each net."""
    rows = []
    for i, picture in enumerate(pictures):
        gt = drawn_boxes(picture, picture.gt_boxes)
        row = [cam_panel(picture.frame, None, None, gt, picture.name)]
        for seen in seens:
            row.append(_top1_panel(picture, seen[i], _caption(class_names, seen[i], 0), normalize))
        rows.append(row)
    return grid_figure(
        rows, ["image", *names],
        f"top-1 {MAP_NAMES.get(localizer, localizer)} maps at threshold {threshold:g} (box red, "
        "truth green)",
    )  # fmt: skip


def units_figure(net_name: str, class_title: str, units: Units, normalize: str):
    """A class's units with the largest weights w_k^c: where each fires on the class's images
    (`units.pictures`), beside the class's CAM (the paper's Section 5, class-specific units)."""
    rows = []
    for picture, up in zip(units.pictures, units.maps, strict=True):
        gt = drawn_boxes(picture, picture.gt_boxes)
        row = [cam_panel(picture.frame, None, None, gt, picture.name),
               cam_panel(picture.frame, up[0], None, None, "", normalize)]  # fmt: skip
        row += [
            cam_panel(picture.frame, up[1 + j], None, None, f"unit {u}\nw={w:.3f}")
            for j, (u, w) in enumerate(zip(units.units, units.weights, strict=True))
        ]
        rows.append(row)
    count = len(units.units)
    title = f"{net_name}: the {count} units with the largest weights for {class_title}"
    return grid_figure(rows, ["image", "class CAM", *[f"#{r + 1}" for r in range(count)]],
                       title)  # fmt: skip


def map_panel(picture: Picture, cam: np.ndarray, where: Located, caption: str, mode: str = "max"):
    """A map over the picture with its box (red), the picture's ground truth (green) and the
    map's peak (a cross); the IoU and the pointing game's outcome under the caption."""
    if where.iou is not None:
        caption += f"\nIoU {where.iou:.2f}, peak {'on' if where.hit else 'off'} target"
    return cam_panel(picture.frame, cam, drawn_boxes(picture, where.box[None]),
                     drawn_boxes(picture, picture.gt_boxes), caption, mode,
                     peak=drawn_peak(picture, where.peak))  # fmt: skip


def linear_cams_figure(
    pictures: Sequence[Picture],
    predicted: Sequence[int],
    maps: np.ndarray,
    located: Sequence[Sequence[Located]],
    class_names: Sequence[str],
    rule: BoxRule,
    title: str,
):
    """A classifier's CAMs on one test image of each class: the image with its ground truth, the
    map of the predicted class with its box (the paper's rule), the map of the true class."""
    rows = []
    for picture, pred, cams, found in zip(pictures, predicted, maps, located, strict=True):
        assert picture.label is not None  # a sample of the split
        mark = "right" if pred == picture.label else "wrong"
        captions = [
            f"{short_name(class_names[pred])} ({mark})",
            short_name(class_names[picture.label]),
        ]
        rows.append([
            cam_panel(picture.frame, None, None, drawn_boxes(picture, picture.gt_boxes),
                      picture.name),
            *[map_panel(picture, cams[j], found[j], captions[j], rule.normalize)
              for j in (0, 1)],
        ])  # fmt: skip
    heading = f"CAMs from the {title}\nthreshold {rule.threshold:g} (box red, truth green, peak +)"
    return grid_figure(rows, ["image", "predicted class", "true class"], heading)


def text_cams_figure(
    pictures: Sequence[Picture],
    predicted: Sequence[int],
    maps: np.ndarray,
    located: Sequence[Located],
    class_names: Sequence[str],
    rule: BoxRule,
    title: str,
):
    """The paper's text-detector figure: each text image with its word boxes (green), and the
    text class's CAM with its box under the paper's rule (red) and its peak; captioned with the
    detector's prediction."""
    rows = []
    for picture, pred, cam, where in zip(pictures, predicted, maps, located, strict=True):
        mark = "right" if pred == picture.label else "wrong"
        rows.append([
            cam_panel(picture.frame, None, None, drawn_boxes(picture, picture.gt_boxes),
                      picture.name),
            map_panel(picture, cam, where, f"says {short_name(class_names[pred])} ({mark})",
                      rule.normalize),
        ])  # fmt: skip
    return grid_figure(
        rows, ["image, word boxes", "CAM of the text class"],
        f"{title}\nthreshold {rule.threshold:g} (box red, words green, peak +)",
    )  # fmt: skip


def _wrap(text: str, width: int = 30) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def vqa_figure(
    views: Sequence[AnswerView],
    questions: Sequence[str],
    kinds: Sequence[str],
    answers: Sequence[str],
    net_name: str,
    rule: BoxRule,
):
    """The paper's VQA figure: a row per question: the image with the target object's box
    (green) and the question; the predicted answer's CAM with its box under the paper's rule
    (red) and its peak; the true answer's CAM likewise."""
    rows = []
    for v in views:
        (pred, truth), picture, found = v.answers, v.picture, v.located
        mark = "right" if pred == truth else "wrong"
        rows.append([
            cam_panel(picture.frame, None, None, drawn_boxes(picture, picture.gt_boxes),
                      f"{_wrap(questions[v.index])}\n[{kinds[v.index]}]"),
            map_panel(picture, v.maps[0], found[0],
                      f"{short_name(answers[pred])} {v.scores[0]:.2f} ({mark})", rule.normalize),
            map_panel(picture, v.maps[1], found[1],
                      f"{short_name(answers[truth])} {v.scores[1]:.2f}"
                      + (" (= predicted)" if pred == truth else ""), rule.normalize),
        ])  # fmt: skip
    title = (
        f"{net_name} + BoW (VQA): the answer's CAM\nthreshold {rule.threshold:g} (box red, "
        "target object green, peak +)"
    )
    return grid_figure(rows, ["question", "predicted answer", "true answer"], title, cell=2.6)
