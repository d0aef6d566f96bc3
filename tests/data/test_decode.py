"""Image decoding: `read_image` (libjpeg-turbo through torchvision for plain JPEGs, PIL for the
rest) gives PIL's `convert("RGB")` pixels and `load_image`'s errors; the dataset's items are
what they were with PIL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from cam_repro.data import data_config, eval_transform, train_transform
from cam_repro.data import samples as samples_module
from cam_repro.data.dataset import LocalizationDataset, Skipped
from cam_repro.data.samples import DataSplit, Sample, jpeg_size, load_image, read_image
from cam_repro.runtime.errors import InputFileError


def smooth(size: tuple[int, int] = (500, 375), seed: int = 0) -> Image.Image:
    """Blurred colour noise: compresses like a photograph."""
    w, h = size
    noise = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(noise).filter(ImageFilter.GaussianBlur(3))


def noise(size: tuple[int, int] = (97, 61), seed: int = 1) -> Image.Image:
    w, h = size
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8))


# name -> (image, save options): subsamplings, qualities, progressive, optimized Huffman tables,
# restart markers, greyscale, odd sizes
JPEGS = {
    "q75_444": (smooth, {"quality": 75, "subsampling": 0}),
    "q90_420": (smooth, {"quality": 90, "subsampling": 2}),
    "q95_422": (smooth, {"quality": 95, "subsampling": 1}),
    "progressive": (smooth, {"quality": 90, "progressive": True}),
    "optimized_restarts": (smooth, {"quality": 85, "optimize": True, "restart_marker_blocks": 3}),
    "grey": (lambda: smooth().convert("L"), {"quality": 90}),
    "grey_progressive": (lambda: smooth().convert("L"), {"quality": 80, "progressive": True}),
    "noise_odd_size": (noise, {"quality": 95}),
}


def write_jpeg(path: Path, flavour: str) -> Path:
    make, options = JPEGS[flavour]
    make().save(path, format="JPEG", **options)
    return path


def pil_pixels(path: Path) -> torch.Tensor:
    """The reference: PIL's RGB conversion, as a (3, H, W) tensor."""
    with Image.open(path) as img:
        return TF.pil_to_tensor(img.convert("RGB"))


def no_pil(path: Path, max_pixels: int | None = None) -> Image.Image:
    raise AssertionError(f"{path} went through PIL")


@pytest.mark.parametrize("flavour", sorted(JPEGS))
def test_jpegs_decode_to_pils_pixels_without_pil(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flavour: str
) -> None:
    path = write_jpeg(tmp_path / f"{flavour}.jpg", flavour)
    expected = pil_pixels(path)
    monkeypatch.setattr(samples_module, "load_image", no_pil)  # the JPEG path alone
    image = read_image(path)
    assert image.dtype == torch.uint8 and image.shape == expected.shape
    assert image.shape[0] == 3
    assert torch.equal(image, expected)


def test_jpeg_is_told_by_its_bytes_not_its_name(tmp_path: Path) -> None:
    jpeg = write_jpeg(tmp_path / "photo.png", "q90_420")  # a JPEG with another extension
    png = tmp_path / "picture.jpg"
    smooth((40, 30)).save(png, format="PNG")  # and the other way round
    assert jpeg_size(jpeg.read_bytes()) == (500, 375)
    assert jpeg_size(png.read_bytes()) is None
    for path in (jpeg, png):
        assert torch.equal(read_image(path), pil_pixels(path))


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_other_formats_go_through_pil(tmp_path: Path, mode: str) -> None:
    path = tmp_path / f"{mode}.png"
    smooth((50, 40)).convert(mode).save(path)
    assert torch.equal(read_image(path), pil_pixels(path))
    assert torch.equal(read_image(path), TF.pil_to_tensor(load_image(path)))


def test_cmyk_and_adobe_jpegs_go_through_pil(tmp_path: Path) -> None:
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (40, 30), (10, 200, 30, 40)).save(cmyk, "JPEG")
    smooth((40, 30)).convert("CMYK").save(tmp_path / "cmyk_smooth.jpg", "JPEG", quality=90)
    for path in (cmyk, tmp_path / "cmyk_smooth.jpg"):
        data = path.read_bytes()
        assert data.startswith(b"\xff\xd8\xff") and b"Adobe" in data
        assert jpeg_size(data) is None
        image = read_image(path)
        assert image.shape == (3, 30, 40) and torch.equal(image, pil_pixels(path))
    # A 3-component JPEG with an Adobe marker (its transform flag) is PIL's to read too.
    rgb = write_jpeg(tmp_path / "rgb.jpg", "q90_420").read_bytes()
    adobe = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x01"
    assert jpeg_size(rgb) == (500, 375)
    assert jpeg_size(rgb[:2] + adobe + rgb[2:]) is None


def test_exif_orientation_stays_unapplied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    smooth((60, 40)).save(path, "JPEG", quality=90, exif=exif.tobytes())
    image = read_image(path)
    assert image.shape == (3, 40, 60)  # as stored, not turned
    assert torch.equal(image, pil_pixels(path))


def test_jpeg_size_reads_the_frame_header() -> None:
    assert jpeg_size(b"") is None
    assert jpeg_size(b"\xff\xd8\xff") is None
    assert jpeg_size(b"\xff\xd8\xffgarbage" * 10) is None
    # SOI, SOF0 (8 bit, 7 x 5, 3 components), SOS
    frame = b"\xff\xc0\x00\x11\x08\x00\x07\x00\x05\x03" + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    scan = b"\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
    assert jpeg_size(b"\xff\xd8" + frame + scan) == (5, 7)
    assert jpeg_size(b"\xff\xd8" + frame) is None  # no scan: a broken header
    assert jpeg_size(b"\xff\xd8" + frame.replace(b"\xc0", b"\xc3", 1) + scan) is None  # lossless
    assert jpeg_size(b"\xff\xd8" + frame.replace(b"\x08", b"\x0c", 1) + scan) is None  # 12-bit


# --- errors ---------------------------------------------------------------------------------


def message(read, path: Path, max_pixels: int | None = None) -> str:
    with pytest.raises(InputFileError) as err:
        read(path, max_pixels)
    return str(err.value)


def damaged(tmp_path: Path) -> dict[str, Path]:
    """JPEGs cut short (in the scan, before its end marker, just after its header) or broken."""
    data = write_jpeg(tmp_path / "whole.jpg", "q90_420").read_bytes()
    sos = data.index(b"\xff\xda")
    cases = {
        "cut_60_percent": data[: len(data) * 6 // 10],
        "no_end_marker": data[:-2],
        "cut_in_the_scan_header": data[: sos + 20],
        "garbage_after_magic": b"\xff\xd8\xff" + b"garbage" * 20,
        "not_an_image": b"this is not a JPEG file",
        "empty": b"",
        "garbage_in_the_scan": data[: sos + 200] + b"\xff\x94" * 40 + data[sos + 280 :],
    }
    paths = {}
    for name, content in cases.items():
        paths[name] = tmp_path / f"{name}.jpg"
        paths[name].write_bytes(content)
    return paths


def test_damaged_jpegs_give_load_images_errors(tmp_path: Path) -> None:
    paths = damaged(tmp_path)
    for name, path in paths.items():
        expected = message(load_image, path)
        assert expected.startswith(f"{path}: unreadable or corrupt image (")
        assert "\n" not in expected
        assert message(read_image, path) == expected, name
    for name in ("cut_60_percent", "no_end_marker", "cut_in_the_scan_header"):
        assert "image file is truncated" in message(read_image, paths[name]), name


def test_missing_and_too_large_images_give_load_images_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jpg"
    assert message(read_image, missing) == message(load_image, missing)
    assert message(read_image, missing) == f"{missing}: image file is missing"
    jpeg = write_jpeg(tmp_path / "big.jpg", "q90_420")
    png = tmp_path / "big.png"
    smooth((300, 200)).save(png)
    for path, pixels in ((jpeg, "500x375 = 187,500"), (png, "300x200 = 60,000")):
        expected = message(load_image, path, 50_000)
        assert expected == (
            f"{path}: {pixels} pixels, above data.max_image_pixels (50,000); "
            "raise the limit if the image is real"
        )
        assert message(read_image, path, 50_000) == expected
    assert read_image(jpeg, 187_500).shape == (3, 375, 500)


def test_the_pixel_limit_is_checked_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_jpeg(tmp_path / "big.jpg", "q90_420")
    monkeypatch.setattr(samples_module, "load_image", no_pil)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr("torchvision.io.decode_jpeg", no_decoding)
    with pytest.raises(InputFileError, match=r"above data.max_image_pixels \(1,000\)"):
        read_image(path, 1_000)


# --- the dataset ----------------------------------------------------------------------------


def folder(tmp_path: Path) -> DataSplit:
    """Every JPEG flavour, a PNG, a CMYK JPEG, and a truncated JPEG last."""
    paths = [write_jpeg(tmp_path / f"{flavour}.jpg", flavour) for flavour in sorted(JPEGS)]
    paths.append(tmp_path / "png.png")
    smooth((120, 90), seed=3).save(paths[-1])
    paths.append(tmp_path / "cmyk.jpg")
    smooth((80, 60), seed=4).convert("CMYK").save(paths[-1], "JPEG", quality=90)
    samples = [Sample(path, i % 3) for i, path in enumerate(paths)]
    return DataSplit("train", tmp_path, ["a", "b", "c"], ["a", "b", "c"], samples, "test")


def before(path: Path, transform: v2.Compose, seed: int | None) -> torch.Tensor:
    """What the dataset gave before: PIL's image, then the transform's steps after
    `v2.ToImage()` (its first step then), seeded the same way."""
    if seed is not None:
        torch.default_generator.manual_seed(seed)
    return v2.Compose([v2.ToImage(), *transform.transforms[1:]])(load_image(path))


@pytest.mark.parametrize("cache", [False, True])
def test_the_dataset_gives_what_it_gave_with_pil(tmp_path: Path, cache: bool) -> None:
    data = folder(tmp_path)
    cfg = data_config({"root": str(tmp_path), "train_augment": "random_resized_crop"})
    for transform, seeds in ((train_transform(cfg), [0, 7, 123]), (eval_transform(cfg), [None])):
        dataset = LocalizationDataset(data, transform, cache=cache)
        for index, sample in enumerate(data.samples):
            for seed in seeds:
                item = index if seed is None else (index, seed)
                image, label, got_index = dataset[item]
                assert (label, got_index) == (sample.label, index)
                assert image.shape == (3, 224, 224) and image.dtype == torch.uint8
                assert torch.equal(image, before(sample.path, transform, seed)), sample.path


def test_a_truncated_jpeg_is_an_error_or_skipped_in_the_dataset(tmp_path: Path) -> None:
    data = folder(tmp_path)
    bad = data.samples[0].path
    bad.write_bytes(bad.read_bytes()[:-300])
    transform = eval_transform(data_config({"root": str(tmp_path), "image_size": 32}))
    expected = message(load_image, bad)
    assert "image file is truncated" in expected
    with pytest.raises(InputFileError) as err:
        LocalizationDataset(data, transform)[0]
    assert str(err.value) == expected
    skipping = LocalizationDataset(data, transform, bad_images="skip")
    assert skipping[(0, 5)] == Skipped(0, expected.removeprefix(f"{bad}: "))
    cached = LocalizationDataset(data, transform, bad_images="skip", cache=True)
    assert isinstance(cached[0], Skipped) and cached[1][0].shape == (3, 32, 32)


def test_pils_limit_survives_threads_reading_images(tmp_path: Path) -> None:
    """cam-eval reads image headers in a scoring thread while the main thread decodes: PIL's
    global limit, lifted around each read, is the same afterwards and every read succeeds."""
    from concurrent.futures import ThreadPoolExecutor

    from cam_repro.data.samples import read_image_size

    path = tmp_path / "a.png"
    Image.new("RGB", (40, 30), (10, 20, 30)).save(path)
    before = Image.MAX_IMAGE_PIXELS

    def work(i: int) -> tuple:
        if i % 2:
            return read_image_size(path, 10**12)  # above PIL's level: lifted while decoding
        return tuple(read_image(path, None).shape)

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(work, range(400)))
    assert before == Image.MAX_IMAGE_PIXELS
    assert set(got) == {(40, 30), (3, 30, 40)}
