"""Every command's --help (cli/help.py): what it names, that its meanings come from the schemas'
comments, that it imports no torch, and that its examples compose."""

from __future__ import annotations

import dataclasses
import importlib
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import run_command
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from cam_repro.apps import APPS, CONFIG_DIR, compose
from cam_repro.runtime.config import to_schema
from cam_repro_cli.help import class_comments, field_meanings, reachable_schemas, schema_of

# Modules a --help must not load: seconds of start-up each (torch alone ~1 GB of RSS).
HEAVY = ("torch", "torchvision", "numba", "scipy", "matplotlib", "sklearn")

# The commands' checks of a whole config beyond its schema's types (choices, ranges).
VALIDATORS = {
    "train": "cam_repro.train.config:train_config",
    "eval": "cam_repro.evaluate.config:eval_config",
    "features": "cam_repro.features.config:features_config",
    "synth": "cam_repro.data.synth_config:synth_config",
    "reproduce": "cam_repro.reproduce.config:reproduce_config",
    "visualize": "cam_repro.visualize_config:visualize_config",
}

# One fresh interpreter per command: its help text and the heavy modules loaded by then.
PROBE = """
import contextlib, io, json, sys
sys.argv = [{command!r}, *{args!r}]
from cam_repro_cli.{app} import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main()
    except SystemExit as end:
        code = end.code
    else:
        code = 0
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
print(json.dumps({{"code": code, "help": out.getvalue(), "heavy": heavy}}))
"""


def probe(app: str, *args: str) -> dict:
    script = PROBE.format(command=f"cam-{app}", args=list(args), app=app, heavy=HEAVY)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def defaults_groups(app: str) -> list[str]:
    """The config groups of the command's defaults list (configs/<config>.yaml)."""
    app_cfg = OmegaConf.load(Path(CONFIG_DIR, f"{APPS[app][0]}.yaml"))
    return [
        next(iter(item))
        for item in app_cfg.defaults
        if not isinstance(item, str) and Path(CONFIG_DIR, next(iter(item))).is_dir()
    ]


@pytest.mark.parametrize("app", sorted(APPS))
def test_help_names_every_key_and_group_without_heavy_imports(app: str) -> None:
    probed = probe(app, "--help")
    text = probed["help"]
    assert probed["code"] in (0, None)
    assert probed["heavy"] == [], f"cam-{app} --help imported {probed['heavy']}"
    assert text.startswith(f"cam-{app}: ")
    for section in ("usage: ", "keys (", "examples:", "--hydra-help", "docs/"):
        assert section in text
    for f in dataclasses.fields(schema_of(app)):  # a key's line, or a nested config's heading
        assert f"\n  {f.name}=" in text or f"\n  {f.name}: " in text, f.name
    for group in defaults_groups(app):
        assert f"\n  {group}=" in text, group
        for choice in Path(CONFIG_DIR, group).glob("*.yaml"):
            assert f" {choice.stem} " in text or f" {choice.stem}\n" in text, choice


def test_help_shows_the_composed_values() -> None:
    """The overrides before --help apply, a group's choice with its file's values."""
    default, gmp = probe("train", "--help")["help"], probe("train", "model=tiny_gmp", "--help")
    assert "\n  model.pool=gap " in default and "\n  model=tiny_gap " in default
    assert "\n  model.pool=gmp " in gmp["help"] and "\n  model=tiny_gmp " in gmp["help"]
    assert gmp["heavy"] == []


def test_help_with_a_bad_override_is_one_line(tmp_path: Path) -> None:
    result = run_command(tmp_path, "cam-train", "modl=x", "--help")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and "modl" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_hydra_flags_still_reach_hydra(tmp_path: Path) -> None:
    hydra_help = run_command(tmp_path, "cam-models", "--hydra-help")
    assert hydra_help.returncode == 0 and "Hydra (" in hydra_help.stdout
    cfg_job = run_command(tmp_path, "cam-models", "model=tiny_gap", "--cfg", "job")
    assert cfg_job.returncode == 0 and "input_size: 224" in cfg_job.stdout
    assert "arch: tiny" in cfg_job.stdout


def test_every_schema_field_has_a_meaning() -> None:
    """A key added without a comment (or a nested config without a docstring) fails here."""
    missing = [
        f"{cls.__module__}.{cls.__name__}.{name}"
        for app in APPS
        for cls in reachable_schemas(schema_of(app))
        for name, meaning in field_meanings(cls).items()
        if not meaning
    ]
    assert missing == []


@dataclass
class _Base:
    inherited: int = 1  # from the base


@dataclass
class _Commented(_Base):
    """A nested config's docstring.

    Not its first paragraph."""

    trailing: int = 0  # a | b | c
    # the lines above,
    # joined
    above: str = "x"
    both: int = 2  # the trailing one wins
    wrapped: str = (
        "long"  # on a continuation line
    )  # fmt: skip
    pragma_only: list[int] = field(default_factory=list)  # type: ignore[misc]
    # a section heading, then a blank line

    after_blank: int = 3
    nested: _Base = field(default_factory=_Base)


def test_comments_are_read_from_the_source() -> None:
    assert class_comments(_Commented) == {
        "trailing": "a | b | c",
        "above": "the lines above, joined",
        "both": "the trailing one wins",
        "wrapped": "on a continuation line",
        "pragma_only": "",
        "after_blank": "",
        "nested": "",
    }
    meanings = field_meanings(_Commented)
    assert meanings["inherited"] == "from the base"
    assert meanings["nested"] == ""  # _Base has no docstring of its own: dataclass's signature
    assert field_meanings(_Base) == {"inherited": "from the base"}


def example_jobs(app: str, example: str) -> list[list[str]]:
    """The overrides of the jobs an example command line runs: a sweep's jobs enough to give
    every swept value once (the values combine alike)."""
    words = shlex.split(example.partition("  # ")[0].replace("$(which ", "").replace(")", " "))
    start = next(i for i, w in enumerate(words) if w.endswith(f"cam-{app}"))
    overrides = [w for w in words[start + 1 :] if not w.startswith("-")]
    parsed = OverridesParser.create().parse_overrides(overrides)
    jobs, seen = [], set()
    for batch in BasicSweeper.split_arguments(parsed, None):
        for job in batch:
            if not seen.issuperset(job):
                jobs.append(list(job))
                seen.update(job)
    return jobs


@pytest.mark.parametrize("app", sorted(APPS))
def test_examples_compose_and_pass_the_schema(app: str) -> None:
    module = importlib.import_module(f"cam_repro_cli.{app}")
    schema = schema_of(app)
    assert 3 <= len(module.EXAMPLES) <= 5
    for example in module.EXAMPLES:
        for overrides in example_jobs(app, example):
            cfg = compose(app, overrides)
            if app == "models" and OmegaConf.is_missing(cfg.model, "arch"):
                # no model=: cam-models composes each variant (cli/models.py); check one
                cfg.model = compose(app, ["model=tiny_gap", *overrides]).model
            assert isinstance(to_schema(schema, cfg), schema), example
            if app in VALIDATORS:  # the command's own checks of values, torch-free
                module_name, name = VALIDATORS[app].split(":")
                getattr(importlib.import_module(module_name), name)(cfg)
