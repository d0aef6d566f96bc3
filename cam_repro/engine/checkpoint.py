"""Checkpoints: written atomically, read with `torch.load(weights_only=True)`, RNG states."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cam_repro.errors import InputFileError
from cam_repro.models import build_model
from cam_repro.models.weights import torch_load_safely

FORMAT = "cam-repro-checkpoint/1"


def atomic_write(path: Path, write: Any) -> None:
    """Call `write(tmp_path)`, then rename the temp file over `path`: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """`text` (UTF-8) into `path` through `atomic_write`."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save `state` (plus the format tag) to `path` atomically."""
    atomic_write(path, lambda tmp: torch.save({"format": FORMAT, **state}, tmp))


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
    return state


def load_model(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The network a checkpoint holds (built from its saved model config), and the checkpoint."""
    state = load_checkpoint(path)
    model = build_model(state["config"]["model"], len(state["classes"]))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise InputFileError(f"{path}: weights do not fit its own model config ({first})") from None
    return model, state


def rng_state() -> dict[str, Any]:
    """Every random generator's state, in types `torch.load(weights_only=True)` accepts."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        # This process's GPU only (asking for every GPU's would open a context on each).
        "cuda": [torch.cuda.get_rng_state()] if torch.cuda.is_initialized() else [],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` saved."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"][0])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
