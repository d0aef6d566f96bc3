"""VQA v2 on disk (Goyal et al. 2017, https://visualqa.org/download.html), `data.source=vqa`:

ROOT/v2_OpenEnded_mscoco_<subtype>_questions.json   {"questions": [{"image_id", "question",
                                                      "question_id"}, ...], "info", ...}
ROOT/v2_mscoco_<subtype>_annotations.json           {"annotations": [{"question_id", "image_id",
                                                      "question_type", "multiple_choice_answer",
                                                      "answers": [{"answer", ...} x 10],
                                                      "answer_type"}, ...], "info", ...}
ROOT/<subtype>/COCO_<subtype>_<12-digit image id>.jpg
ROOT/targets_<subtype>.csv    ours, not VQA's, optional: `question_id,x0,y0,x1,y1`, the box of
                              the object the answer depends on (0-based inclusive pixels of the
                              image; empty cells: no such object, e.g. a count question)

VQA v1's names (`OpenEnded_mscoco_<subtype>_questions.json`, `mscoco_<subtype>_annotations.json`)
are read too when the v2 file is absent. The train split is `data.train_subtype` (train2014), val
and test `data.val_subtype` (val2014), which must differ (the same subtype would test on the
training questions). The files are read by `runtime.files.read_text` (a byte-order mark read
alike), the targets' numbers by `annotations.parse_number`. `cam-synth task=vqa` writes this layout.

One sample per question, as the paper's Section 4.2 (after Zhou et al.'s "Simple baseline for
visual question answering") treats VQA as classification: the label is the index of the question's
multiple_choice_answer among the answer vocabulary, the `data.answers` most frequent
multiple_choice_answers of the train split; questions whose answer is not among them are left out
(`read_vqa_split` names them). The question is a bag of words over the `data.question_words` most
frequent words of the train questions (`DataSplit.questions.tokens`).

Answers are normalised by `normalize_answer`, a subset of the official evaluation's (vqaEval.py,
processPunctuation and processDigitArticle): lower case, surrounding white space stripped and inner
runs collapsed, and punctuation at the end stripped ("Yes." -> "yes"). Not done: removing
punctuation inside an answer, number words to digits ("two" -> "2"), dropping articles, mending
contractions ("dont" -> "don't"). VQA v2's multiple_choice_answers already have those applied.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cam_repro.data.annotations import check_box, parse_number, read_csv_rows
from cam_repro.data.config import DataConfig
from cam_repro.data.samples import DataSplit, Questions, Sample, file_problem, read_image_size
from cam_repro.runtime.errors import (
    ConfigError,
    InputFileError,
    MissingFileError,
    first_line,
)
from cam_repro.runtime.files import read_text

TARGETS_HEADER = ["question_id", "x0", "y0", "x1", "y1"]
Box = tuple[int, int, int, int]  # 0-based inclusive x0, y0, x1, y1
_WORD = re.compile(r"(?:[^\W_]|')+")  # letters, digits, apostrophes


def questions_file(subtype: str, version: int = 2) -> str:
    return f"{'v2_' if version == 2 else ''}OpenEnded_mscoco_{subtype}_questions.json"


def annotations_file(subtype: str, version: int = 2) -> str:
    return f"{'v2_' if version == 2 else ''}mscoco_{subtype}_annotations.json"


def image_file(subtype: str, image_id: int) -> str:
    """An image's path under the root: `train2014/COCO_train2014_000000000042.jpg`."""
    return f"{subtype}/COCO_{subtype}_{image_id:012d}.jpg"


def targets_file(subtype: str) -> str:
    return f"targets_{subtype}.csv"


# -- text ------------------------------------------------------------------------------------


def tokenize(text: str) -> list[str]:
    """Lower-case words, split on anything not a letter, digit or apostrophe."""
    return _WORD.findall(text.lower())


def normalize_answer(text: str) -> str:
    """An answer as the vocabulary holds it (the subset of VQA's normalisation in the module
    docstring): lower case, spaces collapsed, final punctuation stripped."""
    return " ".join(text.lower().split()).rstrip(string.punctuation).rstrip()


def _most_frequent(items: list[str], most: int) -> list[str]:
    """By descending count, then alphabetically; the first `most` (0: all)."""
    ranked = sorted(Counter(items).items(), key=lambda item: (-item[1], item[0]))
    return [item for item, _ in (ranked[:most] if most else ranked)]


def question_vocab(questions: list[str], most: int = 0) -> list[str]:
    """The words of `questions` (tokenized), the `most` most frequent (0: all)."""
    return _most_frequent([w for q in questions for w in tokenize(q)], most)


def answer_vocab(answers: list[str], most: int) -> list[str]:
    """The `most` most frequent of `answers` (multiple_choice_answers, normalised)."""
    return _most_frequent(answers, most)


def vqa_accuracy(predicted: str, answers: list[str]) -> float:
    """VQA's accuracy of one answer: min(#annotators who gave it / 3, 1), averaged over the 10
    leave-one-out sets of 9 annotators as the official evaluation does (vqaEval.py); with fewer
    than 10 answers the plain min(n / 3, 1). Both sides are normalised (normalize_answer)."""
    if not answers:
        return 0.0
    predicted = normalize_answer(predicted)
    same = sum(normalize_answer(a) == predicted for a in answers)
    if len(answers) < 10:
        return min(same / 3, 1.0)
    # leaving out one of the `same` matching annotators leaves same - 1 matches, another: same
    mean = same * min((same - 1) / 3, 1.0) + (len(answers) - same) * min(same / 3, 1.0)
    return mean / len(answers)


# -- files -----------------------------------------------------------------------------------


@dataclass
class _Entry:
    """A question with its annotation."""

    question_id: int
    image_id: int
    text: str
    answer: str  # multiple_choice_answer, normalised
    answers: list[str]  # every annotator's, normalised
    kind: str  # question_type


def _find(root: Path, v2: str, v1: str) -> Path:
    for name in (v2, v1):
        if (root / name).is_file():
            return root / name
    raise MissingFileError(f"{root / v2}: missing (nor VQA v1's {v1})")


def _load_list(path: Path, key: str) -> list:
    text = read_text(path)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:  # JSONDecodeError
        raise InputFileError(f"{path}: not a JSON file: {first_line(err)}") from None
    if not isinstance(data, dict) or key not in data:
        raise InputFileError(f'{path}: no "{key}" key (not a VQA {key} file)')
    if not isinstance(data[key], list):
        raise InputFileError(f'{path}: "{key}" must be a list, got {type(data[key]).__name__}')
    return data[key]


def _field(entry: Any, key: str, kind: type[int] | type[str], where: str) -> Any:
    """entry[key], which must be an int (not a bool) or a str."""
    value = entry.get(key) if isinstance(entry, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        what = "an integer" if kind is int else "a string"
        raise InputFileError(f"{where}: {key} must be {what}, got {value!r}")
    return value


def _where(path: Path, key: str, i: int, entry: Any) -> str:
    """`file: question 42`, or `file: questions[7]` while the id is not known to be good."""
    qid = entry.get("question_id") if isinstance(entry, dict) else None
    if isinstance(qid, int) and not isinstance(qid, bool):
        return f"{path}: question {qid}"
    return f"{path}: {key}[{i}]"


def _read_entries(root: Path, subtype: str) -> tuple[list[_Entry], Path, Path]:
    """Every question of `subtype` with its annotation, in the questions file's order."""
    qpath = _find(root, questions_file(subtype), questions_file(subtype, 1))
    apath = _find(root, annotations_file(subtype), annotations_file(subtype, 1))
    questions: dict[int, tuple[int, str]] = {}
    for i, q in enumerate(_load_list(qpath, "questions")):
        where = _where(qpath, "questions", i, q)
        qid = _field(q, "question_id", int, where)
        if qid in questions:
            raise InputFileError(f"{where}: appears twice")
        questions[qid] = (_field(q, "image_id", int, where), _field(q, "question", str, where))
    annotated: dict[int, _Entry] = {}
    for i, a in enumerate(_load_list(apath, "annotations")):
        where = _where(apath, "annotations", i, a)
        qid = _field(a, "question_id", int, where)
        image_id = _field(a, "image_id", int, where)
        if qid in annotated:
            raise InputFileError(f"{where}: annotated twice")
        if qid not in questions:
            raise InputFileError(f"{where}: no such question in {qpath.name}")
        if image_id != questions[qid][0]:
            raise InputFileError(
                f"{where}: image_id {image_id}, but {questions[qid][0]} in {qpath.name}"
            )
        given = a.get("answers", [])
        if not isinstance(given, list):
            raise InputFileError(f"{where}: answers must be a list, got {given!r}")
        answers = [normalize_answer(_field(g, "answer", str, f"{where} answers")) for g in given]
        kind = a.get("question_type", "")
        answer = normalize_answer(_field(a, "multiple_choice_answer", str, where))
        text = questions[qid][1]
        annotated[qid] = _Entry(qid, image_id, text, answer, answers, str(kind))
    for qid in questions:
        if qid not in annotated:
            raise InputFileError(f"{qpath}: question {qid} has no annotation in {apath.name}")
    return [annotated[qid] for qid in questions], qpath, apath


def _read_targets(path: Path, known: set[int]) -> dict[int, tuple[int, Box | None]]:
    """targets_<subtype>.csv -> {question id: (line, box or None)}, boxes not yet checked
    against their image's size."""
    out: dict[int, tuple[int, Box | None]] = {}
    for line, row in read_csv_rows(path, TARGETS_HEADER):
        if not "".join(row).strip():
            continue
        where = f"{path} line {line}"
        if len(row) != 5:
            raise InputFileError(f"{where}: expected 5 fields ({','.join(TARGETS_HEADER)})")
        qid = int(parse_number(row[0], where, "question_id"))
        if qid not in known:
            raise InputFileError(f"{where}: question {qid} is not a question of this split")
        if qid in out:
            raise InputFileError(f"{where}: question {qid} appears twice")
        cells = [c.strip() for c in row[1:]]
        box = None
        if any(cells):
            if not all(cells):
                raise InputFileError(
                    f"{where}: x0, y0, x1, y1 must be all given or all empty, got {','.join(cells)}"
                )
            fields = zip(cells, TARGETS_HEADER[1:], strict=True)
            box = tuple(int(parse_number(c, where, name)) for c, name in fields)
            if min(box) < 0:
                raise InputFileError(f"{where}: box {box} has a negative coordinate")
            check_box(box, None, where)
        out[qid] = (line, box)
    return out


# -- the reader ------------------------------------------------------------------------------


@dataclass(eq=False)
class VQARead:
    """A split as read: the samples, and the questions left out for their answer."""

    data: DataSplit
    unanswerable: list[int]  # question ids whose multiple_choice_answer is not among the answers
    questions: int  # every question of the split's files (samples + unanswerable + skipped)


def vqa_vocabularies(cfg: DataConfig) -> tuple[list[str], list[str]]:
    """(question words, answers) of the train split: the `cfg.question_words` most frequent words
    (0: all) and the `cfg.answers` most frequent multiple_choice_answers."""
    entries, _, _ = _read_entries(Path(cfg.root).expanduser(), cfg.train_subtype)
    return _vocabularies(cfg, entries)


def _vocabularies(cfg: DataConfig, train: list[_Entry]) -> tuple[list[str], list[str]]:
    words = question_vocab([e.text for e in train], cfg.question_words)
    return words, answer_vocab([e.answer for e in train], cfg.answers)


def read_vqa(
    cfg: DataConfig,
    split: str,
    vocab: list[str] | None = None,
    answers: list[str] | None = None,
) -> DataSplit:
    """The `train` or `val` (= `test`) split of the VQA data at `cfg.root` (see the module
    docstring); `vocab` and `answers` None: the train split's (`vqa_vocabularies`)."""
    return read_vqa_split(cfg, split, vocab, answers).data


def read_vqa_split(
    cfg: DataConfig,
    split: str,
    vocab: list[str] | None = None,
    answers: list[str] | None = None,
) -> VQARead:
    """`read_vqa`, with the ids of the questions left out because their answer is not among
    `answers` (count them as wrong for an accuracy over every question)."""
    if split not in ("train", "val", "test"):
        raise ConfigError(f"unknown split {split!r}; VQA data has 'train' and 'val' (or 'test')")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise MissingFileError(f"data.root {root} does not exist or is not a folder")
    subtype = cfg.train_subtype if split == "train" else cfg.val_subtype
    if split != "train" and subtype == cfg.train_subtype:
        raise ConfigError(
            f"data.val_subtype is data.train_subtype ({subtype}): the {split} split would test on "
            "the training questions; set data.val_subtype to a held-out subtype (val2014)"
        )
    entries, qpath, apath = _read_entries(root, subtype)
    vocab_from = "given"
    if vocab is None or answers is None:
        train = entries if split == "train" else _read_entries(root, cfg.train_subtype)[0]
        words, most = _vocabularies(cfg, train)
        vocab = vocab if vocab is not None else words
        answers = answers if answers is not None else most
        vocab_from = f"the most frequent of {cfg.train_subtype}"
    index = {a: i for i, a in enumerate(answers)}
    kept = [e for e in entries if e.answer in index]
    unanswerable = [e.question_id for e in entries if e.answer not in index]
    tpath = root / targets_file(subtype)
    targets = _read_targets(tpath, {e.question_id for e in entries}) if tpath.is_file() else {}
    boxed = {e.image_id for e in kept if targets.get(e.question_id, (0, None))[1] is not None}
    sizes, bad, skipped = _look_at_images(cfg, root, subtype, kept, boxed, qpath)
    samples, final = [], []
    for e in kept:
        if e.image_id in bad:
            continue
        sample = Sample(root / image_file(subtype, e.image_id), index[e.answer])
        line, box = targets.get(e.question_id, (0, None))
        if box is not None:
            sample.size = sizes[e.image_id]
            box = check_box(box, sample.size, f"{tpath} line {line}")
            sample.boxes = np.array([box], dtype=np.int64)  # (1, 4)
            sample.box_labels = np.array([sample.label], dtype=np.int64)
        samples.append(sample)
        final.append(e)
    if not samples:
        raise InputFileError(
            f"{qpath}: no question of split {split!r} has an answer among the {len(answers)} "
            "answers and a readable image"
        )
    words = {w: i for i, w in enumerate(vocab)}
    questions = Questions(
        ids=[e.question_id for e in final],
        text=[e.text for e in final],
        tokens=_token_matrix([[words[w] for w in tokenize(e.text) if w in words] for e in final]),
        vocab=list(vocab),
        answers=[e.answers for e in final],
        kinds=[e.kind for e in final],
    )
    boxes = f"target boxes from {tpath} (0-based inclusive, as given)" if targets else "no boxes"
    source = (
        f"VQA {qpath.name} + {apath.name}: labels the multiple-choice answers among "
        f"{len(answers)} answers ({vocab_from}); {len(unanswerable)} of {len(entries)} questions "
        f"left out (their answer is not among them); {boxes}"
    )
    classes = list(answers)
    data = DataSplit(split, root, classes, list(classes), samples, source, skipped, questions)
    return VQARead(data, unanswerable, len(entries))


def _look_at_images(
    cfg: DataConfig, root: Path, subtype: str, kept: list[_Entry], boxed: set[int], qpath: Path
) -> tuple[dict[int, tuple[int, int]], set[int], list[tuple[Path, str]]]:
    """Each image asked about exists (and, where a question has a target box, its size from the
    header): (sizes, bad image ids, skipped). A bad image is an error, or with
    data.bad_images=skip left out with all its questions."""
    sizes, bad, skipped = {}, set(), []
    first = {}
    for e in kept:
        first.setdefault(e.image_id, e.question_id)
    for image_id, qid in first.items():
        path = root / image_file(subtype, image_id)
        try:
            if not path.is_file():
                raise MissingFileError(
                    f"{path}: image file is missing (asked about by question {qid} of {qpath.name})"
                )
            if image_id in boxed:
                sizes[image_id] = read_image_size(path, cfg.max_image_pixels)
        except (InputFileError, MissingFileError) as err:
            if cfg.bad_images != "skip":
                raise
            bad.add(image_id)
            skipped.append((path, file_problem(err, path)))  # type: ignore[arg-type]
    return sizes, bad, skipped


def _token_matrix(rows: list[list[int]]) -> np.ndarray:
    """(N, L) int64, each row's word indices then -1s; L the longest row (at least 1)."""
    tokens = np.full((len(rows), max(map(len, rows), default=0) or 1), -1, dtype=np.int64)
    for i, row in enumerate(rows):
        tokens[i, : len(row)] = row
    return tokens
