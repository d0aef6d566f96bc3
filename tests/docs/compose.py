"""Checking a block that cannot run here (no ILSVRC, no GPU, no download): each cam-* command is
composed with its overrides as its command line would compose it (`cam_repro.apps.compose`)
and checked against the app's schema (`runtime.config.to_schema`), so a mistyped key or a wrong
value fails the doc test although nothing runs.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from cam_repro.apps import APPS, compose, schema_of
from cam_repro.runtime.config import to_schema

ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
CAM_COMMAND = re.compile(r"^(?:.*/)?(cam-[a-z]+)$")
LAUNCHERS = {"torchrun"}  # followed by its options (-x, --x=y), then the command
SEPARATORS = {"&&", "||", ";", "|", "&"}
# Hydra's flags: those followed by a value, and those alone
FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name"}
FLAGS = {"-m", "--multirun", "--help", "-h", "--hydra-help", "--resolve", "--info", "-i"}


@dataclass
class CamCommand:
    command: str  # cam-train
    overrides: list[str]
    multirun: bool

    @property
    def app(self) -> str:
        return self.command.removeprefix("cam-")


def simple_commands(source: str) -> list[list[str]]:
    """The words of each simple command of a shell text (continued lines joined, comments
    dropped, split at `&&`, `||`, `;`, `|`, `&`)."""
    text = source.replace("\\\n", " ")
    text = re.sub(r"\$\(\s*which\s+(cam-[a-z]+)\s*\)", r"\1", text)
    commands: list[list[str]] = []
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        for token in lexer:
            if token in SEPARATORS:
                if words:
                    commands.append(words)
                words = []
            else:
                words.append(token)
        if words:
            commands.append(words)
    return commands


def cam_command(words: list[str]) -> CamCommand | None:
    """The cam-* command of a simple command, past env assignments and a launcher
    (`torchrun --nproc_per_node=8 cam-train ...`, `python -m torch.distributed.run ...`)."""
    rest = list(words)
    while rest and ENV_ASSIGNMENT.match(rest[0]):
        rest.pop(0)
    if rest[:3] == ["python", "-m", "torch.distributed.run"]:
        rest = rest[3:]
    elif rest and rest[0] in LAUNCHERS:
        rest = rest[1:]
    else:
        rest = rest if rest and CAM_COMMAND.match(rest[0]) else []
    while rest and rest[0].startswith("-"):  # the launcher's options
        rest.pop(0)
    if not rest or not (match := CAM_COMMAND.match(rest[0])):
        return None
    overrides, multirun, args = [], False, rest[1:]
    while args:
        arg = args.pop(0)
        if arg in ("-m", "--multirun"):
            multirun = True
        elif arg in FLAGS_WITH_VALUE:
            args = args[1:]
        elif arg in FLAGS or arg.startswith("-"):
            continue
        else:
            overrides.append(arg)
    return CamCommand(match.group(1), overrides, multirun)


def override_sets(command: CamCommand) -> list[list[str]]:
    """The configs a command composes: one, or for a sweep (-m) each value of each swept key
    once (the other swept keys at their first value)."""
    if not command.multirun:
        return [command.overrides]
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(command.overrides)
    choices = []
    for text, override in zip(command.overrides, parsed, strict=True):
        if override.is_sweep_override():
            key = override.get_key_element()
            choices.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            choices.append([text])
    first = [values[0] for values in choices]
    sets = [first]
    for i, values in enumerate(choices):
        sets += [[*first[:i], value, *first[i + 1 :]] for value in values[1:]]
    return sets


def check_composes(source: str) -> list[str]:
    """Compose and schema-check every cam-* command of `source`; returns what was checked
    (`cam-train model=x ...`). Raises AssertionError for a block with another command or none,
    and the composition's or schema's error for a bad key or value."""
    checked = []
    for words in simple_commands(source):
        command = cam_command(words)
        if command is None:
            raise AssertionError(
                f"compose block: {shlex.join(words)!r} is not a cam-* command "
                "(split the block, or mark it `<!-- docs: skip (reason) -->`)"
            )
        if command.app not in APPS:
            raise AssertionError(f"compose block: {command.command} is not a cam-repro command")
        try:
            sets = override_sets(command)
        except Exception as err:  # Hydra's parser: its message's first line says what
            first = str(err).strip().splitlines()[0]
            raise AssertionError(
                f"{command.command} {shlex.join(command.overrides)}: {first}"
            ) from None
        for overrides in sets:
            try:
                cfg = compose(command.app, overrides)
                to_schema(schema_of(command.app), cfg)
            except Exception as err:
                raise AssertionError(
                    f"{command.command} {shlex.join(overrides)}: {type(err).__name__}: {err}"
                ) from None
            checked.append(shlex.join([command.command, *overrides]))
    if not checked:
        raise AssertionError("compose block without a cam-* command: mark it skip (reason)")
    return checked
