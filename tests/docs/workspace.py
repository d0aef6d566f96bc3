"""The shared workspace every document's examples start from (docs/README.md): the folders the
README's "First steps" make, run here with the small settings, plus `photos/`, two images
standing in for a reader's own photos. Built once per test session; each document then works in
a fresh copy, so one page's examples cannot disturb another's.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from PIL import Image

from tests.docs.shell import ShellPlace, run_bash, write_shims

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
FIRST_STEPS = re.compile(r"^(#+)\s+First steps\b.*$", re.MULTILINE)
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)
# what the docs may use (docs/README.md); the First steps must make them
FOLDERS = ("data/synthetic", "outputs/train/gap", "outputs/train/gmp", "outputs/eval/gap")
# the repository's folders an example at the repository root reads (scripts, the record)
LINKED = ("scripts", "results")


def first_steps_span(text: str) -> tuple[int, int] | None:
    """Where the README's "First steps" section is in `text` (start, end), None if absent."""
    heading = FIRST_STEPS.search(text)
    if heading is None:
        return None
    level = len(heading.group(1))
    end = re.compile(rf"^#{{1,{level}}}\s", re.MULTILINE).search(text, heading.end())
    return heading.end(), end.start() if end else len(text)


def first_steps(readme: Path = README) -> list[str]:
    """The runnable ```bash blocks of the README's "First steps" section (marked ones left out)."""
    text = readme.read_text()
    span = first_steps_span(text)
    if span is None:
        raise AssertionError(f"{readme.name} has no 'First steps' section: the docs' workspace")
    section = text[span[0] : span[1]]
    blocks = []
    for block in BASH_BLOCK.finditer(section):
        before = section[: block.start()].rstrip().splitlines()
        if before and before[-1].strip().startswith("<!-- docs:"):
            continue
        blocks.append(block.group(1))
    return blocks


def make_photos(root: Path) -> None:
    """photos/: a JPEG and a PNG of different sizes, from the synthetic set's first val images."""
    val = sorted((root / "data/synthetic/ILSVRC/Data/CLS-LOC/val").glob("*.JPEG"))[:2]
    if len(val) < 2:
        raise AssertionError("data/synthetic has fewer than 2 val images: cannot make photos/")
    photos = root / "photos"
    photos.mkdir()
    with Image.open(val[0]) as image:
        image.convert("RGB").resize((160, 120)).save(photos / "street.jpg", quality=90)
    with Image.open(val[1]) as image:
        image.convert("RGB").resize((96, 128)).save(photos / "garden.png")


def link_repository(root: Path) -> None:
    for name in LINKED:
        if not (root / name).exists():
            (root / name).symlink_to(REPO / name, target_is_directory=True)


class Workspace:
    """The shared workspace, built on first use (a session of compose-only tests needs none)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._root: Path | None = None

    def shims(self) -> Path:
        return write_shims(self.base / "shims")

    def place(self, name: str) -> ShellPlace:
        folder = self.base / name
        for sub in ("work", "home", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return ShellPlace(folder / "work", folder / "home", folder / "tmp", self.shims())

    def root(self) -> Path:
        if self._root is None:
            place = self.place("workspace")
            link_repository(place.cwd)
            for source in first_steps():
                failure = run_bash(source, place)
                if failure:
                    raise AssertionError(f"README's First steps failed:\n{source}\n{failure}")
                if (place.cwd / "data/synthetic").is_dir() and not (place.cwd / "photos").exists():
                    make_photos(place.cwd)  # as soon as there are images: a later step may use it
            missing = [f for f in FOLDERS if not (place.cwd / f).is_dir()]
            if missing:
                raise AssertionError(f"README's First steps did not make {', '.join(missing)}")
            self._root = place.cwd
        return self._root


class DocFolder:
    """One document's working folder: a fresh copy of the workspace, made on first use."""

    def __init__(self, workspace: Workspace, name: str) -> None:
        self.workspace = workspace
        self.name = name
        self._place: ShellPlace | None = None

    def place(self) -> ShellPlace:
        if self._place is None:
            root = self.workspace.root()
            place = self.workspace.place(self.name)
            shutil.copytree(root, place.cwd, symlinks=True, dirs_exist_ok=True)
            self._place = place
        return self._place
