"""Write the synthetic benchmark to disk in the Kaggle ILSVRC layout (see cam_repro.data.imagenet):

OUT/ILSVRC/Data/CLS-LOC/train/<wnid>/<wnid>_<i>.JPEG
OUT/ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_<8 digits>.JPEG    (classes shuffled, as in ILSVRC)
OUT/ILSVRC/Annotations/CLS-LOC/val/ILSVRC2012_val_<8 digits>.xml   (one <object> per instance)
OUT/ILSVRC/Masks/CLS-LOC/val/ILSVRC2012_val_<8 digits>.png   (foreground mask, 0/255)
OUT/LOC_val_solution.csv, OUT/LOC_synset_mapping.txt
OUT/synth.json   (the config and each class's design)

The same config gives byte-identical files: every image has its own seeded generator, and nothing
depends on time, process or order. The dataset is built in a temporary sibling folder and renamed
into place when complete, so an interrupted run never leaves a half-written `out`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cam_repro.data.annotations import loc_csv_row, voc_xml
from cam_repro.data.synthetic import (
    SceneRenderer,
    SynthConfig,
    class_designs,
    image_rng,
    synth_config,
)
from cam_repro.data.textures import TEXTURE_NAMES
from cam_repro.runtime.errors import InputFileError
from cam_repro.runtime.files import make_dir, output_error

FORMAT_VERSION = 1  # bump when the same config would draw different images


@dataclass
class SynthSummary:
    out: Path
    train_images: int
    val_images: int
    val_objects: int
    seconds: float


def _val_labels(spec: SynthConfig) -> np.ndarray:
    labels = np.repeat(np.arange(spec.num_classes), spec.val_per_class)
    return np.random.default_rng([spec.seed, 2]).permutation(labels)


def _jpeg(pixels: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    # 4:4:4 chroma: the textures are 2-8 px patterns that 4:2:0 subsampling would smear.
    Image.fromarray(pixels).save(buf, "JPEG", quality=quality, subsampling=0)
    return buf.getvalue()


def _write_chunk(
    spec: SynthConfig, root: str, split: str, jobs: list[tuple[int, int]]
) -> list[str]:
    """Draw and write images [(index, label), ...] of one split; val returns their CSV rows."""
    renderer = SceneRenderer(spec)
    base = Path(root, "ILSVRC")
    rows = []
    for index, label in jobs:
        scene = renderer.render(label, image_rng(spec.seed, split, index))
        wnid = renderer.designs[label].wnid
        if split == "train":
            path = (
                base / "Data/CLS-LOC/train" / wnid / f"{wnid}_{index % spec.train_per_class}.JPEG"
            )
            path.write_bytes(_jpeg(scene.image, spec.jpeg_quality))
            continue
        image_id = f"ILSVRC2012_val_{index:08d}"
        (base / "Data/CLS-LOC/val" / f"{image_id}.JPEG").write_bytes(
            _jpeg(scene.image, spec.jpeg_quality)
        )
        wnids = [wnid] * len(scene.objects)
        size = (spec.image_size, spec.image_size)
        xml = voc_xml(image_id, "val", size, wnids, scene.boxes)
        (base / "Annotations/CLS-LOC/val" / f"{image_id}.xml").write_text(xml)
        mask = Image.fromarray(scene.mask.astype(np.uint8) * 255)
        mask.save(base / "Masks/CLS-LOC/val" / f"{image_id}.png", optimize=False)
        rows.append(loc_csv_row(image_id, wnids, scene.boxes))
    return rows


def _prepare_out(spec: SynthConfig) -> Path:
    out = Path(spec.out).expanduser()
    if out.exists() and not out.is_dir():
        raise InputFileError(f"out={out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not spec.overwrite:
        raise InputFileError(
            f"out={out} exists and is not empty; pass overwrite=true to replace it"
        )
    make_dir(out.parent)
    return out


def dataset_settings(spec: SynthConfig) -> dict:
    """The settings that determine the dataset (synth.json's "config"): all but where and how
    it is written. Two configs with equal settings write byte-identical datasets."""
    return {k: v for k, v in asdict(spec).items() if k not in ("out", "workers", "overwrite")}


def generate(cfg: SynthConfig | dict | object) -> SynthSummary:
    """Write the dataset `cfg` describes to `cfg.out` (see the module docstring)."""
    spec = synth_config(cfg)  # type: ignore[arg-type]
    start = time.perf_counter()
    out = _prepare_out(spec)
    designs = class_designs(spec)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        tmp.rmdir()  # mkdtemp's folder is private (0700); the dataset gets the user's umask
        tmp.mkdir()
    except OSError as err:
        raise output_error(out, err) from None
    try:
        base = tmp / "ILSVRC"
        for d in designs:
            (base / "Data/CLS-LOC/train" / d.wnid).mkdir(parents=True)
        for sub in ("Data/CLS-LOC/val", "Annotations/CLS-LOC/val", "Masks/CLS-LOC/val"):
            (base / sub).mkdir(parents=True)
        train = [
            (label * spec.train_per_class + i, label)
            for label in range(spec.num_classes)
            for i in range(spec.train_per_class)
        ]
        val = [(i + 1, int(label)) for i, label in enumerate(_val_labels(spec))]
        workers = spec.workers or os.cpu_count() or 1
        chunks = [("train", train[i::workers]) for i in range(workers)]
        chunks += [("val", val[i::workers]) for i in range(workers)]
        if workers == 1:
            results = [_write_chunk(spec, str(tmp), split, jobs) for split, jobs in chunks]
        else:
            with ProcessPoolExecutor(workers) as pool:
                futures = [pool.submit(_write_chunk, spec, str(tmp), s, j) for s, j in chunks]
                results = [f.result() for f in futures]
        rows = sorted(row for result in results for row in result)
        (tmp / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + "".join(rows))
        (tmp / "LOC_synset_mapping.txt").write_text(
            "".join(f"{d.wnid} {d.name}\n" for d in designs)
        )
        info = {
            "format_version": FORMAT_VERSION,
            "config": dataset_settings(spec),
            "textures": list(TEXTURE_NAMES),
            "classes": [
                {
                    "wnid": d.wnid,
                    "name": d.name,
                    "body_pair": [TEXTURE_NAMES[t] for t in d.body_pair],
                    "key_texture": TEXTURE_NAMES[d.key_texture],
                    "cell_probs": list(d.cell_probs),
                }
                for d in designs
            ],
        }
        (tmp / "synth.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        _swap_into_place(tmp, out)
    except OSError as err:  # a full disk, a quota: nothing half-written is left
        shutil.rmtree(tmp, ignore_errors=True)
        raise output_error(out, err) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    val_objects = sum(len(r.split(",", 1)[1].split()) // 5 for r in rows)
    return SynthSummary(out, len(train), len(val), val_objects, time.perf_counter() - start)


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished dataset to `out`; an old `out` is removed only after that."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old)
