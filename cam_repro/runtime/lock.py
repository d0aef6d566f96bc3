"""A run folder belongs to one live process: an exclusive OS file lock held for the run's life.

The lock is `flock` on `<run dir>/.cam-repro.lock`. The kernel releases it when the process ends
however it ends (exit, exception, kill -9, a lost node's NFS lease), so a killed run can be
resumed at once: no stale lock file to delete by hand. The file records the holder (host and pid)
for the message a second process gets. Under torchrun only rank 0 takes it (the ranks of one job
share the folder).
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cam_repro.runtime.errors import RunFolderBusyError
from cam_repro.runtime.files import make_dir, output_error

LOCK_NAME = ".cam-repro.lock"


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").split()
    except OSError:
        return "another process"
    return f"process {text[0]} on {text[1]}" if len(text) >= 2 else "another process"


@contextmanager
def run_lock(folder: Path) -> Iterator[Path]:
    """Hold `folder`'s run lock for the block (creating the folder); a second process asking
    for it while the first lives gets a RunFolderBusyError naming the folder and the holder."""
    make_dir(folder)
    path = folder / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise output_error(path, err) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderBusyError(
                f"{folder} is in use by a running job ({_holder(fd)}); wait for it to end, or "
                "choose another folder (hydra.run.dir=...)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock
