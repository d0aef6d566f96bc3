"""The house keeps its shape: every import inside the package goes down the layers.

Layers, lowest first (docs/architecture.md). A module may import its own layer and the layers
below; never a layer above, never the CLI. Within the middle floors some neighbours stay apart
too: models and data never import each other, the stages never import each other, and
presentation never imports training.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cam_repro"

# (layer, the modules or packages in it), lowest first. The direction is written here once.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("runtime", ("cam_repro.runtime",)),
    ("localize", ("cam_repro.localize",)),
    ("models/data", ("cam_repro.models", "cam_repro.data")),
    ("stages", ("cam_repro.train", "cam_repro.evaluate", "cam_repro.features")),
    ("present", ("cam_repro.present",)),
    (
        "apps",
        (
            "cam_repro.apps",
            "cam_repro.reproduce",
            "cam_repro.visualize",
            "cam_repro.visualize_config",
        ),
    ),
    ("public", ("cam_repro.cam", "cam_repro.boxes", "cam_repro.metrics", "cam_repro")),
]
# Pairs of the same layer that must not import each other (either way).
APART = [
    ("cam_repro.models", "cam_repro.data"),
    ("cam_repro.train", "cam_repro.evaluate"),
    ("cam_repro.train", "cam_repro.features"),
]
# One-way bans across layers that the order alone allows.
FORBIDDEN = [
    ("cam_repro.present", "cam_repro.train"),
    ("cam_repro.evaluate", "cam_repro.features"),  # features builds on evaluate, not back
]


def _unit(module: str) -> str:
    """The LAYERS entry that holds `module` (the longest matching prefix)."""
    names = [n for _, members in LAYERS for n in members]
    hits = [n for n in names if module == n or module.startswith(n + ".")]
    if not hits:
        raise AssertionError(f"{module} is in no layer of tests/test_layers.py: add it there")
    return max(hits, key=len)


def _rank(module: str) -> int:
    unit = _unit(module)
    return next(i for i, (_, members) in enumerate(LAYERS) if unit in members)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, at any depth (functions included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from cam_repro import cam`: the submodule is what is imported
            subs = [f"{node.module}.{a.name}" for a in node.names]
            found += [(node.lineno, m) for m in [m for m in subs if _is_module(m)] or [node.module]]
    return found


def _is_module(name: str) -> bool:
    path = ROOT / Path(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def wrong_imports(package: Path = PACKAGE) -> list[str]:
    """Every import in `package` that goes the wrong way, as 'file:line: a -> b (why)'."""
    wrong = []
    for path in sorted(package.rglob("*.py")):
        here = _module_name(path)
        for line, target in _imports(path):
            where = f"{path.relative_to(ROOT)}:{line}: {here} -> {target}"
            if target.split(".")[0] == "cam_repro_cli":
                wrong.append(f"{where} (the library never imports the CLI)")
                continue
            if not target.startswith("cam_repro") or not _is_module(target):
                continue
            a, b = _unit(here), _unit(target)
            if a == b:
                continue
            if _rank(target) > _rank(here):
                wrong.append(f"{where} (imports up: {LAYERS[_rank(here)][0]} -> "
                             f"{LAYERS[_rank(target)][0]})")  # fmt: skip
            elif {a, b} in [set(pair) for pair in APART]:
                wrong.append(f"{where} ({a} and {b} stay apart)")
            elif (a, b) in FORBIDDEN:
                wrong.append(f"{where} ({a} never imports {b})")
    return wrong


def test_every_import_goes_down_the_layers() -> None:
    assert wrong_imports() == []


def test_every_module_has_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        _unit(_module_name(path))  # raises, naming the module


@pytest.mark.parametrize(
    ("module", "source", "why"),
    [
        ("localize/bad.py", "from cam_repro.models import build_model\n", "imports up"),
        ("models/bad.py", "import cam_repro.data.config\n", "stay apart"),
        ("present/bad.py", "def f():\n    from cam_repro.train import train\n", "never imports"),
        ("runtime/bad.py", "from cam_repro_cli import CONFIG_DIR\n", "never imports the CLI"),
        ("train/bad.py", "from cam_repro import cam\n", "stages -> public"),
    ],
)
def test_a_wrong_import_is_named(tmp_path: Path, module: str, source: str, why: str) -> None:
    """The check itself catches each kind of wrong import, naming the file and line."""
    fake = tmp_path / "cam_repro"
    for path in PACKAGE.rglob("*.py"):  # the real tree's module names, so targets resolve
        (fake / path.relative_to(PACKAGE)).parent.mkdir(parents=True, exist_ok=True)
    bad = fake / module
    bad.write_text(source)
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        for path in PACKAGE.rglob("*.py"):
            copy = fake / path.relative_to(PACKAGE)
            if not copy.exists():
                copy.write_text("")
        found = wrong_imports(fake)
    finally:
        ROOT = saved
    assert len(found) == 1 and why in found[0] and f"{module}:" in found[0], found
