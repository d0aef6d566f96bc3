"""Small on-disk datasets written by the tests: ILSVRC (both layouts) and CUB."""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image


def write_image(path: Path, size: tuple[int, int], colour: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (colour, 255 - colour, 60)).save(path)
    return path


def ilsvrc_xml(size: tuple[int, int], objects: list[tuple[str, int, int, int, int]]) -> str:
    """An ILSVRC2012_bbox_val_v3-style file; boxes as the file states them (1-based inclusive)."""
    body = "".join(
        f"<object><name>{w}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>0</difficult><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
        f"<ymax>{d}</ymax></bndbox></object>"
        for w, a, b, c, d in objects
    )
    return (
        "<annotation><folder>val</folder><filename>x</filename><source><database>ILSVRC_2012"
        f"</database></source><size><width>{size[0]}</width><height>{size[1]}</height>"
        f"<depth>3</depth></size><segmented>0</segmented>{body}</annotation>"
    )


WNIDS = ("n01440764", "n01443537", "n01484850")
# Val images: id -> (size, objects in file coordinates). Image 2 has two boxes of its class.
VAL = {
    "ILSVRC2012_val_00000001": ((50, 40), [("n01443537", 1, 1, 50, 40)]),
    "ILSVRC2012_val_00000002": (
        (60, 30),
        [("n01440764", 5, 6, 20, 25), ("n01440764", 30, 2, 60, 30)],
    ),
    "ILSVRC2012_val_00000003": ((32, 48), [("n01484850", 0, 10, 16, 48)]),
}
TRAIN_COUNTS = {"n01440764": 2, "n01443537": 1, "n01484850": 3}
SYNSETS = (
    "n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n"
    "n01484850 great white shark, white shark\n"
)


def csv_rows(val: dict = VAL) -> str:
    rows = "".join(
        f"{image_id},{''.join(f'{w} {a} {b} {c} {d} ' for w, a, b, c, d in objects)}\n"
        for image_id, (_, objects) in val.items()
    )
    return "ImageId,PredictionString\n" + rows


def write_train(train_dir: Path) -> None:
    for wnid, count in TRAIN_COUNTS.items():
        for i in range(count):
            write_image(train_dir / wnid / f"{wnid}_{i}.JPEG", (20 + i, 16))


def write_kaggle(root: Path, xml: bool = True, csv: bool = True) -> Path:
    data = root / "ILSVRC" / "Data" / "CLS-LOC"
    write_train(data / "train")
    for image_id, (size, objects) in VAL.items():
        write_image(data / "val" / f"{image_id}.JPEG", size)
        if xml:
            ann = root / "ILSVRC" / "Annotations" / "CLS-LOC" / "val" / f"{image_id}.xml"
            ann.parent.mkdir(parents=True, exist_ok=True)
            ann.write_text(ilsvrc_xml(size, objects))
    if csv:
        (root / "LOC_val_solution.csv").write_text(csv_rows())
    (root / "LOC_synset_mapping.txt").write_text(SYNSETS)
    return root


def write_classic(root: Path, boxes_dir: str = "ILSVRC2012_bbox_val_v3/val") -> Path:
    write_train(root / "train")
    for image_id, (size, objects) in VAL.items():
        write_image(root / "val" / f"{image_id}.JPEG", size)
        ann = root / boxes_dir / f"{image_id}.xml"
        ann.parent.mkdir(parents=True, exist_ok=True)
        ann.write_text(ilsvrc_xml(size, objects))
    (root / "synset_words.txt").write_text(SYNSETS)
    return root


# CUB: id -> (class id, path, size, x y w h, is_train)
CUB = {
    1: (1, "001.Black_footed_Albatross/a_1.jpg", (40, 30), "0.0 0.0 40.0 30.0", 1),
    2: (1, "001.Black_footed_Albatross/a_2.jpg", (50, 40), "10.0 5.0 20.0 15.0", 0),
    3: (2, "002.Laysan_Albatross/b_1.jpg", (30, 30), "3.0 4.0 5.0 6.0", 1),
    4: (2, "002.Laysan_Albatross/b_2.jpg", (64, 48), "60.0 40.0 4.0 8.0", 0),
}


def write_cub(root: Path, cub: dict = CUB) -> Path:
    for _, rel, size, _, _ in cub.values():
        write_image(root / "images" / rel, size)

    def table(name: str, lines: list[str]) -> None:
        (root / name).write_text("".join(f"{line}\n" for line in lines))

    table("images.txt", [f"{i} {v[1]}" for i, v in cub.items()])
    table("image_class_labels.txt", [f"{i} {v[0]}" for i, v in cub.items()])
    table("bounding_boxes.txt", [f"{i} {v[3]}" for i, v in cub.items()])
    table("train_test_split.txt", [f"{i} {v[4]}" for i, v in cub.items()])
    table("classes.txt", ["1 001.Black_footed_Albatross", "2 002.Laysan_Albatross"])
    return root


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under `root`, by relative path (byte-identical trees compare equal)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# wsolevaluation's metadata, tiny: split -> {image id: (label, (width, height), box 0-based)}
WSOL = {
    "train": {
        "train/n01/a.JPEG": (0, (20, 16), (1, 1, 10, 10)),
        "train/n02/b.JPEG": (1, (22, 16), (0, 0, 21, 15)),
    },
    "test": {
        "val/c.JPEG": (1, (50, 40), (0, 0, 49, 39)),
        "val/d.JPEG": (0, (60, 30), (4, 5, 19, 24)),
    },
}


def write_wsol_tiny(tmp: Path, wsol: dict = WSOL) -> dict:
    """Images under tmp/images/, metadata under tmp/metadata/ILSVRC/<split>/ (every file of a
    split: ids, labels, sizes, boxes); the data config's keys that read them."""
    root, meta = tmp / "images", tmp / "metadata"
    for split, images in wsol.items():
        folder = meta / "ILSVRC" / split
        folder.mkdir(parents=True, exist_ok=True)
        for image_id, (_, size, _) in images.items():
            write_image(root / image_id, size)
        rows = {
            "image_ids.txt": [i for i in images],
            "class_labels.txt": [f"{i},{label}" for i, (label, _, _) in images.items()],
            "image_sizes.txt": [f"{i},{w},{h}" for i, (_, (w, h), _) in images.items()],
            "localization.txt": [f"{i},{','.join(map(str, b))}" for i, (_, _, b) in images.items()],
        }
        for name, lines in rows.items():
            (folder / name).write_text("".join(f"{line}\n" for line in lines))
    return {"source": "wsol", "root": str(root), "metadata": str(meta), "dataset": "ILSVRC"}
