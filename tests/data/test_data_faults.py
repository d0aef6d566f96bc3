"""Hostile and broken data: XML that declares entities (in any encoding), images above the pixel
limit, corrupt images found by `check_images` and by `cam-data`."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import CUB, VAL, ilsvrc_xml, write_cub, write_image, write_kaggle
from PIL import Image

from cam_repro.data import check_images, data_config, read_split
from cam_repro.data.annotations import read_voc_xml
from cam_repro.data.config import DEFAULT_MAX_IMAGE_PIXELS
from cam_repro.data.samples import load_image, read_image_size
from cam_repro.runtime.errors import ConfigError, InputFileError

# --- XML ------------------------------------------------------------------------------------

BOMB = """<?xml version="1.0" encoding="{encoding}"?>
<!DOCTYPE annotation [
 <!ENTITY a "lol">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
 <!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
 <!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">
 <!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">
]>
<annotation><size><width>10</width><height>10</height></size>
<object><name>&i;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox>
</object></annotation>
"""
WITH_NAME = """<?xml version="1.0" encoding="{encoding}"?>
<!DOCTYPE annotation [{entity}]>
<annotation><size><width>10</width><height>10</height></size>
<object><name>&label;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>
</bndbox></object></annotation>
"""


def _xml_cases(tmp_path: Path) -> dict[str, bytes]:
    secret = tmp_path / "secret.txt"
    secret.write_text("n01443537")  # a real class: read through the entity, it would relabel
    external = f'<!ENTITY label SYSTEM "{secret.as_uri()}">'
    plain = ilsvrc_xml((10, 10), [("n01440764", 1, 1, 5, 5)])
    return {
        "bomb_utf8": BOMB.format(encoding="UTF-8").encode("utf-8"),
        "bomb_utf16": BOMB.format(encoding="UTF-16").encode("utf-16"),  # with its BOM
        "xxe": WITH_NAME.format(encoding="UTF-8", entity=external).encode("utf-8"),
        "internal_entity": WITH_NAME.format(
            encoding="UTF-8", entity='<!ENTITY label "n01443537">'
        ).encode("utf-8"),
        "internal_entity_utf16": WITH_NAME.format(
            encoding="UTF-16", entity='<!ENTITY label "n01443537">'
        ).encode("utf-16"),
        "doctype_utf16": (
            '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE annotation>\n' + plain
        ).encode("utf-16"),
    }


@pytest.mark.parametrize(
    "case",
    ["bomb_utf8", "bomb_utf16", "xxe", "internal_entity", "internal_entity_utf16", "doctype_utf16"],
)
def test_xml_with_a_dtd_or_entities_is_refused_in_any_encoding(tmp_path: Path, case: str) -> None:
    path = tmp_path / f"{case}.xml"
    path.write_bytes(_xml_cases(tmp_path)[case])
    with pytest.raises(InputFileError) as err:
        read_voc_xml(path)
    message = str(err.value)
    assert message.startswith(f"{path}: declares a DTD or entities, which are never resolved (")
    assert "\n" not in message


def test_utf16_xml_without_a_dtd_still_parses(tmp_path: Path) -> None:
    size, objects = VAL["ILSVRC2012_val_00000002"]
    text = '<?xml version="1.0" encoding="UTF-16"?>\n' + ilsvrc_xml(size, objects)
    path = tmp_path / "utf16.xml"
    path.write_bytes(text.encode("utf-16"))
    assert path.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")  # a byte-order mark
    ann = read_voc_xml(path)
    assert ann.size == (60, 30)
    assert ann.wnids == ["n01440764", "n01440764"]
    assert ann.boxes.tolist() == [[4, 5, 19, 24], [29, 1, 59, 29]]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"<annotation><size>", "XML does not parse: "),
        (b'<?xml version="1.0" encoding="no-such"?><annotation/>', "XML does not parse: "),
    ],
)
def test_broken_xml_is_one_line_naming_the_file(tmp_path: Path, data: bytes, why: str) -> None:
    path = tmp_path / "broken.xml"
    path.write_bytes(data)
    with pytest.raises(InputFileError, match=re.escape(f"{path}: {why}")):
        read_voc_xml(path)


# --- the pixel limit ------------------------------------------------------------------------


def test_default_limit_is_pils_default_as_a_constant() -> None:
    assert DEFAULT_MAX_IMAGE_PIXELS == 1024 * 1024 * 1024 // 4 // 3 == 89_478_485
    assert data_config({"root": "x"}).max_image_pixels == DEFAULT_MAX_IMAGE_PIXELS
    assert data_config({"root": "x", "max_image_pixels": None}).max_image_pixels is None
    with pytest.raises(ConfigError, match=r"data.max_image_pixels must be >= 1 or null"):
        data_config({"root": "x", "max_image_pixels": 0})


def test_image_above_the_configured_limit_is_an_error(tmp_path: Path) -> None:
    path = write_image(tmp_path / "big.png", (300, 200))
    expected = (
        f"{path}: 300x200 = 60,000 pixels, above data.max_image_pixels (50,000); "
        "raise the limit if the image is real"
    )
    for read in (load_image, read_image_size):
        with pytest.raises(InputFileError) as err:
            read(path, max_pixels=50_000)
        assert str(err.value) == expected
    assert load_image(path, max_pixels=None).size == (300, 200)
    assert load_image(path, max_pixels=60_000).size == (300, 200)
    assert read_image_size(path, max_pixels=None) == (300, 200)


# Above PIL's limit (10,000 here): 120x100 only warns in PIL, 300x200 is above its error level.
@pytest.mark.parametrize("size", [(120, 100), (300, 200)])
def test_pils_own_limit_neither_warns_nor_overrides_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    path = write_image(tmp_path / "big.png", size)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning that escapes fails the test
        # (i) the default config's limit (PIL's value): refused by our error, no warning
        for read in (load_image, read_image_size):
            with pytest.raises(InputFileError, match=r"above data.max_image_pixels \(10,000\)"):
                read(path, max_pixels=10_000)
        # (ii) a limit above twice PIL's, or none: the image loads
        assert load_image(path, max_pixels=100_000).size == size
        assert load_image(path, max_pixels=None).size == size
        assert read_image_size(path, max_pixels=None) == size
    assert Image.MAX_IMAGE_PIXELS == 10_000  # restored after each open


# --- check_images and cam-data --------------------------------------------------------------

TRAIN = Path("ILSVRC/Data/CLS-LOC/train")
VAL_DIR = Path("ILSVRC/Data/CLS-LOC/val")
HEADER_BAD = TRAIN / "n01440764" / "n01440764_0.JPEG"  # not an image at all
PIXELS_BAD = TRAIN / "n01484850" / "n01484850_1.JPEG"  # a JPEG header, its pixel data cut short
EMPTY = VAL_DIR / "ILSVRC2012_val_00000002.JPEG"  # zero bytes


def write_truncated_jpeg(path: Path) -> None:
    """A real JPEG of noise (so its scan data is most of the file), cut after 60% of its bytes."""
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG", quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])


@pytest.fixture
def corrupt_set(tmp_path: Path) -> Path:
    root = write_kaggle(tmp_path / "ilsvrc", csv=False)
    (root / HEADER_BAD).write_bytes(b"this is not a JPEG file")
    write_truncated_jpeg(root / PIXELS_BAD)
    (root / EMPTY).write_bytes(b"")
    return root


@pytest.mark.parametrize("workers", [0, 2])
def test_check_images_finds_exactly_the_corrupt_ones(corrupt_set: Path, workers: int) -> None:
    train = read_split({"root": str(corrupt_set)}, "train")  # reading the split opens no image
    val = read_split({"root": str(corrupt_set)}, "val")  # sizes come from the XML files
    found = check_images(train, workers=workers)
    assert found.checked == 6
    assert [p for p, _ in found.bad] == [corrupt_set / HEADER_BAD, corrupt_set / PIXELS_BAD]
    assert "cannot identify image file" in found.bad[0][1]
    assert "truncated" in found.bad[1][1]
    assert not found.bad[0][1].startswith(str(corrupt_set))  # the reason alone
    found = check_images(val, workers=workers)
    assert (found.checked, [p for p, _ in found.bad]) == (3, [corrupt_set / EMPTY])


def test_a_header_check_misses_pixel_data_cut_short(corrupt_set: Path) -> None:
    """decode=False only reads headers: a file whose header is intact passes however broken its
    pixel data is. Only the full decode (the default) finds it."""
    train = read_split({"root": str(corrupt_set)}, "train")
    headers = check_images(train, decode=False)
    assert [p for p, _ in headers.bad] == [corrupt_set / HEADER_BAD]
    assert read_image_size(corrupt_set / PIXELS_BAD) == (64, 64)
    assert headers.describe() == (
        f"train: 6 images checked (headers only), 1 unreadable\n"
        f"  bad: {corrupt_set / HEADER_BAD}: {headers.bad[0][1]}"
    )


def test_check_images_applies_the_pixel_limit_and_lists_a_few(corrupt_set: Path) -> None:
    train = read_split({"root": str(corrupt_set)}, "train")
    found = check_images(train, decode=False, max_pixels=100)  # every train image is 20+ x 16
    assert len(found.bad) == 6
    assert "above data.max_image_pixels (100)" in found.bad[1][1]
    lines = found.describe().splitlines()
    assert lines[0] == "train: 6 images checked (headers only), 6 unreadable"
    assert len(lines) == 1 + 5 + 1 and lines[-1] == "  ... and 1 more"
    assert len(found.describe(listed=None).splitlines()) == 1 + 6


def test_check_images_counts_what_the_reader_left_out(tmp_path: Path) -> None:
    """CUB reads sizes from the headers: with bad_images=skip the reader leaves a corrupt header
    out, and the check still reports it (checked once, by the reader)."""
    root = write_cub(tmp_path / "cub")
    bad = root / "images" / CUB[1][1]
    bad.write_bytes(b"garbage")
    train = read_split({"source": "cub", "root": str(root), "bad_images": "skip"}, "train")
    found = check_images(train)
    assert found.checked == 2 and [p for p, _ in found.bad] == [bad]


def cam_data(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "cam-data"
    if not exe.exists():
        pytest.fail(f"{exe} is not installed: run `pip install -e .` first")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_cam_data_lists_every_bad_image_and_fails_in_one_line(
    corrupt_set: Path, tmp_path: Path
) -> None:
    result = cam_data(tmp_path, f"data.root={corrupt_set}", "data.num_workers=2", "progress=false")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: 2 of 6 images in train and 1 of 3 images in val are unreadable (listed above); "
        "fix or remove them, or train with data.bad_images=skip"
    ]
    out = result.stdout
    assert "train: 6 images of 3 classes" in out
    assert "train: 6 images checked (decoded), 2 unreadable" in out
    assert "val: 3 images checked (decoded), 1 unreadable" in out
    for rel in (HEADER_BAD, PIXELS_BAD, EMPTY):
        assert f"  bad: {corrupt_set / rel}: " in out
    assert out.count("  bad: ") == 3


def test_cam_data_passes_a_clean_set(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path / "ilsvrc")
    result = cam_data(tmp_path, f"data.root={root}", "data.num_workers=0", "decode=false")
    assert result.returncode == 0, result.stderr
    assert "train: 6 images checked (headers only), 0 unreadable" in result.stdout
    assert "val: 3 images checked (headers only), 0 unreadable" in result.stdout
    assert "bad:" not in result.stdout
