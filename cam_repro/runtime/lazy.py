"""Package attributes imported on first use (PEP 562), so that importing a light submodule (a
config schema) does not import its package's heavy ones (torch, torchvision)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, whose name `n` lives in `exports[n]` (a
    submodule's name): `from package import n` imports that submodule then, and only then."""

    def attribute(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        importlib.import_module(package).__dict__[name] = value  # found directly from now on
        return value

    def names() -> list[str]:
        return sorted(exports)

    return attribute, names
