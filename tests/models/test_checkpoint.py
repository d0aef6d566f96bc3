"""Checkpoints: atomic writes, safe loading with clear errors, RNG state round trips."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from cam_repro.models.checkpoint import load_checkpoint, save_checkpoint
from cam_repro.runtime.errors import InputFileError, MissingFileError
from cam_repro.runtime.files import atomic_write
from cam_repro.runtime.rng import rng_state, set_rng_state


def _state() -> dict:
    return {"model": {"w": torch.ones(2)}, "config": {"seed": 0}, "classes": ["a", "b"]}


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "ck" / "last.pt"
    save_checkpoint(path, _state())
    state = load_checkpoint(path)
    assert torch.equal(state["model"]["w"], torch.ones(2)) and state["classes"] == ["a", "b"]
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, _state())
    before = path.read_bytes()

    def crash(tmp: Path) -> None:
        tmp.write_bytes(b"half a checkpo")
        raise KeyboardInterrupt  # killed while writing

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_corrupt_truncated_foreign_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, _state())
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputFileError, match=r"last.pt: not a readable cam-repro checkpoint"):
        load_checkpoint(path)
    foreign = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(1)}, foreign)
    with pytest.raises(InputFileError, match=r"weights.pt: not a cam-repro checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(MissingFileError, match=r"nothere\.pt does not exist"):
        load_checkpoint(tmp_path / "nothere.pt")


def test_unsafe_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "cam-repro-checkpoint/1", "model": {}, "x": object()}, path)
    with pytest.raises(InputFileError, match=r"evil\.pt"):
        load_checkpoint(path)


def test_rng_states_survive_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "rng.pt"
    save_checkpoint(path, {**_state(), "rng": rng_state()})
    expected = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(load_checkpoint(path)["rng"])
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1])
    assert expected[2] == got[2]
