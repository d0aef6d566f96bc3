"""`cam-visualize`: runs trained networks on images and writes the paper's kinds of figures.

The job (`visualize_run`): inside the run context, load the networks (evaluate.network), read
the pictures as cam-eval reads them and compute what each network sees (evaluate.views: maps,
boxes, IoUs in the original image), load a cam-features run (features.views), read cam-eval's
sweeps, hand all of it to the figure builders (present.figures, present.draw) and write the PNGs:

- cam_<image>.png: the image, its top-1 CAM with its box and the ground truth, the top-k CAMs;
- compare.png: the top-1 CAMs of several runs (e.g. GAP and GMP) side by side;
- units_<variant>_<class>.png: a class's units with the largest weights w_k^c;
- sweep.png: cam-eval's threshold sweeps (sweep.csv), mean +- std over runs of the same model;
- linear_cams.png: CAMs from a cam-features run's linear classifier (Section 4);
- text_cams.png: the text detector of Section 4.2, from a cam-features run's classifier on text
  data or from a CAM network trained on text / no text (text_cams_<variant>.png when a features
  run's is drawn too);
- vqa_panels.png: a VQA checkpoint (cam-train task=vqa) on questions of its data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cam_repro.data import DataSplit, dataset_kind, read_split
from cam_repro.data.vqa import read_vqa
from cam_repro.evaluate.config import DataOverrides, box_rule
from cam_repro.evaluate.network import Network, load_network
from cam_repro.evaluate.outputs import read_sweep
from cam_repro.evaluate.views import (
    HeadNet,
    Picture,
    file_pictures,
    head_cams,
    locate,
    look,
    own_head,
    split_pictures,
    unit_maps,
    vqa_questions,
    vqa_views,
)
from cam_repro.features.views import FeaturesRunView, load_features_run
from cam_repro.localize.boxes import BoxRule
from cam_repro.present.draw import Curve, figure_png, sweep_figure
from cam_repro.present.figures import (
    compare_figure,
    linear_cams_figure,
    picture_figure,
    short_name,
    text_cams_figure,
    units_figure,
    vqa_figure,
)
from cam_repro.runtime.context import RunContext, run_context
from cam_repro.runtime.errors import ConfigError, InputFileError
from cam_repro.runtime.files import atomic_write
from cam_repro.runtime.metrics_file import read_metrics
from cam_repro.visualize_config import VisualizeConfig, visualize_config


def load_net(path: str, data: DataOverrides, run: RunContext) -> Network:
    """A cam-train checkpoint's network on the run's device (evaluate.network.load_network)."""
    return load_network(path, None, data, run.device, run.runtime.channels_last)


def load_pictures(spec: VisualizeConfig, net: Network) -> list[Picture]:
    """The given image files (no ground truth), or the first num_images of the data's split, read
    as cam-eval reads them."""
    if spec.images:
        return file_pictures(spec.images, net.data)
    split = read_split(net.data, spec.split)
    if list(split.classes) != net.classes:
        raise ConfigError(
            f"{net.checkpoint} was trained on other classes than {split.root} has: give "
            "images=[...] or data with the same classes"
        )
    return split_pictures(split, range(min(spec.num_images, len(split.samples))), net.data)


def _class_index(net: Network, given: str) -> int:
    classes, names = net.classes or [], net.class_names or []
    for table in (classes, names):
        if given in table:
            return table.index(given)
    if given.isdigit() and int(given) < len(classes):
        return int(given)
    raise ConfigError(f"unit_classes: {given!r} is not a class of {net.checkpoint} (wnid or name)")


# --- the Section 4 and 4.2 figures: maps of a linear head, VQA answers ---------------------------


def linear_cams(fv: FeaturesRunView, run: RunContext, num_images: int):
    """linear_cams.png: the classifier's CAMs (M_c = sum_k w_k^c f_k with the fitted w) on one
    test image of each of the first num_images classes, its predicted and its true class's."""
    data = fv.test
    first: dict[int, int] = {}
    for i, sample in enumerate(data.samples):
        if sample.image_id in fv.predicted:
            first.setdefault(sample.label, i)
    chosen = [first[c] for c in sorted(first)][:num_images]
    if not chosen:
        raise InputFileError(f"{fv.run_dir}: none of its test images is left to draw")
    pictures = split_pictures(data, chosen, fv.net.net.data)
    predicted = [fv.predicted[p.name] for p in pictures]
    wanted = [[c, p.label] for c, p in zip(predicted, pictures, strict=True)]
    maps, _ = head_cams(fv.net, pictures, wanted, run.device)
    located = [locate(m, p.size, p.gt_boxes, fv.rule) for m, p in zip(maps, pictures, strict=True)]
    return linear_cams_figure(pictures, predicted, maps, located, data.class_names, fv.rule,
                              fv.title)  # fmt: skip


def text_pictures(data: DataSplit, net: Network, n: int, keep=None) -> list[Picture]:
    """The first n text images of a split (those with word boxes; `keep(sample)` may pass over
    more), as cam-eval sees them."""
    chosen = [i for i, s in enumerate(data.samples)
              if len(s.own_boxes) and (keep is None or keep(s))][:n]  # fmt: skip
    return split_pictures(data, chosen, net.data)


def text_cams(
    head: HeadNet,
    pictures: Sequence[Picture],
    predicted: Sequence[int] | None,
    class_names: Sequence[str],
    rule: BoxRule,
    title: str,
    run: RunContext,
):
    """The text-detector figure: the text class's CAM (each image's own class) from the head's
    weights, captioned with the detector's prediction (`predicted`, or the head's own top class
    when None)."""
    if not pictures:
        raise InputFileError("no text image (an image with word boxes) to draw")
    maps, scores = head_cams(head, pictures, [[p.label] for p in pictures], run.device)
    if predicted is None:
        predicted = scores.argmax(axis=1).tolist()
    located = [locate(m[:1], p.size, p.gt_boxes, rule)[0]
               for m, p in zip(maps, pictures, strict=True)]  # fmt: skip
    return text_cams_figure(pictures, predicted, maps[:, 0], located, class_names, rule, title)


def features_text(fv: FeaturesRunView, run: RunContext, num_images: int):
    """text_cams.png of a cam-features run: the linear classifier's CAMs and predictions."""
    keep = lambda s: s.image_id in fv.predicted  # noqa: E731
    pictures = text_pictures(fv.test, fv.net.net, num_images, keep)
    predicted = [fv.predicted[p.name] for p in pictures]
    title = f"text detector: CAMs from the {fv.title}"
    return text_cams(fv.net, pictures, predicted, fv.test.class_names, fv.rule, title, run)


def network_text(net: Network, spec: VisualizeConfig, run: RunContext):
    """text_cams.png of a CAM network trained on text / no text: its own last layer's CAMs and
    predictions."""
    data = read_split(net.data, spec.split)
    pictures = text_pictures(data, net, spec.num_images)
    title = f"text detector: CAMs of {net.paper} trained on text / no text"
    return text_cams(own_head(net), pictures, None, net.class_names or [], box_rule(spec), title,
                     run)  # fmt: skip


def vqa_panels(net: Network, spec: VisualizeConfig, run: RunContext):
    """vqa_panels.png: num_images questions of the split, the predicted and the true answer's
    CAMs on each (evaluate.views.vqa_views)."""
    assert net.question_vocab is not None
    rule = box_rule(spec)
    data = read_vqa(net.data, spec.split, vocab=net.question_vocab, answers=net.classes)
    q = data.questions
    assert q is not None
    chosen = vqa_questions(q.kinds, [len(s.own_boxes) > 0 for s in data.samples], spec.num_images)
    if not chosen:
        raise InputFileError(f"{data.root} {spec.split}: no question to draw")
    views = vqa_views(net, data, chosen, rule, run.device, run.runtime.amp)
    return vqa_figure(views, q.text, q.kinds, data.classes, net.paper, rule)


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
        groups.setdefault(_sweep_label(run_dir), []).append(read_sweep(run_dir / "sweep.csv"))
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


def _sweep_label(run_dir: Path) -> str:
    """A run's curve label: its metrics.json's paper name (and evidence), else its folder (no
    metrics.json, or one cam-eval's reader refuses: the curves come from sweep.csv)."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return run_dir.name
    try:
        record = read_metrics(path, "eval")
    except InputFileError:
        return run_dir.name
    label = record.paper_name or run_dir.name
    return f"{label}, {record.data.evidence}" if record.data.evidence else label


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
        fv = load_features_run(Path(spec.features_run), run.device, run.runtime.channels_last)
        save("linear_cams.png", linear_cams(fv, run, spec.num_images))
        if fv.task == "text":
            save("text_cams.png", features_text(fv, run, spec.num_images))
    if spec.checkpoint is None:
        return written
    nets = [load_net(p, spec.data, run) for p in [spec.checkpoint, *spec.compare]]
    if nets[0].question_vocab is not None:
        if spec.compare or spec.images:
            raise ConfigError(
                f"{spec.checkpoint} is a VQA model: it is drawn on its data's questions "
                "(vqa_panels.png), without compare=[...] or images=[...]"
            )
        save("vqa_panels.png", vqa_panels(nets[0], spec, run))
        return written
    _draw_networks(spec, nets, run, save)
    return written


def _draw_networks(spec: VisualizeConfig, nets: list[Network], run: RunContext, save) -> None:
    """cam_<image>.png, compare.png, units_*.png and a text network's text_cams.png."""
    for other in nets[1:]:
        if other.classes != nets[0].classes:
            raise ConfigError(f"{other.checkpoint} has other classes than {spec.checkpoint}")
    rule = box_rule(spec)
    pictures = load_pictures(spec, nets[0])
    seens = [look(net, pictures, spec.topk, rule, run.device, run.runtime.amp) for net in nets]
    main, seen = nets[0], seens[0]
    names = main.class_names or []
    if spec.per_image:
        for picture, s in zip(pictures, seen, strict=True):
            fig = picture_figure(picture, s, names, main.paper, spec.threshold, spec.normalize)
            save(f"cam_{_file_name(picture.name)}.png", fig)
    if len(nets) > 1:
        save("compare.png", compare_figure([n.paper for n in nets], names, pictures, seens,
                                           spec.threshold, spec.normalize))  # fmt: skip
    if spec.units:
        wanted = [_class_index(main, c) for c in spec.unit_classes]
        first = pictures[0].label if pictures[0].label is not None else seen[0].classes[0]
        for net, net_seen in zip(nets, seens, strict=True):
            classes = net.classes or []
            for c in wanted or [first]:
                units = unit_maps(net, c, pictures, net_seen, spec.units)
                title = f"{short_name((net.class_names or [])[c], 40)} ({classes[c]})"
                fig = units_figure(net.paper, title, pictures, units, spec.normalize)
                save(f"units_{net.variant}_{_file_name(classes[c])}.png", fig)
    if not spec.images and dataset_kind(main.data)["task"] == "text":
        # beside a features run's text_cams.png, the network's own gets its variant's name
        name = "text_cams.png" if spec.features_run is None else f"text_cams_{main.variant}.png"
        save(name, network_text(main, spec, run))
