"""Write the synthetic benchmark to disk, in the Kaggle ILSVRC layout (`layout=ilsvrc`, read by
cam_repro.data.imagenet):

OUT/ILSVRC/Data/CLS-LOC/train/<wnid>/<wnid>_<i>.JPEG
OUT/ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_<8 digits>.JPEG    (classes shuffled, as in ILSVRC)
OUT/ILSVRC/Annotations/CLS-LOC/val/ILSVRC2012_val_<8 digits>.xml   (one <object> per instance)
OUT/ILSVRC/Masks/CLS-LOC/val/ILSVRC2012_val_<8 digits>.png   (foreground mask, 0/255)
OUT/LOC_val_solution.csv, OUT/LOC_synset_mapping.txt

or in CUB-200-2011's (`layout=cub`, read by cam_repro.data.cub; one box per image, train too):

OUT/images/<NNN>.synthetic_class_<c>/train_<i:04d>.jpg, val_<8 digits>.jpg
OUT/images.txt, image_class_labels.txt, bounding_boxes.txt, train_test_split.txt, classes.txt

and either way OUT/synth.json (the config and each class's design). Both layouts hold the same
scenes: train_<i> is <wnid>_<i>.JPEG and val_<8 digits> is ILSVRC2012_val_<8 digits>.JPEG.

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
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cam_repro.data.annotations import loc_csv_row, voc_xml
from cam_repro.data.synth_config import SynthConfig, synth_config
from cam_repro.data.synthetic import ClassDesign, SceneRenderer, class_designs, image_rng
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
    layout: str = "ilsvrc"
    task: str = "classes"

    @property
    def read_with(self) -> str:
        """The data overrides that read the set back (cam-train, cam-eval, cam-data)."""
        if self.task == "vqa":
            return f"data=synthetic_vqa data.root={self.out}"
        if self.task == "text":
            return f"data=synthetic data.root={self.out}"
        if self.layout == "cub":  # the synthetic preset (64 px, no flips) with the CUB reader
            return f"data=synthetic data.source=cub data.root={self.out}"
        return f"data=imagenet data.root={self.out}"


def _val_labels(spec: SynthConfig) -> np.ndarray:
    labels = np.repeat(np.arange(spec.num_classes), spec.val_per_class)
    return np.random.default_rng([spec.seed, 2]).permutation(labels)


def _jpeg(pixels: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    # 4:4:4 chroma: the textures are 2-8 px patterns that 4:2:0 subsampling would smear.
    Image.fromarray(pixels).save(buf, "JPEG", quality=quality, subsampling=0)
    return buf.getvalue()


def _write_ilsvrc_chunk(
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


def cub_folder(design: ClassDesign, label: int) -> str:
    """A class's image folder (and classes.txt name), like CUB's `001.Black_footed_Albatross`:
    `001.synthetic_class_0`, or `001.synthetic_family_1_class_0` for family 1."""
    return f"{label + 1:03d}.{design.name.split(':')[0].replace(' ', '_')}"


def _cub_path(spec: SynthConfig, design: ClassDesign, split: str, index: int, label: int) -> str:
    """An image's path under OUT/images (as images.txt states it)."""
    name = f"train_{index % spec.train_per_class:04d}" if split == "train" else f"val_{index:08d}"
    return f"{cub_folder(design, label)}/{name}.jpg"


def _write_cub_chunk(
    spec: SynthConfig, root: str, split: str, jobs: list[tuple[int, int]]
) -> list[tuple[str, str]]:
    """Draw and write images [(index, label), ...] of one split; return (path, box line) each."""
    renderer = SceneRenderer(spec)
    rows = []
    for index, label in jobs:
        scene = renderer.render(label, image_rng(spec.seed, split, index))
        path = _cub_path(spec, renderer.designs[label], split, index, label)
        Path(root, "images", path).write_bytes(_jpeg(scene.image, spec.jpeg_quality))
        x0, y0, x1, y1 = scene.boxes[0].tolist()  # the only object: two_object_prob is 0
        # CUB's `x y width height`, 0-based, written as CUB writes them (floats)
        rows.append((path, f"{float(x0)} {float(y0)} {float(x1 - x0 + 1)} {float(y1 - y0 + 1)}"))
    return rows


def _draw(
    spec: SynthConfig,
    root: Path,
    write_chunk: Callable[[SynthConfig, str, str, list[tuple[int, int]]], list],
    train: list[tuple[int, int]],
    val: list[tuple[int, int]],
) -> list:
    """Every image of both splits drawn by `write_chunk` in `workers` processes; their rows."""
    workers = spec.workers or os.cpu_count() or 1
    chunks = [("train", train[i::workers]) for i in range(workers)]
    chunks += [("val", val[i::workers]) for i in range(workers)]
    if workers == 1:
        results = [write_chunk(spec, str(root), split, jobs) for split, jobs in chunks]
    else:
        with ProcessPoolExecutor(workers) as pool:
            futures = [pool.submit(write_chunk, spec, str(root), s, j) for s, j in chunks]
            results = [f.result() for f in futures]
    return [row for result in results for row in result]


def _write_ilsvrc(
    spec: SynthConfig,
    tmp: Path,
    designs: list[ClassDesign],
    train: list[tuple[int, int]],
    val: list[tuple[int, int]],
) -> int:
    """The Kaggle ILSVRC layout under `tmp`; returns the number of val boxes."""
    base = tmp / "ILSVRC"
    for d in designs:
        (base / "Data/CLS-LOC/train" / d.wnid).mkdir(parents=True)
    for sub in ("Data/CLS-LOC/val", "Annotations/CLS-LOC/val", "Masks/CLS-LOC/val"):
        (base / sub).mkdir(parents=True)
    rows = sorted(_draw(spec, tmp, _write_ilsvrc_chunk, train, val))
    (tmp / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + "".join(rows))
    (tmp / "LOC_synset_mapping.txt").write_text("".join(f"{d.wnid} {d.name}\n" for d in designs))
    return sum(len(r.split(",", 1)[1].split()) // 5 for r in rows)


def _write_cub(
    spec: SynthConfig,
    tmp: Path,
    designs: list[ClassDesign],
    train: list[tuple[int, int]],
    val: list[tuple[int, int]],
) -> int:
    """CUB-200-2011's layout under `tmp`; returns the number of val boxes (one per image).
    Image ids go class by class, train images first, as CUB's go class by class."""
    folders = [cub_folder(d, label) for label, d in enumerate(designs)]
    for folder in folders:
        (tmp / "images" / folder).mkdir(parents=True)
    boxes = dict(_draw(spec, tmp, _write_cub_chunk, train, val))
    images = sorted(
        (label, split == "val", index, _cub_path(spec, designs[label], split, index, label))
        for split, jobs in (("train", train), ("val", val))
        for index, label in jobs
    )

    def table(name: str, lines: list[str]) -> None:
        (tmp / name).write_text("".join(f"{i} {line}\n" for i, line in enumerate(lines, 1)))

    table("images.txt", [path for *_, path in images])
    table("image_class_labels.txt", [str(label + 1) for label, *_ in images])
    table("bounding_boxes.txt", [boxes[path] for *_, path in images])
    table("train_test_split.txt", ["0" if is_val else "1" for _, is_val, *_ in images])
    table("classes.txt", folders)
    return len(val)


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
    it is written, and the options of the other tasks. Two configs with equal settings write
    byte-identical datasets."""
    unused = {"out", "workers", "overwrite"} | ({"text", "vqa"} - {spec.task})
    return {k: v for k, v in asdict(spec).items() if k not in unused}


@dataclass
class Written:
    """What a task's writer put under the temporary folder (synth.json gets `info` too)."""

    train_images: int
    val_images: int
    val_objects: int
    info: dict


def _write_classes(spec: SynthConfig, tmp: Path) -> Written:
    """task=classes: the localization benchmark, in `spec.layout`."""
    designs = class_designs(spec)
    # (index, label): the image's generator is image_rng(seed, split, index), in either layout
    train = [
        (label * spec.train_per_class + i, label)
        for label in range(spec.num_classes)
        for i in range(spec.train_per_class)
    ]
    val = [(i + 1, int(label)) for i, label in enumerate(_val_labels(spec))]
    write = _write_cub if spec.layout == "cub" else _write_ilsvrc
    val_objects = write(spec, tmp, designs, train, val)
    info = {
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
    return Written(len(train), len(val), val_objects, info)


def _task_writer(task: str) -> Callable[[SynthConfig, Path], Written]:
    if task == "text":
        from cam_repro.data.synth_text import write_text_set

        return write_text_set
    if task == "vqa":
        from cam_repro.data.synth_vqa import write_vqa_set

        return write_vqa_set
    return _write_classes


def generate(cfg: SynthConfig | dict | object) -> SynthSummary:
    """Write the dataset `cfg` describes to `cfg.out` (see the module docstring)."""
    spec = synth_config(cfg)  # type: ignore[arg-type]
    start = time.perf_counter()
    out = _prepare_out(spec)
    write = _task_writer(spec.task)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        tmp.rmdir()  # mkdtemp's folder is private (0700); the dataset gets the user's umask
        tmp.mkdir()
    except OSError as err:
        raise output_error(out, err) from None
    try:
        written = write(spec, tmp)
        info = {"format_version": FORMAT_VERSION, "config": dataset_settings(spec), **written.info}
        (tmp / "synth.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        _swap_into_place(tmp, out)
    except OSError as err:  # a full disk, a quota: nothing half-written is left
        shutil.rmtree(tmp, ignore_errors=True)
        raise output_error(out, err) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.perf_counter() - start
    return SynthSummary(
        out,
        written.train_images,
        written.val_images,
        written.val_objects,
        seconds,
        spec.layout,
        spec.task,
    )


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished dataset to `out`; an old `out` is removed only after that."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old)
