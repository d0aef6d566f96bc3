"""The doc tests: every ```bash and ```python block of README.md and docs/*.md run, composed or
skipped as its marker says (tests/docs/parser.py; the rules are in docs/README.md), through
Sybil's pytest integration. The unit tests' fixtures are in tests/conftest.py."""

from __future__ import annotations

import pytest
from sybil import Sybil

from tests.docs.parser import NAMESPACE_FOLDER, Block, DocsParser
from tests.docs.workspace import DocFolder, Workspace

# the kinds of block that run: the first one of a session builds the shared workspace (the
# README's First steps, a minute or more), and every cam-* command but cam-synth starts torch
RUNS = ("run", "workspace")


@pytest.fixture(scope="session")
def docs_workspace(tmp_path_factory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("docs"))


@pytest.fixture(scope="module")  # Sybil's module is the document
def docs_folder(request, docs_workspace: Workspace) -> DocFolder:
    page = request.node.path.relative_to(request.config.rootpath).with_suffix("")
    return DocFolder(docs_workspace, "-".join(page.parts))  # docs-README, not README's


pytest_collect_file = Sybil(
    parsers=[DocsParser()],
    patterns=["README.md", "docs/*.md"],
    fixtures=[NAMESPACE_FOLDER],
).pytest()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every block that runs is marked slow: -m 'not slow' keeps the markers' checks and the
    compose blocks (fast), and leaves out the runs, which build on each other page by page."""
    for item in items:
        block = _block(item)
        if block and block.kind in RUNS:
            item.add_marker(pytest.mark.slow)


def _block(item: pytest.Item) -> Block | None:
    evaluator = getattr(getattr(item, "example", None), "region", None)
    evaluator = getattr(evaluator, "evaluator", None)
    return evaluator if isinstance(evaluator, Block) else None
