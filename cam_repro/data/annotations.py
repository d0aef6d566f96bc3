"""Annotation files of ILSVRC and CUB: read (with one-line errors naming the file) and write.

Every box leaving this module is **0-based inclusive pixel coordinates of the original image**:
`(x0, y0, x1, y1)` with `0 <= x0 <= x1 <= W - 1`, the box covering pixel columns x0..x1. The
conversion from each source format:

- ILSVRC XML (PASCAL VOC style, `ILSVRC2012_bbox_val_v3` and the Kaggle `Annotations/`) and the
  Kaggle `LOC_val_solution.csv` (the same numbers) are 1-based inclusive, as in the ILSVRC devkit
  (`xmax` reaches the image width). So x0 = xmin - 1, x1 = xmax - 1. A few ILSVRC boxes have
  `xmin = 0`; it is read as the first column (clamped to 0), not as an error.
- CUB-200-2011 `bounding_boxes.txt` is `x y width height` in 0-based pixels (floats with integer
  values): x0 = x, x1 = x + width - 1.

A box is an error if x1 < x0 (y1 < y0) or if it lies outside the image by more than those
conventions allow.

Every number of every metadata file (boxes, sizes, labels, in XML, CSV or text) goes through
`parse_number`: finite (`inf`, `nan`, `1e400` are refused, not an OverflowError), an integer where
an integer is meant (`40.0` is 40; `40.5` is refused) or rounded where a file's convention is
sub-pixel floats, at least the least value allowed; anything else is one line naming the file,
the line or object, and the value. Every text file is read by `runtime.files.read_text` (UTF-8
with or without a byte-order mark, UTF-16 with one, any line ends).

XML is parsed with defusedxml, in whatever encoding the file declares (UTF-8, UTF-16 with its
byte-order mark, ...): a file that declares a DTD, an entity or an external reference is refused
with an InputFileError naming it, before anything is expanded or fetched. ILSVRC's files never
declare one; a file that does could relabel an image through an entity or blow up in memory
("billion laughs"), so none is resolved. (A byte search for `<!DOCTYPE` would miss them in UTF-16.)
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

import defusedxml
import defusedxml.ElementTree as SafeET
import numpy as np

from cam_repro.runtime.errors import InputFileError, MissingFileError
from cam_repro.runtime.files import read_lines, read_text

WNID_PATTERN = re.compile(r"^n\d{8}$")


@dataclass(eq=False)
class Annotation:
    """The objects of one image: its size and every box with its class (wnid)."""

    size: tuple[int, int] | None  # (width, height) as the file states it; None: not stated
    wnids: list[str]  # one per box
    boxes: np.ndarray  # (k, 4) int64, 0-based inclusive x0, y0, x1, y1


def empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.int64)


def parse_number(
    text: str | None,
    where: str,
    what: str,
    *,
    integer: bool = True,
    least: float | None = None,
) -> float:
    """A number of a metadata file: finite; with `integer`, a whole number (returned as an int:
    `40` or `40.0`); else a float (the caller rounds where its format's convention says);
    at least `least`. `where` names the file and the line or object, `what` the field, for a
    one-line InputFileError that shows the bad value."""
    value_text = (text or "").strip()
    kind = "an integer" if integer else "a number"
    try:
        value = float(value_text)
    except ValueError:
        raise InputFileError(f"{where}: {what} {value_text!r} is not {kind}") from None
    if not math.isfinite(value):  # "inf", "nan", "1e400"
        raise InputFileError(f"{where}: {what} {value_text!r} is not a finite number")
    if integer:
        if not value.is_integer():
            raise InputFileError(f"{where}: {what} {value_text!r} is not an integer")
        # exact beyond 2**53 too (float("9007199254740993") is not)
        value = int(value_text) if value_text.lstrip("+-").isdigit() else int(value)
    if least is not None and value < least:
        raise InputFileError(f"{where}: {what} {value} is below {least}")
    return value


def check_box(
    box: tuple[int, int, int, int], size: tuple[int, int] | None, where: str
) -> tuple[int, int, int, int]:
    """Validate a 0-based inclusive box against the image size; return it (clamped at 0)."""
    x0, y0, x1, y1 = box
    if x1 < x0 or y1 < y0:
        raise InputFileError(f"{where}: box has x1 < x0 or y1 < y0: {box}")
    # -1 is a 1-based file's 0 (a few ILSVRC boxes start there): read it as the first pixel.
    if x0 < -1 or y0 < -1 or (size is not None and (x1 >= size[0] or y1 >= size[1])):
        shape = f" of the {size[0]}x{size[1]} image" if size else ""
        raise InputFileError(
            f"{where}: box {box} (0-based inclusive) lies outside the bounds{shape}"
        )
    return max(x0, 0), max(y0, 0), x1, y1


def _forbidden(err: defusedxml.DefusedXmlException) -> str:
    """What a refused XML file declared, for the error message."""
    if isinstance(err, defusedxml.DTDForbidden):
        return f"a DOCTYPE {err.name}"
    if isinstance(err, defusedxml.EntitiesForbidden):
        return f"the entity {err.name}"
    if isinstance(err, defusedxml.ExternalReferenceForbidden):
        return f"an external reference to {err.sysid}"
    return type(err).__name__


def _xml_root(path: Path) -> Element:
    """The parsed file; the bytes go to expat, which honours a byte-order mark and the encoding
    the file declares (so XML is the one text format not read by `read_text`)."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputFileError(f"{path}: cannot read: {err.strerror or err}") from None
    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as err:
        raise InputFileError(
            f"{path}: declares a DTD or entities, which are never resolved ({_forbidden(err)}; "
            "ILSVRC annotation files declare none)"
        ) from None
    except (SafeET.ParseError, LookupError) as err:  # LookupError: an unknown encoding
        raise InputFileError(f"{path}: XML does not parse: {err}") from None


def _int_field(node: Element, tag: str, path: Path, what: str, least: int | None = None) -> int:
    """An integer field; a box's may be a float (some VOC writers give sub-pixel boxes), which is
    rounded to the nearest pixel; a size's (`least` given) must be an integer."""
    text = node.findtext(tag)
    if text is None:
        raise InputFileError(f"{path}: {what} has no <{tag}>")
    sized = least is not None
    return round(parse_number(text, f"{path}: {what}", f"<{tag}>", integer=sized, least=least))


def read_voc_xml(path: Path) -> Annotation:
    """One ILSVRC (PASCAL VOC style) XML file: size and every `<object>`'s wnid and box."""
    root = _xml_root(path)
    size = None
    size_node = root.find("size")
    if size_node is not None:
        size = (
            _int_field(size_node, "width", path, "<size>", least=1),
            _int_field(size_node, "height", path, "<size>", least=1),
        )
    wnids, boxes = [], []
    for i, obj in enumerate(root.iter("object"), start=1):
        name = (obj.findtext("name") or "").strip()
        what = f"object {i}" + (f" ({name})" if name else "")
        if not name:
            raise InputFileError(f"{path}: {what} has no <name>")
        bnd = obj.find("bndbox")
        if bnd is None:
            raise InputFileError(f"{path}: {what} has no <bndbox>")
        xmin, ymin, xmax, ymax = (
            _int_field(bnd, t, path, what) for t in ("xmin", "ymin", "xmax", "ymax")
        )
        wnids.append(name)
        boxes.append(check_box((xmin - 1, ymin - 1, xmax - 1, ymax - 1), size, f"{path}: {what}"))
    return Annotation(size, wnids, np.array(boxes, dtype=np.int64).reshape(-1, 4))


def voc_xml(
    filename: str, folder: str, size: tuple[int, int], wnids: list[str], boxes: np.ndarray
) -> str:
    """The ILSVRC XML text of an image (boxes 0-based inclusive in, 1-based in the file)."""
    objects = "".join(
        f"\t<object>\n\t\t<name>{escape(w)}</name>\n\t\t<pose>Unspecified</pose>\n"
        f"\t\t<truncated>0</truncated>\n\t\t<difficult>0</difficult>\n\t\t<bndbox>\n"
        f"\t\t\t<xmin>{x0 + 1}</xmin>\n\t\t\t<ymin>{y0 + 1}</ymin>\n"
        f"\t\t\t<xmax>{x1 + 1}</xmax>\n\t\t\t<ymax>{y1 + 1}</ymax>\n\t\t</bndbox>\n\t</object>\n"
        for w, (x0, y0, x1, y1) in zip(wnids, boxes.tolist(), strict=True)
    )
    return (
        f"<annotation>\n\t<folder>{escape(folder)}</folder>\n\t<filename>{escape(filename)}</filename>\n"
        f"\t<source>\n\t\t<database>ILSVRC_2012</database>\n\t</source>\n"
        f"\t<size>\n\t\t<width>{size[0]}</width>\n\t\t<height>{size[1]}</height>\n"
        f"\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n{objects}</annotation>\n"
    )


def read_csv_rows(path: Path, header: list[str]) -> list[tuple[int, list[str]]]:
    """The rows of a CSV file after its header, with their 1-based line numbers; one-line errors
    for an unreadable file, one that is not CSV text, or another header."""
    reader = csv.reader(io.StringIO(read_text(path)))
    rows = []
    try:
        while True:
            start = reader.line_num + 1  # a quoted field may span lines: the row's first line
            rows.append((start, next(reader)))
    except StopIteration:
        pass
    except csv.Error as err:
        raise InputFileError(f"{path} line {reader.line_num}: not CSV: {err}") from None
    if not rows or [c.strip() for c in rows[0][1]] != header:
        got = ",".join(rows[0][1]) if rows else ""
        raise InputFileError(f"{path}: the header must be '{','.join(header)}', got {got!r}")
    return rows[1:]


def read_loc_csv(path: Path) -> dict[str, Annotation]:
    """Kaggle's `LOC_val_solution.csv`: `ImageId,PredictionString` (`wnid x0 y0 x1 y1` repeated)."""
    out: dict[str, Annotation] = {}
    for line, row in read_csv_rows(path, ["ImageId", "PredictionString"]):
        if not row:
            continue
        if len(row) != 2:
            raise InputFileError(f"{path} line {line}: expected 2 fields, got {len(row)}")
        image_id, tokens = row[0].strip(), row[1].split()
        if not tokens or len(tokens) % 5:
            raise InputFileError(
                f"{path} line {line}: malformed PredictionString {row[1].strip()!r}: "
                "expected groups of 'wnid x0 y0 x1 y1'"
            )
        wnids, boxes = [], []
        for k in range(0, len(tokens), 5):
            box_no = k // 5 + 1
            where = f"{path} line {line}: malformed PredictionString: box {box_no} of {image_id}"
            xmin, ymin, xmax, ymax = (
                parse_number(t, where, "coordinate") for t in tokens[k + 1 : k + 5]
            )
            wnids.append(tokens[k])
            box = (xmin - 1, ymin - 1, xmax - 1, ymax - 1)
            boxes.append(check_box(box, None, f"{path} line {line} ({image_id})"))
        if image_id in out:
            raise InputFileError(f"{path} line {line}: image {image_id} appears twice")
        out[image_id] = Annotation(None, wnids, np.array(boxes, dtype=np.int64).reshape(-1, 4))
    return out


def loc_csv_row(image_id: str, wnids: list[str], boxes: np.ndarray) -> str:
    """One `LOC_val_solution.csv` line (boxes 0-based inclusive in, 1-based in the file)."""
    pred = "".join(
        f"{w} {x0 + 1} {y0 + 1} {x1 + 1} {y1 + 1} "
        for w, (x0, y0, x1, y1) in zip(wnids, boxes.tolist(), strict=True)
    )
    return f"{image_id},{pred}\n"


def read_synset_mapping(path: Path) -> dict[str, str]:
    """`LOC_synset_mapping.txt` (or `synset_words.txt`): `wnid words` per line -> {wnid: words}."""
    names: dict[str, str] = {}
    for line_no, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        wnid, _, words = line.strip().partition(" ")
        if not WNID_PATTERN.match(wnid):
            raise InputFileError(
                f"{path} line {line_no}: expected 'wnid words', got {line.strip()!r}"
            )
        names[wnid] = words.strip() or wnid
    return names


def read_table(path: Path, columns: int, what: str) -> dict[int, list[str]]:
    """A CUB metadata file: `id field...` per line -> {id: fields} (exactly `columns` fields)."""
    if not path.is_file():
        raise MissingFileError(f"{path}: missing ({what})")
    table: dict[int, list[str]] = {}
    for line_no, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=columns) if columns == 1 else line.split()
        if len(fields) != columns + 1 or not fields[0].isdigit():
            raise InputFileError(
                f"{path} line {line_no}: expected '<id> {what}', got {line.strip()!r}"
            )
        key = int(fields[0])
        if key in table:  # the second would silently replace the first
            raise InputFileError(f"{path} line {line_no}: id {key} appears twice")
        table[key] = fields[1:]
    return table


def read_blacklist(path: Path) -> set[str]:
    """A val blacklist (ILSVRC2014_clsloc_validation_blacklist.txt) -> the image ids it names.

    One entry per line: a 1-based val index (36 means ILSVRC2012_val_00000036) or an image id.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingFileError(f"data.blacklist {path} does not exist")
    ids: set[str] = set()
    for line_no, line in enumerate(read_lines(path), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if entry.isdigit():
            if int(entry) < 1:
                raise InputFileError(f"{path} line {line_no}: val indices start at 1, got {entry}")
            ids.add(f"ILSVRC2012_val_{int(entry):08d}")
        elif len(entry.split()) == 1:
            ids.add(Path(entry).stem)
        else:
            raise InputFileError(
                f"{path} line {line_no}: expected a val index or an image id, got {entry!r}"
            )
    return ids
