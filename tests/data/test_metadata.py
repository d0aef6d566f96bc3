"""Metadata is looked at, not trusted (issue 33, class 2): every text file through one reader
(`runtime.files.read_text`: byte-order mark, UTF-16, line ends), every number through one parser
(`annotations.parse_number`), every declared image size against the image header
(`samples.checked_size`), no image in both train and test (`samples.refuse_overlap`), no empty
split or class. Each case on a hand-built tiny dataset, with the exact outcome."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from data_fixtures import (
    ilsvrc_xml,
    write_classic,
    write_cub,
    write_image,
    write_kaggle,
    write_wsol_tiny,
)

from cam_repro.data import read_split
from cam_repro.data.annotations import parse_number, read_voc_xml
from cam_repro.runtime.errors import ConfigError, InputFileError
from cam_repro.runtime.files import read_json, read_lines, read_text

BOM = b"\xef\xbb\xbf"


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


# -- one text reader -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"a/x.jpg\nb/y.jpg\n",
        BOM + b"a/x.jpg\r\nb/y.jpg\r\n",  # Excel / Notepad
        b"a/x.jpg\rb/y.jpg\r",  # old Mac
        "a/x.jpg\nb/y.jpg\n".encode("utf-16"),  # with its byte-order mark
        BOM + b"a/x.jpg\nb/y.jpg",  # no final line end
    ],
    ids=["lf", "bom-crlf", "cr", "utf16-bom", "no-final-newline"],
)
def test_read_lines_reads_every_encoding_and_line_end_alike(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(data)
    assert read_lines(path) == ["a/x.jpg", "b/y.jpg"]


def test_read_lines_keeps_a_trailing_blank_line_and_odd_separators(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(b"a\n\n")  # a blank last line is a line (readers skip blank lines)
    assert read_lines(path) == ["a", ""]
    path.write_bytes("a\x0cb\u2028c\n".encode())  # str.splitlines would make three names
    assert read_lines(path) == ["a\x0cb\u2028c"]


def test_undecodable_text_is_one_line_naming_file_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_bytes(b"ok\nlatin1 caf\xe9\n")
    with pytest.raises(InputFileError) as err:
        read_text(path)
    assert one_line(err) == (
        f"{path}: not UTF-8 text (byte 0xe9 at offset 13, line 2); save it as UTF-8"
    )


def test_utf16_without_a_bom_is_refused_not_read_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_bytes("a/x.jpg\n".encode("utf-16-le"))  # valid UTF-8 too, with NULs
    with pytest.raises(InputFileError) as err:
        read_text(path)
    assert one_line(err) == (
        f"{path}: holds NUL characters, not text (UTF-16 saved without a byte-order mark?); "
        "save it as UTF-8"
    )


def test_read_json_takes_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(BOM + b'{"a": 1}')
    assert read_json(path) == {"a": 1}


# -- a byte-order mark in every file a reader reads ----------------------------------------------


def test_folder_lists_and_boxes_csv_with_a_bom(tmp_path: Path) -> None:
    for rel, size in (("a/x.jpg", (20, 10)), ("a/y.jpg", (20, 10)), ("b/z.jpg", (30, 20))):
        write_image(tmp_path / rel, size)
    (tmp_path / "train.txt").write_bytes(BOM + b"a/x.jpg\r\nb/z.jpg\r\n")
    (tmp_path / "val.txt").write_bytes(BOM + b"a/y.jpg\r\n")
    (tmp_path / "boxes.csv").write_bytes(BOM + b"image,x0,y0,x1,y1\r\na/y.jpg,1,2,3,4\r\n")
    cfg = {"source": "folder", "root": str(tmp_path), "train_list": "train.txt",
           "val_list": "val.txt", "boxes": "boxes.csv"}  # fmt: skip
    train = read_split(cfg, "train")
    assert train.classes == ["a", "b"]  # not "\ufeffa": no phantom class
    val = read_split(cfg, "val")
    assert [(s.label, s.boxes.tolist()) for s in val.samples] == [(0, [[1, 2, 3, 4]])]


def test_wsol_metadata_with_a_bom_in_every_file(tmp_path: Path) -> None:
    cfg = write_wsol_tiny(tmp_path)
    for file in (Path(cfg["metadata"]) / "ILSVRC" / "test").iterdir():
        file.write_bytes(BOM + file.read_bytes().replace(b"\n", b"\r\n"))
    test = read_split(cfg, "val")
    assert [(s.path.name, s.label, s.size, s.boxes.tolist()) for s in test.samples] == [
        ("c.JPEG", 1, (50, 40), [[0, 0, 49, 39]]),
        ("d.JPEG", 0, (60, 30), [[4, 5, 19, 24]]),
    ]


def test_cub_tables_and_ilsvrc_csv_and_xml_with_a_bom(tmp_path: Path) -> None:
    cub = write_cub(tmp_path / "cub")
    for name in ("images.txt", "image_class_labels.txt", "bounding_boxes.txt",
                 "train_test_split.txt", "classes.txt"):  # fmt: skip
        (cub / name).write_bytes(BOM + (cub / name).read_bytes())
    val = read_split({"source": "cub", "root": str(cub)}, "val")
    assert [s.boxes.tolist() for s in val.samples] == [[[10, 5, 29, 19]], [[60, 40, 63, 47]]]
    kaggle = write_kaggle(tmp_path / "kaggle", xml=False)
    for name in ("LOC_val_solution.csv", "LOC_synset_mapping.txt"):
        (kaggle / name).write_bytes(BOM + (kaggle / name).read_bytes())
    data = read_split({"root": str(kaggle)}, "val")
    assert data.class_names[0] == "tench, Tinca tinca"
    assert data.samples[0].boxes.tolist() == [[0, 0, 49, 39]]
    xml = tmp_path / "a.xml"
    xml.write_bytes(BOM + ilsvrc_xml((50, 40), [("n01443537", 1, 1, 50, 40)]).encode())
    assert read_voc_xml(xml).boxes.tolist() == [[0, 0, 49, 39]]


# -- one number parser ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "integer", "least", "want"),
    [
        ("40", True, 1, 40),
        (" 40.0 ", True, 1, 40),
        ("9007199254740993", True, None, 9007199254740993),  # exact past float's 2**53
        ("12.5", False, None, 12.5),
        ("inf", True, None, "'inf' is not a finite number"),
        ("-inf", False, None, "'-inf' is not a finite number"),
        ("nan", False, None, "'nan' is not a finite number"),
        ("1e400", True, None, "'1e400' is not a finite number"),
        ("40.5", True, None, "'40.5' is not an integer"),
        ("forty", False, None, "'forty' is not a number"),
        ("-3", True, 1, "-3 is below 1"),
        ("0", True, 1, "0 is below 1"),
    ],
)
def test_parse_number(text: str, integer: bool, least: int | None, want: object) -> None:
    if not isinstance(want, str):
        assert parse_number(text, "f.txt line 3", "width", integer=integer, least=least) == want
        return
    with pytest.raises(InputFileError) as err:
        parse_number(text, "f.txt line 3", "width", integer=integer, least=least)
    assert one_line(err) == f"f.txt line 3: width {want}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("<width>50<", "<width>inf<"), "<size>: <width> 'inf' is not a finite number"),
        (("<width>50<", "<width>1e400<"), "<size>: <width> '1e400' is not a finite number"),
        (("<height>40<", "<height>-40<"), "<size>: <height> -40 is below 1"),
        (("<width>50<", "<width>0<"), "<size>: <width> 0 is below 1"),
        (("<width>50<", "<width>50.5<"), "<size>: <width> '50.5' is not an integer"),
        (("<xmin>1<", "<xmin>nan<"), "object 1 (n01443537): <xmin> 'nan' is not a finite number"),
        (
            ("<xmax>50<", "<xmax>1e400<"),
            "object 1 (n01443537): <xmax> '1e400' is not a finite number",
        ),
    ],
)
def test_xml_numbers_are_checked(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    xml = tmp_path / "a.xml"
    xml.write_text(ilsvrc_xml((50, 40), [("n01443537", 1, 1, 50, 40)]).replace(*change))
    with pytest.raises(InputFileError) as err:
        read_voc_xml(xml)
    assert one_line(err) == f"{xml}: {message}"


def test_numbers_in_cub_wsol_and_csv_files(tmp_path: Path) -> None:
    cub = write_cub(tmp_path / "cub")
    (cub / "bounding_boxes.txt").write_text("1 0 0 40 30\n2 10 5 inf 15\n3 3 4 5 6\n4 1 1 2 2\n")
    with pytest.raises(InputFileError) as err:
        read_split({"source": "cub", "root": str(cub)}, "val")
    assert (
        one_line(err)
        == f"{cub / 'bounding_boxes.txt'} (image 2): width 'inf' is not a finite number"
    )

    cfg = write_wsol_tiny(tmp_path / "wsol")
    sizes = Path(cfg["metadata"]) / "ILSVRC/test/image_sizes.txt"
    sizes.write_text("val/c.JPEG,50,40\nval/d.JPEG,1e400,30\n")
    with pytest.raises(InputFileError) as err:
        read_split(cfg, "val")
    assert (
        one_line(err) == f"{sizes} line 2 (image val/d.JPEG): width '1e400' is not a finite number"
    )

    kaggle = write_kaggle(tmp_path / "kaggle", xml=False)
    csv = kaggle / "LOC_val_solution.csv"
    csv.write_text(csv.read_text().replace("n01443537 1 1 50 40", "n01443537 1 1 nan 40"))
    with pytest.raises(InputFileError) as err:
        read_split({"root": str(kaggle)}, "val")
    assert one_line(err) == (
        f"{csv} line 2: malformed PredictionString: box 1 of ILSVRC2012_val_00000001: "
        "coordinate 'nan' is not a finite number"
    )


# -- declared sizes against the image header -----------------------------------------------------


def test_wsol_image_sizes_must_match_the_headers(tmp_path: Path) -> None:
    cfg = write_wsol_tiny(tmp_path)
    sizes = Path(cfg["metadata"]) / "ILSVRC/test/image_sizes.txt"
    sizes.write_text("val/c.JPEG,50,40\nval/d.JPEG,120,60\n")  # d is a half-size copy
    with pytest.raises(InputFileError) as err:
        read_split(cfg, "val")
    image = Path(cfg["root"]) / "val/d.JPEG"
    assert one_line(err) == (
        f"{sizes} line 2: states 120x60 for {image}, but the image is 60x30 (its header); its "
        "boxes are in the stated frame: use the images the annotations were made for, not a "
        "resized or rotated copy, or correct the size and the boxes"
    )
    # data.bad_images=skip leaves out unreadable images, never wrong metadata
    with pytest.raises(InputFileError, match=re.escape(f"{sizes} line 2: states 120x60")):
        read_split({**cfg, "bad_images": "skip"}, "val")


def test_xml_size_must_match_the_header_in_ilsvrc_and_folder_data(tmp_path: Path) -> None:
    root = write_classic(tmp_path / "ilsvrc")
    xml = root / "ILSVRC2012_bbox_val_v3/val/ILSVRC2012_val_00000002.xml"
    xml.write_text(ilsvrc_xml((30, 60), [("n01440764", 5, 6, 20, 25)]))  # rotated: 60x30 image
    with pytest.raises(InputFileError) as err:
        read_split({"root": str(root)}, "val")
    image = root / "val/ILSVRC2012_val_00000002.JPEG"
    assert one_line(err).startswith(
        f"{xml}: <size>: states 30x60 for {image}, but the image is 60x30 (its header)"
    )
    folder = tmp_path / "folder"
    for split in ("train", "val"):
        write_image(folder / split / "cat" / "c.jpg", (40, 30))
    (folder / "val/cat/c.xml").write_text(ilsvrc_xml((400, 300), [("cat", 1, 1, 300, 200)]))
    with pytest.raises(InputFileError) as err:
        read_split({"source": "folder", "root": str(folder)}, "val")
    assert one_line(err).startswith(f"{folder / 'val/cat/c.xml'}: <size>: states 400x300 for")


# -- no image in both train and test -------------------------------------------------------------


def test_folder_lists_refuse_an_image_in_both(tmp_path: Path) -> None:
    for rel in ("a/x.jpg", "a/y.jpg", "b/z.jpg"):
        write_image(tmp_path / rel, (20, 10))
    (tmp_path / "train.txt").write_text("a/x.jpg\nb/z.jpg\n")
    (tmp_path / "val.txt").write_text("a/y.jpg\n/b/z.jpg\n")  # a leading / names the same file
    cfg = {"source": "folder", "root": str(tmp_path), "train_list": "train.txt",
           "val_list": "val.txt"}  # fmt: skip
    assert len(read_split(cfg, "train")) == 2  # the train split alone is fine
    with pytest.raises(InputFileError) as err:
        read_split(cfg, "val")
    assert one_line(err) == (
        f"{tmp_path / 'val.txt'} line 2: b/z.jpg is also in the train split "
        f"({tmp_path / 'train.txt'} line 2); a test on training images is no test: remove it "
        "from one of the splits (data.train_list and data.val_list)"
    )


def test_wsol_refuses_test_images_of_the_train_split(tmp_path: Path) -> None:
    wsol = {
        "train": {"train/n01/a.JPEG": (0, (20, 16), (1, 1, 10, 10)),
                  "train/n02/b.JPEG": (1, (22, 16), (0, 0, 21, 15))},
        "test": {"train/n01/a.JPEG": (0, (20, 16), (1, 1, 10, 10)),
                 "train/n02/b.JPEG": (1, (22, 16), (0, 0, 21, 15))},
    }  # fmt: skip
    cfg = write_wsol_tiny(tmp_path, wsol)
    meta = Path(cfg["metadata"]) / "ILSVRC"
    with pytest.raises(InputFileError) as err:
        read_split(cfg, "val")
    assert one_line(err) == (
        f"{meta / 'test/image_ids.txt'} line 1: train/n01/a.JPEG is also in the train split "
        f"({meta / 'train/image_ids.txt'} line 1) (and 1 more); a test on training images is no "
        "test: remove it from one of the splits (wsolevaluation's ILSVRC metadata)"
    )


def test_cub_refuses_one_file_in_both_splits_and_odd_split_values(tmp_path: Path) -> None:
    cub = write_cub(tmp_path)
    images = (cub / "images.txt").read_text()
    (cub / "images.txt").write_text(images.replace("a_2.jpg", "a_1.jpg"))  # image 2 is image 1
    with pytest.raises(InputFileError) as err:
        read_split({"source": "cub", "root": str(cub)}, "val")
    assert one_line(err).startswith(
        f"{cub / 'images.txt'} (image 2): 001.Black_footed_Albatross/a_1.jpg is also in the "
        f"train split ({cub / 'images.txt'} (image 1))"
    )
    (cub / "images.txt").write_text(images)
    (cub / "train_test_split.txt").write_text("1 1\n2 0\n3 2\n4 0\n")
    with pytest.raises(InputFileError) as err:
        read_split({"source": "cub", "root": str(cub)}, "train")
    assert one_line(err) == (
        f"{cub / 'train_test_split.txt'} (image 3): is_training_image '2' is neither 1 (train) "
        "nor 0 (test)"
    )


def test_svt_refuses_a_test_image_of_train_xml(tmp_path: Path) -> None:
    image = (
        '<image><imageName>img/a.jpg</imageName><Resolution x="40" y="30"/><taggedRectangles>'
        '<taggedRectangle height="5" width="5" x="1" y="1"><tag>A</tag></taggedRectangle>'
        "</taggedRectangles></image>"
    )
    (tmp_path / "train.xml").write_text(f"<tagset>{image}</tagset>")
    (tmp_path / "test.xml").write_text(f"<tagset>{image}</tagset>")
    write_image(tmp_path / "img/a.jpg", (40, 30))
    write_image(tmp_path / "neg/test/n.jpg", (40, 30))
    cfg = {"source": "svt", "root": str(tmp_path), "negatives": "neg"}
    with pytest.raises(InputFileError) as err:
        read_split(cfg, "val")
    assert one_line(err).startswith(
        f"{tmp_path / 'test.xml'}: image img/a.jpg: img/a.jpg is also in the train split "
        f"({tmp_path / 'train.xml'})"
    )


def test_vqa_refuses_the_train_subtype_as_val(tmp_path: Path) -> None:
    cfg = {"source": "vqa", "root": str(tmp_path), "val_subtype": "train2014"}
    with pytest.raises(ConfigError) as err:
        read_split(cfg, "val")
    assert one_line(err) == (
        "data.val_subtype is data.train_subtype (train2014): the val split would test on the "
        "training questions; set data.val_subtype to a held-out subtype (val2014)"
    )


# -- no empty split, no empty class, no unknown class --------------------------------------------


def test_svt_without_a_text_image_is_refused(tmp_path: Path) -> None:
    (tmp_path / "test.xml").write_text("<tagset></tagset>")
    write_image(tmp_path / "neg/test/n.jpg", (40, 30))
    with pytest.raises(InputFileError) as err:
        read_split({"source": "svt", "root": str(tmp_path), "negatives": "neg"}, "val")
    assert one_line(err) == (
        f"{tmp_path / 'test.xml'}: no text image for split 'val' (0 listed): a text detector "
        "cannot be scored without any"
    )


def test_cub_with_an_empty_split_is_refused(tmp_path: Path) -> None:
    cub = write_cub(tmp_path)
    (cub / "train_test_split.txt").write_text("1 1\n2 1\n3 1\n4 1\n")
    with pytest.raises(InputFileError) as err:
        read_split({"source": "cub", "root": str(cub)}, "val")
    assert one_line(err) == (
        f"{cub / 'train_test_split.txt'}: no image of split 'val' (is_training_image 0 (the test "
        "set))"
    )


def test_a_split_whose_every_image_is_unreadable_is_refused(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path, xml=False)  # the CSV has no sizes: the reader reads headers
    for image in (root / "ILSVRC/Data/CLS-LOC/val").iterdir():
        image.write_bytes(b"not a JPEG")
    with pytest.raises(InputFileError) as err:
        read_split({"root": str(root), "bad_images": "skip"}, "val")
    assert one_line(err) == (
        f"{root / 'ILSVRC/Data/CLS-LOC'}: split 'val' has no images (3 unreadable images left "
        "out); a result over no images would be no result"
    )


def test_empty_train_class_folder_is_refused(tmp_path: Path) -> None:
    write_image(tmp_path / "train/cat/c.jpg", (20, 10))
    (tmp_path / "train/dog").mkdir()
    (tmp_path / "train/dog/notes.txt").write_text("no image here")
    with pytest.raises(InputFileError) as err:
        read_split({"source": "folder", "root": str(tmp_path)}, "train")
    assert one_line(err).startswith(f"{tmp_path / 'train/dog'}: class folder has no images")


def test_wsol_label_gaps_and_unknown_labels(tmp_path: Path) -> None:
    cfg = write_wsol_tiny(tmp_path)
    meta = Path(cfg["metadata"]) / "ILSVRC"
    labels = meta / "test/class_labels.txt"
    labels.write_text("val/c.JPEG,1\nval/d.JPEG,7\n")  # a typo: 7 would make 8 classes
    with pytest.raises(InputFileError) as err:
        read_split(cfg, "val")
    assert one_line(err) == (
        f"{labels} (image val/d.JPEG): label 7 is not a label of the train split "
        f"({meta / 'train/class_labels.txt'})"
    )
    (meta / "train/class_labels.txt").write_text("train/n01/a.JPEG,0\ntrain/n02/b.JPEG,2\n")
    with pytest.raises(InputFileError) as err:
        read_split(cfg, "train")
    assert one_line(err) == (
        f"{meta / 'train/class_labels.txt'}: no image has label 1, but labels run to 2: a class "
        "without training images; labels must be 0, 1, ... without gaps"
    )


def test_cub_class_id_unknown_to_classes_txt_and_duplicate_ids(tmp_path: Path) -> None:
    cub = write_cub(tmp_path)
    (cub / "image_class_labels.txt").write_text("1 1\n2 1\n3 2\n4 3\n")
    with pytest.raises(InputFileError) as err:
        read_split({"source": "cub", "root": str(cub)}, "val")
    assert one_line(err) == (
        f"{cub / 'image_class_labels.txt'}: image 4 has class id 3, which "
        f"{cub / 'classes.txt'} does not name"
    )
    (cub / "image_class_labels.txt").write_text("1 1\n2 1\n3 2\n4 2\n3 1\n")
    with pytest.raises(InputFileError) as err:
        read_split({"source": "cub", "root": str(cub)}, "val")
    assert one_line(err) == f"{cub / 'image_class_labels.txt'} line 5: id 3 appears twice"


def test_vqa_json_with_a_bom_and_in_utf16(tmp_path: Path) -> None:
    path = tmp_path / "q.json"
    for data in (BOM + b'{"questions": []}', '{"questions": []}'.encode("utf-16")):
        path.write_bytes(data)
        assert json.loads(read_text(path)) == {"questions": []}
