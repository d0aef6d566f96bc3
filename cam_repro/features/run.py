"""`cam-features`: a network's features of another dataset, a linear classifier on them, and the
classifier's own class activation maps (Zhou et al. 2016, Section 4 and 4.1).

1. Features of the train and test splits (cam_repro.features.extract), of the whole image, of
   the crop to the box of the network's own top-1 CAM (the paper's rule: largest component at
   `threshold` x max), of the crop to the ground-truth box, or full and CAM crop concatenated;
   a crop is cut from the original image and resized to the network's input. Each part is
   cached (cam_repro.features.cache) and reused only by a run whose every input of it is the
   same (weights by content, images, labels, boxes, transform, ...); the log and metrics.json's
   `caches` say which files were reused or made, and why.
2. A linear classifier (the paper's linear SVM; cam_repro.features.linear) fitted on train,
   scored on test: accuracy, mean per-class accuracy.
3. Where the test split has boxes and the features have conv maps: localization from the
   classifier's weights, M_c = sum_k w_k^c f_k over the full image's last conv maps (the paper's
   generic localization): GT-known (the true class's map) and top-1 (the classifier's predicted
   class's map, right only if the prediction is) at IoU >= iou_threshold, and the pointing game
   (the true class's map peaks in one of its boxes). With crop=full+cam
   the maps use the full-image half of the weights.

A run folder gets: config.yaml, features.log, metrics.json, classifier.npz, per_class.csv,
predictions.csv, and cache/features_<split>_<part>.npz (unless cache_dir points elsewhere;
overwrite=true rebuilds this folder, never a shared cache_dir). A metric over no image is null
in metrics.json, its reason under "undefined" (cam-eval's convention).
"""

from __future__ import annotations

import logging
import shutil
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from cam_repro.data import DataConfig, DataSplit, model_input, read_split
from cam_repro.data.dataset import SkipLog
from cam_repro.data.loaders import eval_loader
from cam_repro.data.samples import original_sizes
from cam_repro.evaluate.config import resolve_data
from cam_repro.evaluate.localizer import Localizer
from cam_repro.evaluate.network import Network, load_network, zoo_classes
from cam_repro.features.cache import (
    CacheUse,
    PartFeatures,
    boxes_digest,
    cache_path,
    cached,
    code_version,
    images_stamp,
    labels_digest,
    network_identity,
)
from cam_repro.features.config import FeaturesConfig, features_config
from cam_repro.features.extract import Extractor, feature_extractor, head_pool
from cam_repro.features.linear import (
    LinearClassifier,
    fit_linear,
    per_class_accuracy,
    save_classifier,
)
from cam_repro.features.summary import metrics_json, per_class_csv, predictions_csv
from cam_repro.localize.boxes import BoxRule
from cam_repro.localize.cam import upsample_cams
from cam_repro.localize.layers import CAMUnavailableError
from cam_repro.localize.loc_error import Undefined
from cam_repro.localize.scoring import score_maps
from cam_repro.models import model_config
from cam_repro.models.config import ANY_ARCHS
from cam_repro.runtime import distributed as D
from cam_repro.runtime.context import run_context
from cam_repro.runtime.errors import ConfigError, InputFileError
from cam_repro.runtime.files import make_dir, output_error, write_text_atomic
from cam_repro.runtime.metrics_file import save_metrics
from cam_repro.runtime.numeric import check_finite
from cam_repro.runtime.precision import autocast
from cam_repro.runtime.typed_json import value_at

log = logging.getLogger(__name__)

# What a finished run leaves, the marker of a finished run first (the caches are not results).
RESULTS = ("metrics.json", "classifier.npz", "per_class.csv", "predictions.csv")


def features_network(
    spec: FeaturesConfig, device: torch.device, channels_last: bool, data_classes: int | None = None
) -> Network:
    """The network of a features config (evaluate.network.load_network): the checkpoint's, or
    the zoo model with its own classes (model_classes; 1000 with weights; else `data_classes`,
    the data's), initialised from `spec.seed` (the same random init every run)."""
    if spec.checkpoint is not None:
        return load_network(spec.checkpoint, None, spec.data, device, channels_last)
    cfg = model_config(spec.model)
    classes = zoo_classes(cfg, spec.model_classes, data_classes)
    return load_network(None, cfg, spec.data, device, channels_last, num_classes=classes,
                        seed=spec.seed)  # fmt: skip


def _image_data(data: DataConfig) -> DataConfig:
    """`data`, unless it is VQA data: its samples are questions, not classes of images."""
    if data.source == "vqa":
        raise ConfigError(
            "cam-features classifies images; VQA data (data.source=vqa) is for cam-train task=vqa "
            "and cam-eval: give data of image classes (data.root=..., data=...)"
        )
    return data


def cam_box_rule(threshold: float) -> BoxRule:
    """cam-features' box rule, the one for its crops, its localization scores and its figures:
    the paper's rule at `threshold` of each map's max."""
    return BoxRule(threshold, "max")


class FeatureRun:
    """Features of the splits under one config, computed or read from the caches."""

    def __init__(
        self, spec: FeaturesConfig, env: D.Dist, cache_dir: Path, removed: frozenset[Path]
    ) -> None:
        self.spec, self.env, self.cache_dir = spec, env, cache_dir
        self.removed = removed  # cache files overwrite=true removed (the reason they are made)
        self.caches: list[CacheUse] = []  # what each part did with its cache (metrics.json)
        self._digests: dict[tuple[str, str], str] = {}  # (split, what) -> digest, made once
        on = (env.device, spec.runtime.channels_last)
        if spec.checkpoint is not None:
            net = features_network(spec, *on)
            self.train = read_split(_image_data(net.data), spec.train_split)
        else:  # the data first: a network without weights gets as many classes as it has
            self.train = read_split(_image_data(resolve_data(spec.data, None)), spec.train_split)
            net = features_network(spec, *on, len(self.train.classes))
        self.test = read_split(net.data, spec.test_split)
        if list(self.train.classes) != list(self.test.classes):
            raise InputFileError(
                f"{net.data.root}: the {spec.train_split} and {spec.test_split} splits have "
                "different classes"
            )
        self.net = net
        self.name = spec.checkpoint or net.variant
        self.model = net.model
        self.identity = network_identity(net)  # the caches' weights and model
        # Any classifier (model=torchvision|module|file) is its own network: avgpool is its
        # pooled vector, as an original GoogLeNet's
        modified = net.config.modified and net.config.arch not in ANY_ARCHS
        self.extract: Extractor = feature_extractor(self.model, spec.features, self.name, modified)
        if "cam" in spec.crop.split("+"):
            try:
                Localizer(self.model, "cam", spec.runtime.amp, env.device)  # a clear error now
            except CAMUnavailableError as err:  # its advice names cam-eval's localizers
                raise ConfigError(
                    f"crop={spec.crop} cuts the box of the network's own class activation map, "
                    f"and {err.reason}; use crop=full or crop=gt, or a network with a CAM (a "
                    "-GAP/-GMP variant, or any classifier ending in global pooling and one "
                    "linear layer)"
                ) from None
        self.skips = {s: SkipLog(d) for s, d in ((spec.train_split, self.train),
                                                 (spec.test_split, self.test))}  # fmt: skip

    # -- helpers ------------------------------------------------------------------------------
    def _identity(self, data: DataSplit, part: str) -> dict[str, Any]:
        """Everything the features of `part` of the split depend on (cache.IDENTITY_FIELDS)."""
        cfg, spec = self.net.data, self.spec
        crop = {
            "full": None,
            # the paper's rule on the network's own top-1 CAM, in the input frame (_cam_boxes)
            "cam": {"rule": "top-1 CAM, largest component", "threshold": spec.threshold},
            "gt": {"rule": "tight box of the image's own-class boxes"},  # gt_crop_boxes
        }[part]
        return {
            "format": code_version(), **self.identity, "features": spec.features,
            "part": part, "crop": crop,
            "transform": {"image_size": cfg.image_size, "mean": list(cfg.mean),
                          "std": list(cfg.std)},  # data.transforms.eval_transform, model_input
            "precision": {"amp": spec.runtime.amp, "channels_last": spec.runtime.channels_last},
            "split": {"root": str(Path(cfg.root).expanduser().resolve()), "name": data.split,
                      "source": cfg.source},
            "images": {"count": len(data.samples), "stat": self._digest(data, "images")},
            "reading": {"bad_images": cfg.bad_images, "max_image_pixels": cfg.max_image_pixels},
            "labels": self._digest(data, "labels"),
            # crops are cut to (gt) or scored against (cam's box_ious) the boxes; full is not
            "boxes": None if part == "full" else {"digest": self._digest(data, "boxes"),
                                                  "data.boxes": cfg.boxes},
        }  # fmt: skip

    def _digest(self, data: DataSplit, what: str) -> str:
        """The split's images (every file's stat), labels or boxes digest, made once a run."""
        key = (data.split, what)
        if key not in self._digests:
            make = {"images": lambda d: images_stamp(s.path for s in d.samples),
                    "labels": labels_digest, "boxes": boxes_digest}[what]  # fmt: skip
            self._digests[key] = make(data)
        return self._digests[key]

    def _batches(self, data: DataSplit, crops: np.ndarray | None = None, what: str = ""):
        """(normalised images on the device, labels, sample indices) of every readable image."""
        cfg, env = self.net.data, self.env
        show = self.spec.runtime.progress
        loader = eval_loader(data, cfg, env, crops=crops)
        for images, labels, index, skipped in tqdm(
            loader, desc=what, leave=False, disable=not show
        ):
            self.skips[data.split].add(skipped)
            if images is None:
                continue
            x = model_input(
                images.to(env.device), cfg.mean, cfg.std, self.spec.runtime.channels_last
            )
            yield x, labels, index

    def _features(self, x: torch.Tensor, first: Path) -> tuple[torch.Tensor, torch.Tensor | None]:
        with torch.no_grad(), autocast(self.env.device, self.spec.runtime.amp):
            vectors, maps = self.extract(x)
        vectors = vectors.float()
        check_finite({"features": vectors}, f"{self.name}, batch from {first}", "")
        return vectors, maps

    def _sizes(self, data: DataSplit, indices: list[int]) -> np.ndarray:
        samples = [data.samples[i] for i in indices]
        return original_sizes(samples, self.net.data.max_image_pixels)

    # -- the parts ------------------------------------------------------------------------------
    def part(self, data: DataSplit, part: str) -> PartFeatures:
        """The features of `part` (full | cam | gt) of the split, from the cache if it fits."""
        path = cache_path(self.cache_dir, data.split, part)
        found, use = cached(path, self._identity(data, part), lambda: self._compute(data, part),
                            data.split, part, path in self.removed)  # fmt: skip
        self.caches.append(use)
        if use.status == "reused":  # the images it could not read then: unreadable still
            read = set(found.indices.tolist())
            gone = [i for i in range(len(data.samples)) if i not in read]
            self.skips[data.split].add((i, "unreadable when the cache was made") for i in gone)
        return found

    def _compute(self, data: DataSplit, part: str) -> PartFeatures:
        tick = time.perf_counter()
        if part == "full":
            found = self._collect(data, None, "full")
        elif part == "cam":
            boxes, ious = self._cam_boxes(data)
            found = self._crops(data, boxes, ious, "cam crops")
        else:
            boxes = gt_crop_boxes(data)
            found = self._crops(data, boxes, np.ones(len(data.samples)), "gt crops")
        log.info(
            "%s %s features: %d images x %d in %.1f s", data.split, part,
            len(found.labels), found.features.shape[1], time.perf_counter() - tick,
        )  # fmt: skip
        return found

    def _collect(self, data: DataSplit, crops: np.ndarray | None, what: str) -> PartFeatures:
        feats, labels, indices = [], [], []
        for x, y, index in self._batches(data, crops, f"{data.split} {what}"):
            vectors, _ = self._features(x, data.samples[int(index[0])].path)
            feats.append(vectors.cpu().numpy())
            labels.append(y.numpy())
            indices.append(index.numpy())
        return _stack(feats, labels, indices)

    def _crops(self, data: DataSplit, boxes: np.ndarray, ious: np.ndarray, what: str):
        found = self._collect(data, boxes, what)
        found.boxes = boxes[found.indices]
        found.box_ious = ious[found.indices]
        return found

    def _cam_boxes(self, data: DataSplit) -> tuple[np.ndarray, np.ndarray]:
        """Every image's box of the network's own top-1 CAM (the paper's rule), in the original
        image, and its IoU with the image's ground truth (NaN where it has none)."""
        spec = self.spec
        loc = Localizer(self.model, "cam", spec.runtime.amp, self.env.device)
        rule = cam_box_rule(spec.threshold)
        n = len(data.samples)
        boxes = np.zeros((n, 4), dtype=np.int64)  # unread images: never cropped (skipped again)
        ious = np.full(n, np.nan)
        for x, _, index in self._batches(data, None, f"{data.split} CAM boxes"):
            top1 = loc.logits(x).argmax(dim=1, keepdim=True)  # (B, 1): the network's own class
            frame = x.shape[-1]
            maps = upsample_cams(loc.raw_maps(x, top1).float(), (frame, frame))[:, 0]
            idx = index.tolist()
            samples = [data.samples[i] for i in idx]
            # the top-1 map's box, scored against the image's own class's boxes
            labels = np.array([[s.label] for s in samples])
            scored = score_maps(
                maps[:, None], labels, self._sizes(data, idx), [s.boxes for s in samples],
                [s.box_labels for s in samples], rule,
            )  # fmt: skip
            boxes[idx] = scored.boxes[:, 0]
            has = np.array([len(s.own_boxes) > 0 for s in samples], dtype=bool)
            ious[idx] = np.where(has, scored.ious[:, 0], np.nan)  # NaN: no box of its class
        return boxes, ious

    # -- localization from the classifier's weights ---------------------------------------------
    def localize(self, clf: LinearClassifier, predicted: dict[int, int]) -> dict[str, Any] | None:
        """GT-known and top-1 localization accuracy and the pointing game of the classifier's
        CAMs on the test split (None: fc7 features have no maps; each rate Undefined when no
        test image with a box of its class was read)."""
        data, spec = self.test, self.spec
        if spec.features == "fc7":
            return None
        cfg = self.net.data
        pool = head_pool(spec.features)
        right = {"gt_known_loc_acc": 0, "top1_loc_acc": 0, "pointing_game": 0}  # hits
        count = 0
        rule = cam_box_rule(spec.threshold)
        boxed = any(len(s.own_boxes) for s in data.samples)
        for x, y, index in self._batches(data, None, "localization") if boxed else ():
            keep = [j for j, i in enumerate(index.tolist())
                    if i in predicted and len(data.samples[i].own_boxes)]  # fmt: skip
            if not keep:
                continue
            _, maps = self._features(x[keep], data.samples[int(index[keep[0]])].path)
            assert maps is not None
            head = clf.cam_head(maps.shape[1], pool, maps.device)
            idx = [int(index[j]) for j in keep]
            labels = y[keep].numpy()
            classes = np.stack([[predicted[i] for i in idx], labels], axis=1)
            cams = head.cams(maps, torch.from_numpy(classes).to(maps.device))
            frame = cfg.image_size
            cams = upsample_cams(cams, (frame, frame)).cpu().numpy()
            samples = [data.samples[i] for i in idx]
            sizes = self._sizes(data, idx)
            scored = score_maps(
                cams, classes, sizes, [s.boxes for s in samples], [s.box_labels for s in samples],
                rule,
            )  # fmt: skip
            ious = scored.ious
            right["pointing_game"] += int(scored.hits[:, 1].sum())  # the true class's map
            hit = ious >= spec.iou_threshold
            right["gt_known_loc_acc"] += int(hit[:, 1].sum())
            right["top1_loc_acc"] += int((hit[:, 0] & (classes[:, 0] == labels)).sum())
            count += len(idx)
        why = f"no {data.split} image " + (
            "with a ground-truth box of its class could be read"
            if boxed
            else "has a ground-truth box of its class"
        )
        return {
            **{key: 100.0 * n / count if count else Undefined(why) for key, n in right.items()},
            "num_images": count,
            "iou_threshold": spec.iou_threshold,
            "threshold": spec.threshold,
        }


def _stack(feats: list, labels: list, indices: list) -> PartFeatures:
    if not feats:
        return PartFeatures(
            np.zeros((0, 0), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
        )
    return PartFeatures(
        np.concatenate(feats).astype(np.float32),
        np.concatenate(labels).astype(np.int64),
        np.concatenate(indices).astype(np.int64),
    )


def gt_crop_boxes(data: DataSplit) -> np.ndarray:
    """Each image's ground-truth crop: the tight box around all boxes of its own class."""
    boxes = np.zeros((len(data.samples), 4), dtype=np.int64)
    for i, s in enumerate(data.samples):
        own = s.own_boxes
        if not len(own):
            raise InputFileError(
                f"{s.path}: no ground-truth box of its class; crop=gt needs a box for every "
                f"{data.split} image"
            )
        boxes[i] = [own[:, 0].min(), own[:, 1].min(), own[:, 2].max(), own[:, 3].max()]
    return boxes


def combine(parts: list[PartFeatures]) -> PartFeatures:
    """Features of several parts side by side, for the images every part could read."""
    if len(parts) == 1:
        return parts[0]
    common = parts[0].indices
    for p in parts[1:]:
        common = np.intersect1d(common, p.indices)
    rows = [np.searchsorted(p.indices, common) for p in parts]  # indices are sorted (in order)
    first = parts[0]
    at = next((i for i, p in enumerate(parts) if p.boxes is not None), None)
    crop = parts[at] if at is not None else None
    crop_rows = rows[at] if at is not None else None
    return PartFeatures(
        np.concatenate([p.features[r] for p, r in zip(parts, rows, strict=True)], axis=1),
        first.labels[rows[0]],
        common,
        crop.boxes[crop_rows] if crop is not None else None,
        crop.box_ious[crop_rows] if crop is not None else None,
    )


def features_run(cfg: FeaturesConfig | Any, run_dir: str | Path) -> dict[str, Any]:
    """Run cam-features as `cfg` says, writing into `run_dir`; returns metrics.json's content."""
    spec = features_config(cfg)
    run_dir = Path(run_dir)
    with run_context(spec.runtime, run_dir, "features.log", RESULTS, spec.overwrite) as run:
        if run.env.world_size > 1:
            raise ConfigError(
                "cam-features runs in one process (the linear fit is not distributed): run it "
                "without torchrun"
            )
        tick = time.perf_counter()
        removed = _remove_own_caches(run_dir, spec)
        cache_dir = make_dir(Path(spec.cache_dir) if spec.cache_dir else run_dir / "cache")
        fr = FeatureRun(spec, run.env, cache_dir, removed)
        log.info(
            "features=%s crop=%s of %s (%s) on %s: %d train, %d test images, %d classes",
            spec.features, spec.crop, fr.net.variant, fr.net.weights,
            fr.net.data.root, len(fr.train), len(fr.test), len(fr.train.classes),
        )  # fmt: skip
        parts = spec.crop.split("+")
        with logging_redirect_tqdm() if spec.runtime.progress else nullcontext():
            train = combine([fr.part(fr.train, p) for p in parts])
            test = combine([fr.part(fr.test, p) for p in parts])
            if not len(train.labels):
                raise InputFileError(
                    f"{fr.net.data.root}: no {spec.train_split} image could be read; the "
                    "classifier needs some (cam-data data.root=... lists the unreadable ones)"
                )
            c = spec.classifier
            fit_tick = time.perf_counter()
            clf = fit_linear(train.features, train.labels, fr.train.classes, c.kind, c.C,
                             c.l2_normalize, c.max_iter, spec.seed, c.solver)  # fmt: skip
            fit_seconds = time.perf_counter() - fit_tick
            # no test image read: nothing to predict (the metrics are undefined, _metrics)
            pred = clf.predict(test.features) if len(test.labels) else np.zeros(0, np.int64)
            predicted = dict(zip(test.indices.tolist(), pred.tolist(), strict=True))
            localization = fr.localize(clf, predicted) if spec.localize else None
        num_classes = len(fr.train.classes)
        per_class = per_class_accuracy(pred, test.labels, num_classes)
        counts = np.bincount(test.labels, minlength=num_classes)
        metrics = metrics_json(spec, fr, clf, train, test, pred, per_class, counts, localization)
        metrics["fit_seconds"] = round(fit_seconds, 2)
        metrics["seconds"] = round(time.perf_counter() - tick, 2)
        write_text_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.structured(spec)))
        save_classifier(run_dir / "classifier.npz", clf)
        write_text_atomic(
            run_dir / "per_class.csv",
            per_class_csv(fr.train.classes, fr.train.class_names, per_class, counts),
        )
        write_text_atomic(run_dir / "predictions.csv", predictions_csv(fr.test, test, pred))
        metrics = save_metrics(run_dir / "metrics.json", "features", metrics)
        log.info(
            "%s on %s features (%s): test accuracy %s (%d train, %d test images)%s",
            c.kind, spec.features, spec.crop, _percent(metrics, "accuracy"), metrics["num_train"],
            metrics["num_test"],
            (f"; from its weights: GT-known loc acc "
             f"{_percent(metrics, 'localization.gt_known_loc_acc')}, top-1 loc acc "
             f"{_percent(metrics, 'localization.top1_loc_acc')}") if localization else "",
        )  # fmt: skip
        for key, reason in metrics["undefined"].items():
            log.warning("%s is undefined: %s", key, reason)
        reused = sum(use.status == "reused" for use in fr.caches)
        log.info("caches: %d reused, %d made (metrics.json's caches)", reused,
                 len(fr.caches) - reused)  # fmt: skip
        return metrics


def _remove_own_caches(run_dir: Path, spec: FeaturesConfig) -> frozenset[Path]:
    """overwrite=true asks for a clean run: the run's own cache folder (RUN/cache) is removed and
    rebuilt; a shared `cache_dir` is kept (its files are keyed by everything their features
    depend on, so they are valid; other runs use them). Returns the feature files removed."""
    own = run_dir / "cache"
    if not spec.overwrite or spec.cache_dir is not None or not own.is_dir():
        return frozenset()
    files = frozenset(own.glob("features_*.npz"))
    try:
        shutil.rmtree(own)
    except OSError as err:
        raise output_error(own, err, "remove") from None
    log.info("overwrite=true: removed the run's own caches, %s (%d files)", own, len(files))
    return files


def _percent(metrics: dict[str, Any], key: str) -> str:
    """A % metric of metrics.json (`key` dotted) for the log: '71.25%' or 'undefined'."""
    value = value_at(metrics, key)
    return "undefined" if value is None else f"{value:.2f}%"
