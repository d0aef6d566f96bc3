"""Files a run writes: atomically (a temp file renamed over the target), never half-written."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cam_repro.runtime.errors import InputFileError


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
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


def write_json(path: Path, obj: Any) -> None:
    """`obj` as indented JSON, written atomically."""
    text = json.dumps(obj, indent=2, allow_nan=True) + "\n"
    write_text_atomic(path, text)


def read_json(path: Path) -> Any:
    """A JSON file's content; an unreadable or malformed file is an InputFileError naming it."""
    try:
        return json.loads(path.read_text())
    except OSError as err:
        raise InputFileError(f"{path}: cannot read ({err.strerror or err})") from None
    except ValueError as err:
        raise InputFileError(f"{path}: not valid JSON ({err})") from None
