"""The doc tests' Sybil parser: every fenced block of a markdown page, run, composed or skipped
as its marker says (docs/README.md states the rules):

- ```bash: run (shell.py) in the document's working folder, with the small settings (small.py);
- ```python: run by Sybil's PythonCodeBlockParser, one namespace per document, in that folder;
- ```text, ```json, ...: not run; an untagged fence fails (the docs tag every fence);
- `<!-- docs: compose (reason) -->` on the line before a ```bash fence: its cam-* commands only
  composed and schema-checked (compose.py);
- `<!-- docs: skip (reason) -->` before a ```bash or ```python fence: not run, reported skipped.

A marker without a reason, an unknown marker, or a marker not right before a runnable fence fails.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sybil import Document, Example, Region
from sybil.parsers.markdown import PythonCodeBlockParser
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

from tests.docs.compose import check_composes
from tests.docs.shell import run_bash
from tests.docs.workspace import README, first_steps_span

# a marker is a line of its own (one in running text, e.g. in `code`, is not a marker)
MARKER = re.compile(r"^[ \t]*<!--\s*docs\b(?P<body>.*?)-->", re.DOTALL | re.MULTILINE)
MARKER_FORM = re.compile(r"^:\s*(?P<kind>compose|skip)\s+\((?P<reason>.*\S.*)\)\s*$")
RUNNABLE = ("bash", "python")
NAMESPACE_FOLDER = "docs_folder"  # the fixture (conftest.py) that gives a document its folder


@dataclass
class Block:
    """A region's evaluator, with what the conftest needs to mark it (kind, commands)."""

    kind: str  # run | workspace (README's First steps) | compose | skip | error
    language: str
    call: Callable[[Example], str | None]

    def __call__(self, example: Example) -> str | None:
        __tracebackhide__ = True
        return self.call(example)


def _folder(example: Example):
    return example.namespace[NAMESPACE_FOLDER]


def _run_bash(example: Example) -> str | None:
    return run_bash(str(example.parsed), _folder(example).place())


def _run_python(python: Callable[[Example], None]) -> Callable[[Example], None]:
    def run(example: Example) -> None:
        __tracebackhide__ = True
        before = os.getcwd()
        os.chdir(_folder(example).place().cwd)
        try:
            python(example)
        finally:
            os.chdir(before)

    return run


def _workspace(example: Example) -> None:
    """README's First steps: they made the shared workspace (a failure there fails here)."""
    _folder(example).place()


def _compose(example: Example) -> None:
    check_composes(str(example.parsed))


def _skip(reason: str) -> Callable[[Example], None]:
    def skip(example: Example) -> None:
        pytest.skip(f"docs: skip ({reason})")

    return skip


def _error(message: str) -> Callable[[Example], None]:
    def fail(example: Example) -> None:
        raise AssertionError(message)

    return fail


class DocsParser:
    """Sybil parser for the docs: see the module's docstring."""

    def __init__(self) -> None:
        self.fences = FencedCodeBlockLexer(language=r"[^\n]*")
        self.python = PythonCodeBlockParser()

    def __call__(self, document: Document) -> Iterable[Region]:
        python = {region.start: region for region in self.python(document)}
        text = document.text
        # the README's First steps build the workspace every document starts from: in the
        # README they count as run once the workspace is built, not run a second time over it
        is_readme = Path(document.path).resolve() == README.resolve()
        first_steps = first_steps_span(text) if is_readme else None
        used: set[int] = set()
        for fence in self.fences(document):
            language = fence.lexemes["language"].strip()
            source = fence.lexemes["source"]
            line_start = text.rfind("\n", 0, max(fence.start - 1, 0)) + 1
            previous = text[line_start : fence.start].strip() if fence.start else ""
            marker = MARKER.fullmatch(previous) if previous.startswith("<!--") else None
            if marker:
                used.add(line_start)
            block = self._block(language, marker, fence.start, python)
            in_first_steps = first_steps and first_steps[0] <= fence.start < first_steps[1]
            if block and block.kind == "run" and language == "bash" and in_first_steps:
                block = Block("workspace", language, _workspace)
            if block is not None:
                yield Region(fence.start, fence.end, parsed=source, evaluator=block)
        for stray in MARKER.finditer(text):
            if stray.start() not in used:
                message = "a docs marker must be on the line right before a ```bash/```python fence"
                yield Region(
                    stray.start(), stray.end(), evaluator=Block("error", "", _error(message))
                )

    def _block(
        self, language: str, marker: re.Match | None, start: int, python: dict[int, Region]
    ) -> Block | None:
        if not language:
            return Block(
                "error", "", _error("untagged fence: tag it ```bash, ```python or ```text")
            )
        if marker is None:
            if language == "bash":
                return Block("run", language, _run_bash)
            if language == "python":
                if start not in python:  # Sybil read it as a doctest
                    return Block("error", language, _error("a ```python block with >>> prompts"))
                return Block("run", language, _run_python(python[start].evaluator))
            return None
        form = MARKER_FORM.match(marker.group("body"))
        if form is None:
            return Block(
                "error",
                language,
                _error(
                    f"bad marker {marker.group(0)!r}: write <!-- docs: compose (reason) --> or "
                    "<!-- docs: skip (reason) -->, the reason saying what is missing here"
                ),
            )
        kind, reason = form.group("kind"), form.group("reason").strip()
        if language not in RUNNABLE:
            return Block("error", language, _error(f"a docs marker on a ```{language} block"))
        if kind == "compose":
            if language != "bash":
                return Block("error", language, _error("compose applies to ```bash blocks"))
            return Block("compose", language, _compose)
        return Block("skip", language, _skip(reason))
