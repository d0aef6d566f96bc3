"""What a reader returns: samples with labels, image sizes and ground-truth boxes; image loading."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from cam_repro.data.annotations import empty_boxes
from cam_repro.data.config import DEFAULT_MAX_IMAGE_PIXELS
from cam_repro.runtime.errors import InputFileError

if TYPE_CHECKING:
    from torch import Tensor

log = logging.getLogger(__name__)

# torchvision's ImageFolder extensions, matched case-insensitively (ILSVRC uses .JPEG).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# PIL's errors for a file that is not an image, is truncated, or is absurdly large.
_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


@dataclass(eq=False)
class Sample:
    """One image. Boxes are 0-based inclusive pixel coordinates of the original image."""

    path: Path
    label: int
    size: tuple[int, int] | None = None  # (width, height) of the original image; None: not read
    boxes: np.ndarray = field(default_factory=empty_boxes)  # (k, 4) int64 x0, y0, x1, y1
    box_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # (k,)
    # Foreground masks (PNG, nonzero = foreground), where the dataset has them: one file, or one
    # per instance (OpenImages30k), whose union is the image's foreground
    masks: tuple[Path, ...] = ()
    # Pixels that count neither as foreground nor background (OpenImages30k's `<id>_ignore.png`,
    # its ignore boxes; the foreground is taken out of them): None where the dataset has none
    ignore_mask: Path | None = None

    @property
    def image_id(self) -> str:
        return self.path.stem

    @property
    def own_boxes(self) -> np.ndarray:
        """(m, 4) the boxes of the image's own class (what localization is scored against)."""
        return self.boxes[self.box_labels == self.label]


@dataclass(eq=False)
class Questions:
    """VQA: sample i of its split is question i about sample i's image (several samples share an
    image). The sample's label is the index of its answer among the split's classes (the answer
    vocabulary); its boxes, where the data has them, the object the answer depends on."""

    ids: list[int]  # question_id
    text: list[str]  # the question as asked
    tokens: np.ndarray  # (N, L) int64 indices into `vocab`, -1 pads (words not in vocab dropped)
    vocab: list[str]  # the bag-of-words' words (from the train split), in index order
    answers: list[list[str]]  # every annotator's answer, normalised (VQA accuracy); may be empty
    kinds: list[str]  # the question type (VQA v2's question_type; synthetic: colour|shape|count)


@dataclass(eq=False)
class DataSplit:
    """The samples of one split, and the classes (label i is `classes[i]`)."""

    split: str
    root: Path
    classes: list[str]  # wnids (ImageNet) or class folder names (CUB), sorted
    class_names: list[str]  # human-readable names, same order
    samples: list[Sample]
    source: str  # where labels and boxes came from, and their coordinate conversion
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # unreadable images left out
    questions: Questions | None = None  # VQA: one question per sample; None: no questions

    def __len__(self) -> int:
        return len(self.samples)


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


# PIL's limit is a global of the process; cam-eval reads image headers in a scoring thread while
# the main thread decodes: one thread at a time changes it (and restores it).
_PIL_LIMIT_LOCK = threading.RLock()


@contextmanager
def _pil_limit(limit: int | None) -> Iterator[None]:
    """PIL's decompression-bomb limit set to `limit` for the duration (restored after), one
    thread at a time."""
    with _PIL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = limit
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _check_pixels(path: Path, size: tuple[int, int], max_pixels: int | None) -> None:
    w, h = size
    if max_pixels is not None and w * h > max_pixels:
        raise InputFileError(
            f"{path}: {w}x{h} = {w * h:,} pixels, above data.max_image_pixels ({max_pixels:,}); "
            "raise the limit if the image is real"
        )


@contextmanager
def _open_image(
    path: Path, max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS
) -> Iterator[Image.Image]:
    """Image.open, with a missing, unreadable or corrupt file, or one of more than `max_pixels`
    pixels (None: no limit), as an InputFileError naming it.

    The pixel limit is ours, checked on the header before anything is decoded; PIL's own
    (Image.MAX_IMAGE_PIXELS: a warning above it, an error above twice it) never speaks instead:
    the header is read with its limit lifted, and the decoding runs with it lifted too when ours
    is higher than its warning level (some formats check again while decoding frames), so PIL
    neither warns nor raises about an image our limit admits. Lifting changes a global of PIL,
    under a lock (`_pil_limit`): cam-eval reads image headers in a scoring thread.
    """
    pil_level = Image.MAX_IMAGE_PIXELS
    lift = pil_level is not None and (max_pixels is None or max_pixels > pil_level)
    try:
        with _pil_limit(None):
            img = Image.open(path)  # the header only
        with img:
            _check_pixels(path, img.size, max_pixels)
            with _pil_limit(None) if lift else nullcontext():
                yield img
    except FileNotFoundError:
        raise InputFileError(f"{path}: image file is missing") from None
    except InputFileError:
        raise
    except _IMAGE_ERRORS as err:
        raise InputFileError(f"{path}: unreadable or corrupt image ({err})") from None


def file_problem(err: InputFileError, path: Path) -> str:
    """What is wrong with the file at `path`: its error's message without the leading path."""
    return str(err).removeprefix(f"{path}: ")


def load_image(path: Path, max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS) -> Image.Image:
    """The image at `path` as an RGB PIL image, fully decoded; more than `max_pixels` pixels is
    an error. (The dataset reads through `read_image`, which gives the same pixels as a tensor.)"""
    with _open_image(path, max_pixels) as img:
        return img.convert("RGB")


# JPEG markers: start of image, start of scan, the frames libjpeg decodes alike in PIL and
# torchvision (baseline, extended and progressive Huffman), and the markers that carry no length.
_SOI, _SOS = 0xD8, 0xDA
_SOF_HUFFMAN = (0xC0, 0xC1, 0xC2)
_NO_LENGTH = (0x01, *range(0xD0, 0xD8))


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a JPEG that `torchvision.io.decode_jpeg` decodes to the same RGB pixels
    as PIL's `convert("RGB")`: an 8-bit Huffman-coded JPEG of 1 (grey) or 3 (YCbCr) components
    without an Adobe marker, its header read up to the first scan. None for anything else (not a
    JPEG, CMYK or Adobe, 12-bit, arithmetic-coded, lossless, an unusual or broken header): those
    go through PIL."""
    if not data.startswith(b"\xff\xd8\xff"):
        return None
    size = None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # a fill byte before the marker
            pos += 1
            continue
        if marker in _NO_LENGTH:
            pos += 2
            continue
        if marker == _SOI:
            return None
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4])
        if end > len(data) or end < pos + 4:
            return None
        if marker == _SOS:
            return size
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a frame
            if size is not None or marker not in _SOF_HUFFMAN or end < pos + 10:
                return None
            precision, height, width, components = (
                data[pos + 4],
                int.from_bytes(data[pos + 5 : pos + 7]),
                int.from_bytes(data[pos + 7 : pos + 9]),
                data[pos + 9],
            )
            if precision != 8 or components not in (1, 3) or height == 0 or width == 0:
                return None
            size = (width, height)
        elif marker == 0xEE and data[pos + 4 : pos + 9] == b"Adobe":
            return None  # its transform flag may say RGB or CMYK: PIL's reading is the reference
        pos = end
    return None


def read_image(path: Path, max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS) -> Tensor:
    """The image at `path` as a uint8 (3, H, W) tensor, the same pixels as `load_image`'s, with
    the same errors; EXIF orientation is not applied (nor is it by PIL).

    A JPEG that `jpeg_size` accepts is decoded by libjpeg-turbo through torchvision, straight to
    a tensor, faster than PIL and a conversion (scripts/bench_decode.py); its pixel limit is
    checked on the header first. Anything else, and a JPEG that torchvision fails to decode
    (truncated or corrupt), goes through `load_image`, so a broken file gives PIL's error, as it
    always has.
    """
    # torch only here: the readers import this module and need no torch.
    import torch
    from torchvision.io import ImageReadMode  # loads torchvision's image ops
    from torchvision.transforms.v2.functional import pil_to_tensor

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(f"{path}: image file is missing") from None
    except OSError:
        data = b""  # PIL says what is wrong
    size = jpeg_size(data)
    if size is not None:
        _check_pixels(path, size, max_pixels)
        try:
            # the op torchvision.io.decode_jpeg runs for a CPU tensor, called as it calls it,
            # without its per-call usage logging and deprecation warning (torchvision 0.29
            # deprecated its decoders for torchcodec's; torchvision is pinned)
            buffer = torch.frombuffer(bytearray(data), dtype=torch.uint8)
            return torch.ops.image.decode_jpeg(buffer, ImageReadMode.RGB.value, False)
        except RuntimeError:
            pass  # truncated or corrupt: PIL's error (or PIL's pixels, where it reads it)
    return pil_to_tensor(load_image(path, max_pixels))


def read_image_size(
    path: Path, max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS
) -> tuple[int, int]:
    """(width, height) from the image header, without decoding the pixels; more than
    `max_pixels` pixels is an error."""
    with _open_image(path, max_pixels) as img:
        return img.size


def checked_size(
    path: Path,
    declared: tuple[int, int] | None,
    where: str,
    max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
) -> tuple[int, int]:
    """The image's (width, height) from its header (no decoding), which must be `declared`: the
    size a metadata file states for it (wsolevaluation's image_sizes.txt, an XML `<size>`; None:
    none stated, the header's is needed), `where` naming that file and line (`same_size`).

    A header that cannot be read leaves the declared size in place: the image is bad, not the
    metadata, and the image's own check names it (the loader, data.bad_images, cam-data, which
    lists every bad image instead of stopping at the first). Without a declared size the header's
    error is raised (it starts with the image's path: data.bad_images=skip may skip it).
    """
    try:
        size = read_image_size(path, max_pixels)
    except InputFileError:
        if declared is None:
            raise
        return declared
    same_size(declared, size, path, where)
    return size


def original_sizes(samples: Sequence[Sample], max_pixels: int | None) -> np.ndarray:
    """(N, 2) each sample's original (width, height): its recorded size, else its header's. The
    frame every map is scored in (localize.scoring): cam-eval, its VQA evaluation, cam-features
    and cam-visualize all take it from here, so their boxes and IoUs agree."""
    sizes = [s.size or read_image_size(s.path, max_pixels) for s in samples]
    return np.array(sizes, dtype=np.int64).reshape(-1, 2)


def same_size(
    declared: tuple[int, int] | None, size: tuple[int, int], path: Path, where: str
) -> None:
    """A size that `where` (a metadata file and line) declares for the image at `path` must be
    the image's own, `size` from its header.

    The file's boxes are in the declared frame; in an image of another size (a resized or rotated
    copy, another image under the same name) they would land in the wrong place: errors of 100%
    reported as results, empty crops. Rescaling them would be a guess (a crop or a rotation is
    not a resize), so a mismatch is an error, which starts with `where`, not with the image's
    path: data.bad_images=skip does not skip it (the metadata is wrong, not the image).
    """
    if declared is not None and tuple(declared) != tuple(size):
        raise InputFileError(
            f"{where}: states {declared[0]}x{declared[1]} for {path}, but the image is "
            f"{size[0]}x{size[1]} (its header); its boxes are in the stated frame: use the images "
            "the annotations were made for, not a resized or rotated copy, or correct the size "
            "and the boxes"
        )


def refuse_overlap(test: dict[str, str], train: dict[str, str], what: str) -> None:
    """No image of a test split is also in its train split: a test on training images gives a
    believable wrong number. `test` and `train` map each image's key (its path as the listing
    names it) to where it is listed; `what` names the train split's listing, for the advice."""
    both = [key for key in test if key in train]
    if both:
        more = f" (and {len(both) - 1} more)" if len(both) > 1 else ""
        raise InputFileError(
            f"{test[both[0]]}: {both[0]} is also in the train split ({train[both[0]]}){more}; "
            f"a test on training images is no test: remove it from one of the splits ({what})"
        )


def size_or_skip(
    path: Path, max_pixels: int | None, bad_images: str, skipped: list[tuple[Path, str]]
) -> tuple[int, int] | None:
    """`read_image_size(path)`; with bad_images="skip", an unreadable image is added to `skipped`
    as (path, what is wrong) and gives None instead of its error."""
    try:
        return read_image_size(path, max_pixels)
    except InputFileError as err:
        if bad_images != "skip":
            raise
        skipped.append((path, file_problem(err, path)))
        return None


def report_skipped(skipped: list[tuple[Path, str]], split: str) -> None:
    """Log how many unreadable images a split left out (bad_images=skip), and the first few."""
    if skipped:
        first = "; ".join(f"{p}: {why}" for p, why in skipped[:3])
        log.warning(
            "%s: skipped %d unreadable image(s) (data.bad_images=skip): %s%s",
            split,
            len(skipped),
            first,
            " ..." if len(skipped) > 3 else "",
        )
