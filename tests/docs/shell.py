"""Running a ```bash block of the docs as a reader would: `bash -euo pipefail` in the document's
working folder, the venv's commands first on PATH, HOME and TMPDIR inside the test's folder.

Every cam-* command runs through a shim (a script of the same name, first on PATH) that appends
the small settings of small.py and execs the installed command, so continued lines, comments,
`&&` chains and `$(which cam-train)` work exactly as written.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.docs.small import SMALL

BIN = Path(sys.prefix) / "bin"  # the venv's commands (the tests run under its python)
TAIL_LINES = 25  # of stderr, in a failure's message
TIMEOUT = 300  # s per block: the largest small-settings block takes ~1 min on a busy 2-core CPU

SHIM = """#!{python}
# cam-repro doc tests: {command} with the small settings of tests/docs/small.py
import os
import sys

sys.path.insert(0, {root!r})
from tests.docs.small import with_small

real = {real!r}
os.execv(real, [real, *with_small({command!r}, sys.argv[1:])])
"""


def write_shims(folder: Path) -> Path:
    """A shim per cam-* command of the venv in `folder`; returns `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    root = str(Path(__file__).resolve().parents[2])
    for real in sorted(BIN.glob("cam-*")):
        if real.name not in SMALL:
            continue  # nothing to add: the reader's PATH finds the real command
        shim = folder / real.name
        text = SHIM.format(python=sys.executable, command=real.name, root=root, real=str(real))
        shim.write_text(text)
        shim.chmod(0o755)
    return folder


@dataclass
class ShellPlace:
    """Where a document's blocks run: its working folder, HOME, TMPDIR and the shims."""

    cwd: Path
    home: Path
    tmp: Path
    shims: Path

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([str(self.shims), str(BIN), env.get("PATH", "")])
        env["VIRTUAL_ENV"] = str(BIN.parent)  # as `. .venv/bin/activate` sets it
        env.pop("PYTHONHOME", None)
        env["HOME"] = str(self.home)
        env["TMPDIR"] = str(self.tmp)
        env["MPLBACKEND"] = "Agg"
        return env


# -e stops at the first failing command; the trap names it (bash expands $BASH_COMMAND)
PROLOGUE = "trap 'echo \"docs: failed: $BASH_COMMAND\" >&2' ERR\n"


def run_bash(source: str, place: ShellPlace, timeout: float = TIMEOUT) -> str | None:
    """Run `source`; None when it succeeds, else the failure's message (the failing command
    and the tail of stderr)."""
    script = place.tmp / "block.sh"
    script.write_text(PROLOGUE + source)
    proc = subprocess.Popen(
        ["bash", "-euo", "pipefail", str(script)],
        cwd=place.cwd,
        env=place.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a timeout ends the block's whole process group
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return f"bash block timed out after {timeout:.0f} s\n{_tail(err)}"
    if proc.returncode == 0:
        return None
    return f"bash block failed (exit {proc.returncode})\n{_tail(err or out)}"


def _tail(text: str) -> str:
    return "\n".join(text.rstrip().splitlines()[-TAIL_LINES:])
