"""A dataset's splits as the data config names them: the reader for its layout, and what it is."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from cam_repro.data.config import DataConfig, data_config
from cam_repro.data.cub import read_cub
from cam_repro.data.folder import read_folder
from cam_repro.data.imagenet import read_imagenet
from cam_repro.data.samples import DataSplit, report_skipped
from cam_repro.data.svt import read_svt
from cam_repro.data.vqa import read_vqa
from cam_repro.data.wsol import read_wsol
from cam_repro.runtime.errors import CamReproError, InputFileError
from cam_repro.runtime.files import read_json


def read_split(
    cfg: DataConfig | Mapping[str, Any] | DictConfig, split: str, like: DataSplit | None = None
) -> DataSplit:
    """The `train` or `val` split that the data config points at (labels, sizes, boxes).

    `like`: a split of the same data already read (the train split), whose vocabularies this one
    takes instead of reading the train files again (VQA: the question words and the answers;
    the other readers' classes come from the train folders or tables, which are cheap to list).
    """
    spec = data_config(cfg)
    if spec.source == "vqa":
        questions = like.questions if like is not None else None
        vocab, answers = (questions.vocab, like.classes) if questions else (None, None)
        data = read_vqa(spec, split, vocab=vocab, answers=answers)
    else:
        readers = {"imagenet": read_imagenet, "cub": read_cub, "folder": read_folder,
                   "svt": read_svt, "wsol": read_wsol}  # fmt: skip
        data = readers[spec.source](spec, split)
    report_skipped(data.skipped, f"{spec.root} {split}")
    if not data.samples:  # every reader refuses this with its own words; this is the backstop
        left_out = f" ({len(data.skipped)} unreadable images left out)" if data.skipped else ""
        raise InputFileError(
            f"{data.root}: split {split!r} has no images{left_out}; a result over no images "
            "would be no result"
        )
    return data


def dataset_kind(cfg: DataConfig | Mapping[str, Any] | DictConfig) -> dict[str, Any]:
    """What the data is, for reports: {"kind": "ilsvrc" | "cub" | "folder" | "svt" | "vqa" |
    "wsol" | "synthetic", "task": "classes" | "text" | "vqa", "evidence": ..., "name": ...}, plus
    "family" for synthetic data, and for wsolevaluation's data "wsol_dataset" (ILSVRC | CUB |
    OpenImages) and "wsol_split" (the split that val reads: test | val).

    A synthetic set is recognised by the synth.json that cam-synth writes at its root; "task" is
    what it holds (cam-synth task=), "evidence" its design (parts | uniform | fine; None for the
    text and VQA sets and for real data), "family" its design family (0 when synth.json has none).
    "name" is data.name when given, else ILSVRC, CUB-200-2011, the root folder's name (folder
    data), SVT, VQA v2, "<dataset> <split> (wsolevaluation)" (e.g. "ILSVRC test
    (wsolevaluation)"), or "synthetic (<evidence>)" (", family N" when N is not 0), "synthetic
    text", "synthetic VQA".
    """
    spec = data_config(cfg)
    info = Path(spec.root) / "synth.json"
    if info.is_file():
        try:
            design = read_json(info).get("config", {})
        except (CamReproError, AttributeError):
            design = {}
        task = design.get("task", "classes")
        evidence, family = design.get("evidence"), design.get("family", 0)
        if task != "classes":
            evidence, name = None, f"synthetic {'text' if task == 'text' else 'VQA'}"
        else:
            name = f"synthetic ({evidence or 'unknown'}{f', family {family}' if family else ''})"
        return {
            "kind": "synthetic",
            "task": task,
            "evidence": evidence,
            "family": family,
            "name": spec.name or name,
        }
    if spec.source == "wsol":
        return {
            "kind": "wsol",
            "task": "classes",
            "evidence": None,
            "name": spec.name or f"{spec.dataset} {spec.split} (wsolevaluation)",
            "wsol_dataset": spec.dataset,
            "wsol_split": spec.split,
        }
    kind, name, task = {
        "imagenet": ("ilsvrc", "ILSVRC", "classes"),
        "cub": ("cub", "CUB-200-2011", "classes"),
        "folder": ("folder", Path(spec.root).expanduser().resolve().name, "classes"),
        "svt": ("svt", "SVT", "text"),
        "vqa": ("vqa", "VQA v2", "vqa"),
    }[spec.source]
    return {"kind": kind, "task": task, "evidence": None, "name": spec.name or name}
