"""`cam-visualize`: runs networks on images and writes the paper's kinds of figures.

The job (`visualize_run`): inside the run context, load the networks (evaluate.network: a
cam-train checkpoint, or any model cam-eval takes), read the pictures as cam-eval reads them
(image files and folders, or the data's split) and compute what each network sees
(evaluate.views: the maps of cam-eval's localizer, boxes, IoUs in the original image), load a
cam-features run (features.views), read cam-eval's sweeps, hand all of it to the figure builders
(present.figures, present.draw) and write the PNGs:

- cam_<image>.png: the image, its top-1 map with its box and the ground truth, the top-k maps
  with the classes' names (or "class N" where the network's outputs have none) and scores;
- compare.png: the top-1 maps of several runs (e.g. GAP and GMP) side by side;
- units_<variant>_<class>.png: a class's units with the largest weights w_k^c, on images of the
  class;
- sweep.png: cam-eval's threshold sweeps (sweep.csv), mean +- std over runs of the same model;
- linear_cams.png: CAMs from a cam-features run's linear classifier (Section 4);
- text_cams.png: the text detector of Section 4.2, from a cam-features run's classifier on text
  data or from a CAM network trained on text / no text (text_cams_<variant>.png when a features
  run's is drawn too);
- vqa_panels.png: a VQA checkpoint (cam-train task=vqa) on questions of its data.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from cam_repro.data import DataSplit, dataset_kind, read_split
from cam_repro.data.vqa import read_vqa
from cam_repro.evaluate.config import DataOverrides, box_rule, posthoc_spec, resolve_data
from cam_repro.evaluate.network import (
    Network,
    known_class_names,
    load_network,
    zoo_classes,
)
from cam_repro.evaluate.outputs import read_sweep
from cam_repro.evaluate.views import (
    HeadNet,
    Picture,
    Units,
    class_pictures,
    file_pictures,
    head_cams,
    image_paths,
    localizer,
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
from cam_repro.localize.cam import cam_model
from cam_repro.localize.layers import CAMUnavailableError
from cam_repro.models import model_config
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

log = logging.getLogger(__name__)

# A model without weights is drawn from the same random init every run (load_network's seed).
RANDOM_INIT_SEED = 0


def load_net(path: str, data: DataOverrides, run: RunContext) -> Network:
    """A cam-train checkpoint's network on the run's device (evaluate.network.load_network)."""
    return load_network(path, None, data, run.device, run.runtime.channels_last)


def load_model(spec: VisualizeConfig, split: DataSplit | None, run: RunContext) -> Network:
    """The model of `spec.model` (no checkpoint) on the run's device, through the one loader
    (evaluate.network.load_network). Its outputs: model_classes, else, drawn on a split, the
    data's classes (as cam-eval builds it), else on image files evaluate.network.zoo_classes
    (1000 with weights, as cam-features). A weights file whose final classifier has another
    number of classes is refused: its head would be random and every score meaningless."""
    cfg = model_config(spec.model)
    data = spec.data
    if split is not None:
        classes = spec.model_classes or len(split.classes)
    else:
        classes = zoo_classes(cfg, spec.model_classes, None)
        if data.root is None:  # image files only: no split is read, data.* sizes the images
            data = dataclasses.replace(data, root=".")
    net = load_network(None, cfg, data, run.device, run.runtime.channels_last,
                       num_classes=classes, seed=RANDOM_INIT_SEED)  # fmt: skip
    loaded = getattr(net.model, "weights_load", None)
    if loaded is not None and loaded.skipped:
        raise ConfigError(
            f"model_classes: {cfg.weights_path or cfg.weights}'s final classifier has another "
            f"number of classes than the {classes} built here (see the warning above): give "
            "model_classes=N, the file's"
        )
    if net.weights == "random":
        log.warning("%s has random weights (no model.weights_path or model.pretrained): its "
                    "classes and maps mean nothing", net.paper)  # fmt: skip
    return net


def load_split(spec: VisualizeConfig, net: Network | None) -> DataSplit | None:
    """The data's split that pictures come from without images=: the checkpoint's data (with
    the data.* keys), or a model's data.* keys; None with images=."""
    if spec.images:
        return None
    if net is None:
        return read_split(resolve_data(spec.data, None), spec.split)
    split = read_split(net.data, spec.split)
    if list(split.classes) != net.classes:
        raise ConfigError(
            f"{net.checkpoint} was trained on other classes than {split.root} has: give "
            "images=[...] or data with the same classes"
        )
    return split


def load_pictures(
    spec: VisualizeConfig, net: Network, split: DataSplit | None = None
) -> list[Picture]:
    """The given image files and folders' images (no ground truth), or the first num_images of
    the data's split (`split`; read here if None), read as cam-eval reads them."""
    if spec.images:
        return file_pictures(image_paths(spec.images), net.data)
    split = split or load_split(spec, net)
    assert split is not None
    return split_pictures(split, range(min(spec.num_images, len(split.samples))), net.data)


def imagenet_class_names() -> list[str]:
    """torchvision's ImageNet-1k category names, in the order of its classifiers' outputs."""
    import torchvision

    return list(torchvision.models.ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


def read_class_names(given: str, outputs: int) -> list[str]:
    """class_names=: a text file with one name per line (in output order), or `imagenet`; as
    many names as the network has outputs, else a one-line error naming both counts."""
    if given == "imagenet":
        names, where = imagenet_class_names(), "imagenet (torchvision's ImageNet-1k list)"
    else:
        path = Path(given).expanduser()
        if not path.is_file():
            raise InputFileError(f"class_names: {path} does not exist")
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        while names and not names[-1]:  # a final newline or blank lines at the end
            names.pop()
        where = str(path)
    if len(names) != outputs:
        raise ConfigError(
            f"class_names: {where} has {len(names)} names, the network {outputs} outputs"
        )
    return names


def class_names(spec: VisualizeConfig, net: Network, split: DataSplit | None) -> list[str]:
    """The name of each of the network's outputs: class_names= if given; else the checkpoint's
    or the torchvision weights' (evaluate.network.known_class_names); else, for a model drawn on
    a split (built with its classes, as cam-eval), the data's; else "class N" (not a guess)."""
    if spec.class_names is not None:
        return read_class_names(spec.class_names, net.num_classes)
    names = known_class_names(net)
    if names is None and split is not None and len(split.classes) == net.num_classes:
        names = list(split.class_names)
    return names or [f"class {i}" for i in range(net.num_classes)]


def _class_index(split: DataSplit, names: Sequence[str], given: str) -> int:
    for table in (split.classes, names):
        if given in table:
            return list(table).index(given)
    if given.isdigit() and int(given) < len(split.classes):
        return int(given)
    raise ConfigError(
        f"unit_classes: {given!r} is not a class of {split.root} (wnid, name or index)"
    )


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
    image_paths(spec.images)  # a missing path or an empty folder named before any loading

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
    if spec.model is not None:
        split = load_split(spec, None)
        _draw_networks(spec, [load_model(spec, split, run)], split, run, save)
        return written
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
    _draw_networks(spec, nets, load_split(spec, nets[0]), run, save)
    return written


def _draw_networks(
    spec: VisualizeConfig, nets: list[Network], split: DataSplit | None, run: RunContext, save
) -> None:
    """cam_<image>.png, compare.png, units_*.png and a text network's text_cams.png; `split`:
    the data the pictures come from (None: images=)."""
    for other in nets[1:]:
        if other.classes != nets[0].classes:
            raise ConfigError(f"{other.checkpoint} has other classes than {spec.checkpoint}")
    rule = box_rule(spec)
    amp = run.runtime.amp
    # every network's localizer first: a refusal (no CAM head, an unknown layer) before any work
    posthoc = posthoc_spec(spec.localizer, spec.torchcam)
    locs = [localizer(n, spec.localizer, run.device, amp, spec.gradcam_layer, posthoc)
            for n in nets]  # fmt: skip
    # the maps' name in the figures: a torch-cam method's title
    shown = posthoc.info.title if posthoc is not None else spec.localizer
    main = nets[0]
    names = class_names(spec, main, split)
    pictures = load_pictures(spec, main, split)
    with ExitStack() as hooks:  # a torch-cam method's hooks, removed on every exit
        for loc in locs:
            hooks.enter_context(loc)
        seens = [look(net, pictures, spec.topk, rule, run.device, amp, loc)
                 for net, loc in zip(nets, locs, strict=True)]  # fmt: skip
    seen = seens[0]
    if spec.per_image:
        for picture, s in zip(pictures, seen, strict=True):
            fig = picture_figure(picture, s, names, main.paper, spec.threshold, spec.normalize,
                                 shown)  # fmt: skip
            save(f"cam_{_file_name(picture.name)}.png", fig)
    if len(nets) > 1:
        save("compare.png", compare_figure([n.paper for n in nets], names, pictures, seens,
                                           spec.threshold, spec.normalize,
                                           shown))  # fmt: skip
    if spec.units and _draws_units(spec, nets, split):
        assert split is not None
        wanted = [_class_index(split, names, c) for c in spec.unit_classes]
        for c in wanted or [pictures[0].label]:
            for net in nets:
                units = class_units(net, c, split, spec, run)
                title = f"{short_name(names[c], 40)} ({split.classes[c]})"
                fig = units_figure(net.paper, title, units, spec.normalize)
                save(f"units_{net.variant}_{_file_name(split.classes[c])}.png", fig)
    if split is not None and main.state is not None and dataset_kind(main.data)["task"] == "text":
        # beside a features run's text_cams.png, the network's own gets its variant's name
        name = "text_cams.png" if spec.features_run is None else f"text_cams_{main.variant}.png"
        save(name, network_text(main, spec, run))


def _draws_units(spec: VisualizeConfig, nets: Sequence[Network], split: DataSplit | None) -> bool:
    """Whether units_*.png can be drawn: it needs images with their true class (the data's, not
    images=) and a CAM head's weights w_k^c. Asked for by unit_classes, a one-line error if
    not; by default (units > 0), one log line and no figure."""
    why = None
    if split is None:
        why = "images=[...] have no true class to pick the class's images by"
    else:
        for net in nets:
            try:
                cam_model(net.model)
            except CAMUnavailableError:
                why = f"{net.paper} has no CAM head (its class weights w_k^c)"
                break
    if why is None:
        return True
    if spec.unit_classes:
        raise ConfigError(f"unit_classes: no units figure: {why}; give units=0")
    log.info("units: no units_*.png: %s", why)
    return False


def class_units(
    net: Network, c: int, split: DataSplit, spec: VisualizeConfig, run: RunContext
) -> Units:
    """Class c's spec.units strongest units on the first num_images images of the split whose
    true class is c (evaluate.views.class_pictures, read as cam-eval reads them)."""
    pictures = class_pictures(split, c, spec.num_images, net.data)
    return unit_maps(net, c, pictures, spec.units, run.device)
