"""Every command refuses a `+key` its schema does not have (cli/__init__.py's `user_errors`, through
runtime.config.check_keys): one line naming the key and the close matches, exit 1, before any
work. cam-report and cam-models validate no whole config themselves: the check is the CLI's."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import run_command


@pytest.mark.parametrize(
    ("command", "override", "message"),
    [
        ("cam-train", "+trainer.epoch=2",
         "trainer.epoch is not a key of cam-train's config (did you mean trainer.epochs?)"),
        ("cam-models", "+model.pol=gap",
         "model.pol is not a key of cam-models's config (did you mean model.pool?)"),
        ("cam-report", "+paperr=true",
         "paperr is not a key of cam-report's config (did you mean paper?)"),
    ],
)  # fmt: skip
def test_an_unknown_plus_key_is_one_line(
    command: str, override: str, message: str, tmp_path: Path
) -> None:
    result = run_command(tmp_path, command, override, "hydra.run.dir=run")
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {message}"
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
