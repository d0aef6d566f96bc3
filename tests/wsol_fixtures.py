"""wsolevaluation's metadata and images written for a test (data.source=wsol): ILSVRC, CUB and
OpenImages (with instance and ignore masks) at tiny sizes; shared by tests/data/test_wsol_data.py
and tests/evaluate/test_eval_wsol.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from data_fixtures import write_image
from PIL import Image

WNIDS = ("n01440764", "n01443537", "n01484850")
SYNSETS = "n01440764 tench, Tinca tinca\nn01443537 goldfish\nn01484850 great white shark\n"

# ILSVRC as wsolevaluation ships it: train/<wnid>/, test = val/ (flat), val = ImageNetV2's
# val2/<label>/
ILSVRC = {
    "train": {
        "train/n01440764/n01440764_1.JPEG": (0, (20, 16)),
        "train/n01440764/n01440764_2.JPEG": (0, (21, 16)),
        "train/n01443537/n01443537_1.JPEG": (1, (22, 16)),
        "train/n01484850/n01484850_1.JPEG": (2, (23, 16)),
    },
    "test": {
        "val/ILSVRC2012_val_00000001.JPEG": (1, (50, 40)),
        "val/ILSVRC2012_val_00000002.JPEG": (0, (60, 30)),
        "val/ILSVRC2012_val_00000003.JPEG": (2, (32, 48)),
    },
    "val": {
        "val2/0/aaa.jpeg": (0, (40, 40)),
        "val2/2/bbb.jpeg": (2, (30, 20)),
    },
}
# Boxes as the files state them: x0,y0,x1,y1, 0-based inclusive; x1 may equal the width.
ILSVRC_BOXES = {
    "test": [
        ("val/ILSVRC2012_val_00000001.JPEG", (0, 0, 49, 39)),
        ("val/ILSVRC2012_val_00000002.JPEG", (4, 5, 19, 24)),
        ("val/ILSVRC2012_val_00000002.JPEG", (29, 1, 60, 30)),  # touches the far border
        ("val/ILSVRC2012_val_00000003.JPEG", (0, 9, 15, 47)),
    ],
    "val": [("val2/0/aaa.jpeg", (1, 2, 30, 31)), ("val2/2/bbb.jpeg", (0, 0, 29, 19))],
}

CUB_CLASSES = ("001.Black_footed_Albatross", "002.Laysan_Albatross")
CUB = {
    "train": {
        "001.Black_footed_Albatross/Black_Footed_Albatross_0001_1.jpg": (0, (30, 20)),
        "002.Laysan_Albatross/Laysan_Albatross_0001_2.jpg": (1, (30, 20)),
    },
    "test": {
        "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg": (0, (40, 30)),
        "002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg": (1, (50, 40)),
    },
    "val": {
        "001.Black_footed_Albatross/Black_Footed_Albatross_0100_9.jpg": (0, (40, 30)),
    },
}
CUB_BOXES = {
    "train": [
        ("001.Black_footed_Albatross/Black_Footed_Albatross_0001_1.jpg", (1, 1, 10, 10)),
        ("002.Laysan_Albatross/Laysan_Albatross_0001_2.jpg", (2, 2, 29, 19)),
    ],
    "test": [
        ("001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg", (6, 2, 38, 28)),
        ("002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg", (14, 4, 47, 20)),
    ],
    "val": [("001.Black_footed_Albatross/Black_Footed_Albatross_0100_9.jpg", (0, 0, 40, 30))],
}

# 16x16 images: the 8x8 masks below are scaled copies of their view (masks.check_mask_view)
OPEN = {
    "train": {"train/01226z/7af7.jpg": (0, (16, 16)), "train/0138tl/0493.jpg": (1, (16, 16))},
    "test": {"test/01226z/fdd5.jpg": (0, (16, 16)), "test/0138tl/4007.jpg": (1, (16, 16))},
    "val": {"val/0138tl/e2f6.jpg": (1, (16, 16))},
}
# One line per instance mask: (image id, mask, ignore); the image's later lines leave ignore empty
OPEN_MASKS = {
    "test": [
        (
            "test/01226z/fdd5.jpg",
            "test/01226z/fdd5_m01226z_6554.png",
            "test/01226z/fdd5_ignore.png",
        ),
        ("test/01226z/fdd5.jpg", "test/01226z/fdd5_m01226z_8856.png", ""),
        ("test/0138tl/4007.jpg", "test/0138tl/4007_m0138tl_936a.png", ""),
    ],
    "val": [
        ("val/0138tl/e2f6.jpg", "val/0138tl/e2f6_m0138tl_1a7f.png", "val/0138tl/e2f6_ignore.png")
    ],
}
# The 8x8 masks' nonzero regions (rows, columns)
MASK_REGIONS = {
    "6554": (slice(0, 8), slice(0, 2)),  # columns 0-1
    "8856": (slice(6, 8), slice(0, 8)),  # rows 6-7
    "936a": (slice(2, 4), slice(2, 4)),
    "1a7f": (slice(0, 1), slice(0, 1)),
    "ignore": (slice(0, 8), slice(0, 4)),  # columns 0-3
}


def write_metadata(folder: Path, images: dict, loc: list | None, sizes: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "image_ids.txt").write_text("".join(f"{i}\n" for i in images))
    (folder / "class_labels.txt").write_text(
        "".join(f"{i},{lab}\n" for i, (lab, _) in images.items())
    )
    if sizes:
        (folder / "image_sizes.txt").write_text(
            "".join(f"{i},{w},{h}\n" for i, (_, (w, h)) in images.items())
        )
    if loc is not None:
        (folder / "localization.txt").write_text(
            "".join(",".join(map(str, _flat(r))) + "\n" for r in loc)
        )


def _flat(row: tuple) -> list:
    image_id, rest, *more = row
    return [image_id, *rest] if isinstance(rest, tuple) else [image_id, rest, *more]


def write_wsol(tmp: Path, dataset: str) -> dict:
    """The images under tmp/dataset/<dataset>/ and the metadata under tmp/metadata/<dataset>/;
    the data config's keys that read them."""
    root, meta = tmp / "dataset" / dataset, tmp / "metadata"
    tables, locs = {"ILSVRC": (ILSVRC, ILSVRC_BOXES), "CUB": (CUB, CUB_BOXES),
                    "OpenImages": (OPEN, OPEN_MASKS)}[dataset]  # fmt: skip
    for split, images in tables.items():
        for image_id, (label, size) in images.items():
            write_image(root / image_id, size, colour=40 * label)
        write_metadata(
            meta / dataset / split, images, locs.get(split), sizes=dataset != "OpenImages"
        )
    if dataset == "ILSVRC":
        (root / "LOC_synset_mapping.txt").write_text(SYNSETS)
    if dataset == "OpenImages":
        for split in ("test", "val"):
            for _, mask, ignore in OPEN_MASKS[split]:
                for rel in (mask, ignore):
                    if rel:
                        write_mask(root / rel, MASK_REGIONS[_region(rel)])
    return {"source": "wsol", "root": str(root), "metadata": str(meta), "dataset": dataset}


def _region(rel: str) -> str:
    return "ignore" if rel.endswith("_ignore.png") else rel.rsplit("_", 1)[1].removesuffix(".png")


def write_mask(path: Path, region: tuple[slice, slice]) -> None:
    grey = np.zeros((8, 8), dtype=np.uint8)
    grey[region] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grey).save(path)
