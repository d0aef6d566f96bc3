"""Feature caches: one .npz per (split, part), stamped with everything its features depend on.

A cache holds the features of the images of one split that could be read (`indices` into the
split's samples, their `labels`), and for crop parts the boxes they were cut to and those boxes'
IoUs with the ground truth. Its identity (JSON, `IDENTITY_FIELDS`) names what made it: the
network's weights by content (SHA-256 of the checkpoint or weights file; torchvision's weights
name; the random initialisation's seed) and config, the feature kind, the part and its crop rule,
the transform, the precision, the split, every image's path, size and modification time, how
unreadable images are treated, the labels, for crop parts the ground-truth boxes, and the code's
format. `cached` is the one way to use a cache: the stored identity must equal the run's field
for field, or the features are computed again and the file replaced; either way the log names
the file (and, for a recompute, which fields differed) and the returned `CacheUse` goes to
metrics.json's `caches`. Never a silent reuse (docs/features.md, "The caches").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from cam_repro.data.samples import DataSplit
from cam_repro.evaluate.network import Network
from cam_repro.runtime.files import atomic_write

log = logging.getLogger(__name__)

# Bump when the same identity would give other features (a change of the extraction code).
FORMAT = 2

# The identity's fields, in the order a recompute names them.
IDENTITY_FIELDS = (
    "format", "weights", "model", "features", "part", "crop", "transform", "precision", "split",
    "images", "reading", "labels", "boxes",
)  # fmt: skip


@dataclass(eq=False)
class PartFeatures:
    """The features of one part (full image, CAM crop or GT crop) of one split."""

    features: np.ndarray  # (n, D) float32
    labels: np.ndarray  # (n,) int64
    indices: np.ndarray  # (n,) int64 sample indices of the split
    boxes: np.ndarray | None = None  # (n, 4) the crops' boxes in the original images (crops)
    box_ious: np.ndarray | None = None  # (n,) crop box IoU with the GT (NaN: no GT box)


@dataclass
class CacheUse:
    """What a run did with one cache file: reused it, or made it and why (metrics.json)."""

    path: Path
    split: str
    part: str
    status: str  # reused | made
    reason: str | None = None  # made: absent | <fields> changed | unreadable (...) | ...

    def record(self) -> dict[str, Any]:
        return {"path": str(self.path), "split": self.split, "part": self.part,
                "status": self.status, "reason": self.reason}  # fmt: skip


def code_version() -> str:
    """The cache format and the installed cam-repro version (either changes every identity)."""
    try:
        version = metadata.version("cam-repro")
    except metadata.PackageNotFoundError:  # run from a source tree without installing
        version = "unknown"
    return f"{FORMAT}/{version}"


def network_identity(net: Network) -> dict[str, Any]:
    """The network's part of a cache's identity: its weights by content (the SHA-256 of the
    checkpoint or weights file: a file rewritten in place with other weights changes it, a copy
    elsewhere does not), torchvision's weights name or the random init's seed; its model config
    (a zoo model's with its number of classes)."""
    config = OmegaConf.to_container(OmegaConf.structured(net.config))
    if net.checkpoint is not None:
        return {"weights": {"checkpoint": {"sha256": net.weights_sha256}},
                "model": {"config": config}}  # fmt: skip
    if net.weights == "file":
        source: dict[str, Any] = {"weights_path": {"sha256": net.weights_sha256}}
    elif net.weights == "pretrained":
        source = {"torchvision": net.config.weights}
    else:
        source = {"random_init_seed": net.seed}
    return {"weights": source, "model": {"config": config, "classes": net.num_classes}}


def images_stamp(paths: Iterable[str | Path]) -> str:
    """A digest of every image's absolute path, size and modification time (ns), in order: a
    dataset regenerated in place under the same names changes it. A missing file counts as such
    (the loader then stops or skips it, as data.bad_images says)."""
    h = hashlib.sha256()
    for path in paths:
        name = os.path.abspath(path)
        try:
            st = os.stat(name)
            h.update(f"{name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{name}\tmissing\n".encode())
    return h.hexdigest()[:16]


def tree_stamp(root: str | Path) -> str:
    """`images_stamp` of every file under `root` (a dataset folder), in sorted order: what a
    training on it was trained with (cam-reproduce's reuse of finished trainings)."""
    return images_stamp(sorted(p for p in Path(root).rglob("*") if p.is_file()))


def labels_digest(data: DataSplit) -> str:
    """A digest of the split's classes and each sample's label."""
    h = hashlib.sha256("\n".join(data.classes).encode())
    h.update(np.array([s.label for s in data.samples], dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def boxes_digest(data: DataSplit) -> str:
    """A digest of every sample's ground-truth boxes and their labels, in order."""
    h = hashlib.sha256()
    for s in data.samples:
        boxes = np.ascontiguousarray(s.boxes, dtype=np.int64)
        h.update(f"{len(boxes)};".encode())
        h.update(boxes.tobytes())
        h.update(np.ascontiguousarray(s.box_labels, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def cache_path(folder: Path, split: str, part: str) -> Path:
    return folder / f"features_{split}_{part}.npz"


def _as_json(identity: dict[str, Any]) -> dict[str, Any]:
    """`identity` as it reads back from the file (tuples as lists, keys as strings)."""
    return json.loads(json.dumps(identity, sort_keys=True))


def changed_fields(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The identity fields whose values differ between a cache file and this run (only
    `format` if that differs: another format's other fields mean other things)."""
    if stored.get("format") != current.get("format"):
        return ["format"]
    keys = [*IDENTITY_FIELDS, *sorted((set(stored) | set(current)) - set(IDENTITY_FIELDS))]
    return [key for key in keys if stored.get(key) != current.get(key)]


def load_cache(path: Path, identity: dict[str, Any]) -> tuple[PartFeatures | None, str]:
    """The features `path` holds if it was made with exactly `identity`, else None; and why not
    (absent | `<fields> changed` | `unreadable (...)`)."""
    if not path.is_file():
        return None, "absent"
    want = _as_json(identity)
    try:
        with np.load(path, allow_pickle=False) as z:
            have = json.loads(str(z["identity"]))
            if not isinstance(have, dict):
                return None, "unreadable (its identity is not a mapping)"
            changed = changed_fields(have, want)
            if changed:
                return None, f"{', '.join(changed)} changed"
            boxes = z["boxes"] if "boxes" in z.files else None
            ious = z["box_ious"] if "box_ious" in z.files else None
            return PartFeatures(z["features"], z["labels"], z["indices"], boxes, ious), ""
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        return None, f"unreadable ({err})"


def save_cache(path: Path, identity: dict[str, Any], part: PartFeatures) -> None:
    arrays = {"features": part.features, "labels": part.labels, "indices": part.indices}
    if part.boxes is not None:
        arrays["boxes"] = part.boxes
    if part.box_ious is not None:
        arrays["box_ious"] = part.box_ious
    stamp = np.array(json.dumps(_as_json(identity), sort_keys=True))

    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:
            np.savez(f, identity=stamp, **arrays)

    atomic_write(path, write)


def cached(
    path: Path,
    identity: dict[str, Any],
    make: Callable[[], PartFeatures],
    split: str,
    part: str,
    removed: bool = False,
) -> tuple[PartFeatures, CacheUse]:
    """The features of (split, part): read from `path` if its identity is `identity`, else
    made by `make()` and saved there. Logs which, naming the file and, for a recompute, why.
    `removed`: the file was there and overwrite=true removed it (the reason a recompute gives)."""
    found, reason = load_cache(path, identity)
    if found is not None:
        log.info("%s %s features: reusing %s (made with the same identity)", split, part, path)
        return found, CacheUse(path, split, part, "reused")
    if removed and reason == "absent":
        reason = "removed by overwrite=true"
    if reason == "absent":
        log.info("%s: absent; computing %s %s features", path, split, part)
    else:
        log.info("%s: %s; recomputing", path, reason)
    made = make()
    save_cache(path, identity, made)
    return made, CacheUse(path, split, part, "made", reason)
