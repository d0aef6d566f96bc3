"""Checkpoints: a trained network on disk, written atomically, read with
`torch.load(weights_only=True)`; the one format cam-train writes and every stage reads."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import torch

from cam_repro.models import build_model
from cam_repro.models.config import model_config, variant_name
from cam_repro.models.vqa import build_vqa_model
from cam_repro.models.weights import check_weights_finite, load_strictly, torch_load_safely
from cam_repro.runtime.errors import InputFileError, first_line
from cam_repro.runtime.files import atomic_write

FORMAT = "cam-repro-checkpoint/1"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save `state` (plus the format tag) to `path` atomically; a failed write (full disk,
    read-only folder) is an OutputError naming `path`, and the previous file stays as it was."""

    def write(tmp: Path) -> None:
        try:
            torch.save({"format": FORMAT, **state}, tmp)
        except RuntimeError as err:  # torch's writer on a full disk: "... unexpected pos ..."
            first = first_line(err, "no message")
            raise OSError(errno.EIO, f"torch.save failed, is the disk full? ({first})") from None

    atomic_write(path, write)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by `save_checkpoint`, loaded safely on the CPU; clear errors if not."""
    path = Path(path).expanduser()
    state = torch_load_safely(
        path,
        missing="checkpoint {path} does not exist",
        unreadable="{path}: not a readable cam-repro checkpoint (corrupt or truncated?): {detail}",
    )
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise InputFileError(
            f"{path}: not a cam-repro checkpoint (format {found!r}, want {FORMAT})"
        )
    missing = [k for k in ("model", "config", "classes") if k not in state]
    if missing:
        raise InputFileError(f"{path}: checkpoint lacks {', '.join(missing)}")
    check_weights_finite(state["model"], path)
    return state


def load_model(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The network a checkpoint holds (built from its saved model config), and the checkpoint."""
    state = load_checkpoint(path)
    return model_from_state(state, path), state


def model_from_state(state: dict[str, Any], path: str | Path) -> torch.nn.Module:
    """The network of a checkpoint already loaded (`load_checkpoint(path)`), with its weights;
    built with the checkpoint's method (`state["config"]["method"]`, absent: CAM)."""
    vocab = state.get("question_vocab")
    if vocab:  # a VQA model (cam-train task=vqa)
        model = build_vqa_model(state["config"]["model"], len(state["classes"]), len(vocab))
    else:
        # the WSOL method's parts (absent: CAM), so that a method's weights load strictly
        method = state["config"].get("method")
        model = build_model(state["config"]["model"], len(state["classes"]), method)
    name = f"its own model config ({variant_name(model_config(state['config']['model']))})"
    hint = "the checkpoint is damaged or was edited: use another one (e.g. best.pt or last.pt)"
    model.weights_load = load_strictly(model, state["model"], str(path), name, hint=hint)
    return model
