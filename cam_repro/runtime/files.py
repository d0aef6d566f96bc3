"""Files a run writes: atomically (a temp file renamed over the target), never half-written.

- The temp file is created beside the target (`.<name>.<pid>-<random>.tmp`, so the rename stays on
  one filesystem) with mode 0666 minus the user's umask, as any other file the user creates:
  collaborators in a shared group can read results when the umask lets them.
- A failed write (read-only folder, full disk, quota) removes the temp file and raises an
  OutputError naming the path; the previous version of the target, if any, is untouched.
- A temp file left by a process killed mid-write (kill -9, power loss) is removed by the next run
  that owns the folder (`remove_stale_temps`, called under the run folder's lock).

And the one reader of the text files a user gives (split lists, metadata, CSV, JSON): `read_text`,
`read_lines`, whatever wrote them (a byte-order mark, Windows or old-Mac line ends).
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cam_repro.runtime.errors import InputFileError, OutputError, first_line

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


# Byte-order marks, longest first (UTF-32 LE's starts with UTF-16 LE's).
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def read_text(path: Path | str) -> str:
    """A text file a user gives (split list, metadata, CSV, JSON) with "\\n" line ends.

    UTF-8, with or without the byte-order mark that Excel and Notepad write (dropped: kept, it
    would be part of the first name or header: a phantom class, the right header refused), or
    UTF-16/32 with their mark; CRLF and CR line ends read as LF (so no name ends in "\\r"). An
    unreadable file, bytes that are not text in that encoding, or a NUL character (UTF-16 saved
    without its mark, which would otherwise decode as UTF-8) is one InputFileError naming it."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise InputFileError(f"{path}: cannot read ({err.strerror or err})") from None
    encoding, start = next(((e, len(b)) for b, e in _BOMS if data.startswith(b)), ("utf-8", 0))
    try:
        text = data[start:].decode(encoding)
    except UnicodeDecodeError as err:
        at = start + err.start
        line = data[:at].count(b"\n") + 1 if encoding == "utf-8" else None
        raise InputFileError(
            f"{path}: not {encoding.upper()} text (byte 0x{data[at]:02x} at offset {at}"
            + (f", line {line}" if line else "")
            + "); save it as UTF-8"
        ) from None
    if "\x00" in text:
        raise InputFileError(
            f"{path}: holds NUL characters, not text (UTF-16 saved without a byte-order mark?); "
            "save it as UTF-8"
        )
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_lines(path: Path | str) -> list[str]:
    """`read_text`'s lines, without their line ends (a final line end starts no extra line);
    split on line ends only, not on the other characters `str.splitlines` splits on (form feed,
    U+2028, ...), which may be part of a name."""
    text = read_text(path)
    lines = text.split("\n")
    return lines[:-1] if text.endswith("\n") else lines


def read_json(path: Path) -> Any:
    """A JSON file's content (read by `read_text`); an unreadable or malformed file is an
    InputFileError naming it."""
    text = read_text(path)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        raise InputFileError(f"{path}: not valid JSON ({first_line(err)})") from None


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (a checkpoint's: which weights a row of the tables came from)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
