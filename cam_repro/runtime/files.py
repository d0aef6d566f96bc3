"""Files a run writes: atomically (a temp file renamed over the target), never half-written.

- The temp file is created beside the target (`.<name>.<pid>-<random>.tmp`, so the rename stays on
  one filesystem) with mode 0666 minus the user's umask, as any other file the user creates:
  collaborators in a shared group can read results when the umask lets them.
- A failed write (read-only folder, full disk, quota) removes the temp file and raises an
  OutputError naming the path; the previous version of the target, if any, is untouched.
- A temp file left by a process killed mid-write (kill -9, power loss) is removed by the next run
  that owns the folder (`remove_stale_temps`, called under the run folder's lock).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cam_repro.runtime.errors import InputFileError, OutputError

TEMP_SUFFIX = ".tmp"


def output_error(path: Path | str, err: OSError, action: str = "write") -> OutputError:
    """A one-line OutputError for an OSError met while writing (`action`) `path`."""
    reason = err.strerror or str(err)
    hint = {
        errno.ENOSPC: "; free some space or write elsewhere",
        errno.EDQUOT: "; the disk quota is exhausted: free some space or write elsewhere",
        errno.EROFS: "; the filesystem is read-only: write elsewhere",
        errno.EACCES: "; no permission to write there: write elsewhere",
    }.get(err.errno or 0, "")
    return OutputError(f"cannot {action} {path}: {reason}{hint}")


def make_dir(path: Path) -> Path:
    """`mkdir -p path`, an OSError as an OutputError naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise output_error(path, err, "create the folder") from None
    return path


def _temp_file(path: Path) -> Path:
    """A new empty file beside `path`, created with the user's umask (unlike mkstemp's 0600)."""
    while True:
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
        except OSError as err:
            raise output_error(path, err) from None


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Call `write(tmp_path)`, then rename the temp file over `path`: never a half-written file.

    An OSError (no space, read-only, no permission) becomes an OutputError naming `path`; a
    `write` that fails otherwise (or is interrupted) re-raises after removing the temp file.
    """
    make_dir(path.parent)
    tmp = _temp_file(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise output_error(path, err) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the temp files `atomic_write` left in `folder` and its subfolders when a process
    was killed mid-write; returns them. Call only while holding the folder's run lock."""
    removed = []
    if not folder.is_dir():
        return removed
    for tmp in folder.rglob(f".*{TEMP_SUFFIX}"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


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


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (a checkpoint's: which weights a row of the tables came from)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
