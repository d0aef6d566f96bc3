"""Feature caches: one .npz per (split, part), stamped with what made it.

A cache holds the features of the images of one split that could be read (`indices` into the
split's samples, their `labels`), and for crop parts the boxes they were cut to. Its `identity`
(JSON: the network and its weights file's size and time, the feature kind, the part, the data
root, split, input size, normalisation and a digest of the image list) must equal the current
run's for it to be used: anything else is recomputed and the file replaced, never silently reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cam_repro.data.samples import DataSplit
from cam_repro.runtime.files import atomic_write

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the same identity would give other features


@dataclass(eq=False)
class PartFeatures:
    """The features of one part (full image, CAM crop or GT crop) of one split."""

    features: np.ndarray  # (n, D) float32
    labels: np.ndarray  # (n,) int64
    indices: np.ndarray  # (n,) int64 sample indices of the split
    boxes: np.ndarray | None = None  # (n, 4) the crops' boxes in the original images (crops)
    box_ious: np.ndarray | None = None  # (n,) crop box IoU with the GT (NaN: no GT box)


def split_digest(data: DataSplit) -> str:
    """A digest of the split's image list and labels (a changed dataset changes it)."""
    h = hashlib.sha256()
    for s in data.samples:
        h.update(f"{s.path}\t{s.label}\n".encode())
    return h.hexdigest()[:16]


def file_stamp(path: str | Path) -> dict[str, Any]:
    """Where a weights file is, its size and modification time: changes when it is rewritten."""
    p = Path(path).expanduser().resolve()
    st = p.stat()
    return {"path": str(p), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def cache_path(folder: Path, split: str, part: str) -> Path:
    return folder / f"features_{split}_{part}.npz"


def load_cache(path: Path, identity: dict[str, Any]) -> PartFeatures | None:
    """The cached features if `path` holds features of exactly this identity, else None."""
    if not path.is_file():
        return None
    want = json.dumps({"format": FORMAT, **identity}, sort_keys=True)
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["identity"]) != want:
                log.info("%s: made with other settings; recomputing", path)
                return None
            boxes = z["boxes"] if "boxes" in z.files else None
            ious = z["box_ious"] if "box_ious" in z.files else None
            return PartFeatures(z["features"], z["labels"], z["indices"], boxes, ious)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        log.warning("%s: unreadable cache (%s); recomputing", path, err)
        return None


def save_cache(path: Path, identity: dict[str, Any], part: PartFeatures) -> None:
    arrays = {"features": part.features, "labels": part.labels, "indices": part.indices}
    if part.boxes is not None:
        arrays["boxes"] = part.boxes
    if part.box_ious is not None:
        arrays["box_ious"] = part.box_ious
    stamp = np.array(json.dumps({"format": FORMAT, **identity}, sort_keys=True))

    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:
            np.savez(f, identity=stamp, **arrays)

    atomic_write(path, write)
