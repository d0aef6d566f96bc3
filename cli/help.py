"""Every command's `--help` (and `-h`), answered before Hydra runs and without torch: what the
command does (its cli module's docstring), its config groups and their choices (the files of
configs/<group>/), every key of its composed config with the value it has now (the overrides given
before `--help` applied, through `apps.compose`) and its meaning, a few examples and where to read
on.

A key's meaning is its schema field's comment, read from the schema's source (the trailing
`# ...` on the field's lines, else the comment lines just above it), or, for a nested dataclass
without one, its docstring; so the help says what the code says. Choices are in those comments
(`a | b | c`). Hydra's own flags (`--hydra-help`, `--cfg`, `--info`, `-m`) go to Hydra untouched.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import io
import os
import re
import shutil
import sys
import textwrap
import tokenize
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from cam_repro.apps import APPS, CONFIG_DIR, compose, schema_of
from cam_repro.runtime.config import field_dataclass
from cam_repro.runtime.errors import CamReproError

HELP_FLAGS = ("--help", "-h")
# Hydra's flags that take a value (hydra/_internal/utils.py, get_args_parser): that value is no
# override. --info takes one only from its choices.
VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
               "--config-dir", "-cd", "--experimental-rerun"}  # fmt: skip
INFO_FLAGS = {"--info", "-i"}
INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
# Comments for tools, not readers: never part of a key's meaning.
PRAGMA = re.compile(r"(type:\s*ignore(\[[^\]]*\])?|noqa(:\s*[\w, ]+)?|fmt:\s*(skip|on|off))")
WIDTH = 100  # the widest page; a narrower terminal gets a narrower one
KEY_COLUMN = 30  # KEY=VALUE, then the meaning from here on


@dataclasses.dataclass(frozen=True)
class Page:
    """What a command's help says beyond its config: its description, examples and docs page."""

    app: str  # its key in apps.APPS
    about: str  # what it does: the cli module's docstring
    examples: Sequence[str]  # whole command lines, each with an optional `# comment`
    docs: str  # the documentation page that tells the whole story


def command_help(page: Page) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a `@hydra.main` function: `--help` / `-h` print `page` and return (exit 0) before
    Hydra runs, without importing the command's job (torch); any other command line goes to Hydra
    as before (`--hydra-help` too)."""

    def wrap(hydra_main: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(hydra_main)
        def main(*args: Any, **kwargs: Any) -> Any:
            argv = sys.argv[1:]
            if any(a in HELP_FLAGS for a in argv) and "--hydra-help" not in argv:
                print_help(page, overrides_of(argv))
                return None
            return hydra_main(*args, **kwargs)

        return main

    return wrap


def overrides_of(argv: Sequence[str]) -> list[str]:
    """The overrides of a command line: what is not one of Hydra's flags or a flag's value."""
    found, rest = [], list(argv)
    while rest:
        arg = rest.pop(0)
        if arg in VALUE_FLAGS:
            rest = rest[1:]
        elif arg in INFO_FLAGS:
            rest = rest[1:] if rest and rest[0] in INFO_CHOICES else rest
        elif not arg.startswith("-"):
            found.append(arg)
    return found


def print_help(page: Page, overrides: Sequence[str]) -> None:
    """The help page on stdout; an override that does not compose is one line on stderr, exit 1."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        text = render(page, overrides, width=max(60, min(WIDTH, terminal_width())))
    except (HydraException, OmegaConfBaseException, CamReproError) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        sys.exit(1)
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `cam-train --help | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (Python flushes stdout at exit)


def terminal_width() -> int:
    return shutil.get_terminal_size((WIDTH, 24)).columns


def one_line(err: BaseException) -> str:
    """Hydra's several-line composition errors as one line: the first line, the cause's first
    line, and a missing group choice's options."""
    lines = str(err).splitlines()
    text = lines[0].rstrip(".") if lines else type(err).__name__
    if err.__cause__ is not None and str(err.__cause__) not in ("", "None"):
        text += f": {str(err.__cause__).splitlines()[0]}"
    options = [s.strip() for s in lines if s.startswith("\t") and "provider=" not in s]
    if options:
        text += f"; choose one of {', '.join(options)}"
    return text


def render(page: Page, overrides: Sequence[str], width: int = WIDTH) -> str:
    """The whole help page of `page.app`, its config composed with `overrides` (a sweep's
    overrides, `key=a,b`, are left out: each job would compose with one of its values)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    parsed = [_parse(parser, o) for o in overrides]
    given = [o.input_line for o in parsed if not o.is_sweep_override()]
    swept = [o.input_line for o in parsed if o.is_sweep_override()]
    cfg = compose(page.app, given)
    schema = schema_of(page.app)
    command = f"cam-{page.app}"
    out = [textwrap.dedent(page.about).strip().replace("`", ""), ""]
    out.append(f"usage: {command} [KEY=VALUE ...] [GROUP=CHOICE ...] [-m] [--help | --cfg job]")
    app_cfg = OmegaConf.load(Path(CONFIG_DIR, f"{APPS[page.app][0]}.yaml"))
    groups = config_groups(app_cfg, schema)
    if groups:
        out += ["", "config groups (GROUP=CHOICE: a file of configs/GROUP/ sets its keys):"]
        for group, choices, about in groups:
            now = chosen(group, given, app_cfg)
            key = f"{'+' if group == 'experiment' else ''}{group}={now}"
            out += entry(key, f"{' | '.join(choices)}{about}", width)
    note = "" if not swept else f" (without the sweep{'s' * (len(swept) > 1)} {' '.join(swept)})"
    out += ["", f"keys (KEY=VALUE: the value now{note}; ??? must be given):"]
    values = OmegaConf.to_container(cfg, resolve=False)
    out += key_lines(values, schema, "", width)
    out += ["", "examples:"]
    for example in page.examples:
        out += example_lines(example, width)
    out += [
        "",
        "more:",
        *entry(f"{command} --cfg job", "the composed config (with the overrides given)", width),
        *entry(
            f"{command} --hydra-help", "Hydra's own flags (-m, --info, --cfg hydra, ...)", width
        ),
        *entry(page.docs, f"{command} in depth", width),
    ]
    return "\n".join(out)


def _parse(parser: Any, override: str) -> Any:
    """One override parsed; a syntax error names it."""
    from hydra.errors import HydraException, OverrideParseException

    try:
        return parser.parse_override(override)
    except HydraException as err:
        message = f"{override}: {str(err).splitlines()[0]}"
        raise OverrideParseException(override=override, message=message) from None


def config_groups(app_cfg: Any, schema: type) -> list[tuple[str, list[str], str]]:
    """(group, its choices, a note) for each config group the command takes: those of its
    defaults list, `+experiment` where a preset fits its schema, and `hydra/launcher` for the
    commands whose sweeps (-m) are reported."""
    from cam_repro_cli.sweep import reports_sweeps

    groups: list[tuple[str, list[str], str]] = []
    for item in app_cfg.get("defaults", []):
        if isinstance(item, str) or len(item) != 1:
            continue
        (group,) = item.keys()
        if not group.startswith("override ") and Path(CONFIG_DIR, group).is_dir():
            groups.append((group, choices_of(group), ""))
    fields = {f.name for f in dataclasses.fields(schema)}
    presets = [e for e in choices_of("experiment") if fits(e, fields, {g for g, _, _ in groups})]
    if presets:
        groups.append(("experiment", presets, ": a study's settings (most sweep, with -m)"))
    if reports_sweeps(app_cfg.get("hydra", {}).get("callbacks") or {}):
        launchers = ["basic", *choices_of("hydra/launcher")]
        groups.append(
            ("hydra/launcher", launchers, ": where -m runs the jobs (basic: here, in turn)")
        )
    return groups


def choices_of(group: str) -> list[str]:
    return sorted(p.stem for p in Path(CONFIG_DIR, group).glob("*.yaml"))


def fits(experiment: str, fields: set[str], groups: set[str]) -> bool:
    """Whether an experiment preset sets only this command's keys and groups (its keys, the
    groups it overrides, the keys its sweep varies)."""
    preset = OmegaConf.load(Path(CONFIG_DIR, "experiment", f"{experiment}.yaml"))
    keys = {str(k) for k in preset if k not in ("defaults", "hydra")}
    for item in preset.get("defaults", []):
        if not isinstance(item, str):
            keys |= {str(k).removeprefix("override ").strip("/") for k in item}
    params = OmegaConf.select(preset, "hydra.sweeper.params") or {}
    keys |= {str(k).split(".")[0] for k in params}
    return keys <= fields | groups


def chosen(group: str, overrides: Sequence[str], app_cfg: Any) -> str:
    """The group's choice: the last override of it, else its config's default ("" if none)."""
    for override in reversed(overrides):
        key, _, value = override.partition("=")
        if key.lstrip("+~") == group:
            return value
    if group == "hydra/launcher":
        return "basic"
    for item in app_cfg.get("defaults", []):
        if not isinstance(item, str) and group in item:
            return "" if item[group] is None else str(item[group])
    return ""


def key_lines(values: Any, schema: type, prefix: str, width: int) -> list[str]:
    """One entry per key of `values` (a plain dict of the composed config), recursively; a
    nested config gets a heading (its meaning) and its keys below it."""
    meanings = field_meanings(schema)
    types_ = field_types(schema)
    lines: list[str] = []
    nested: list[tuple[str, Any, type]] = []
    for key, value in values.items():
        inner = field_dataclass(types_.get(key))
        if inner is not None and isinstance(value, dict):
            nested.append((key, value, inner))
            continue
        meaning = meanings.get(key, f"not a key of this command's {schema.__name__}: refused")
        lines += entry(f"{prefix}{key}={show(value)}", meaning, width)
    for key, value, inner in nested:
        lines += ["", *wrap(f"{prefix}{key}: {meanings.get(key, '')}", width, "  ", "    ")]
        lines += key_lines(value, inner, f"{prefix}{key}.", width)
    return lines


def entry(key: str, meaning: str, width: int) -> list[str]:
    """`  key      meaning`, the meaning wrapped in its column (on the next line if the key is
    wider than its column)."""
    column = " " * (KEY_COLUMN + 4)
    if not meaning:
        return [f"  {key}"]
    if len(key) > KEY_COLUMN:
        return [f"  {key}", *wrap(meaning, width, column, column)]
    return wrap(meaning, width, f"  {key.ljust(KEY_COLUMN)}  ", column)


def wrap(text: str, width: int, first: str, rest: str) -> list[str]:
    return textwrap.wrap(
        text, width, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False,
        break_long_words=False,
    )  # fmt: skip


def example_lines(example: str, width: int) -> list[str]:
    """An example, broken with shell continuations where it is too wide, its comment after it
    (or on its own line if there is no room)."""
    command, _, comment = example.partition("  # ")
    lines, line = [], "  "
    for piece in command.split():  # as written: the examples are quoted for a shell already
        if len(line) + len(piece) + 3 > width and line.strip():
            lines.append(f"{line} \\")
            line = "      "
        line = f"{line}{' ' if line.strip() else ''}{piece}"
    lines.append(line)
    if comment:
        if len(lines[-1]) + len(comment) + 4 <= width:
            lines[-1] = f"{lines[-1]}  # {comment}"
        else:
            lines.insert(0, f"  # {comment}")
    return lines


def show(value: Any) -> str:
    """A value as one writes it in an override: null, true, [a,b], {k:v}."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return f"[{','.join(show(v) for v in value)}]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{show(v)}" for k, v in value.items()) + "}"
    return str(value)


def field_types(schema: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(schema)
    except (NameError, TypeError):  # a name only imported for type checkers: the raw annotations
        return {f.name: f.type for f in dataclasses.fields(schema)}


def field_meanings(schema: type) -> dict[str, str]:
    """Each field's meaning: its comment, else (a nested dataclass) the class's docstring."""
    types_ = field_types(schema)
    comments = field_comments(schema)
    meanings = {}
    for f in dataclasses.fields(schema):
        meaning = comments.get(f.name, "")
        inner = field_dataclass(types_.get(f.name))
        if not meaning and inner is not None:
            meaning = docstring(comments_source(inner))
        meanings[f.name] = meaning
    return meanings


def docstring(cls: type) -> str:
    """A class's own docstring's first paragraph, on one line ("" for the signature that
    @dataclass writes into a class without one)."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    if doc.startswith(f"{cls.__name__}("):
        return ""
    return " ".join(doc.split("\n\n")[0].split())


def field_comments(schema: type) -> dict[str, str]:
    """The comment of every field of `schema` and its dataclass bases (a subclass's wins)."""
    found: dict[str, str] = {}
    for cls in reversed(schema.__mro__):
        if dataclasses.is_dataclass(cls):
            found.update(class_comments(comments_source(cls)))
    return found


def comments_source(cls: type) -> type:
    """The class whose source holds `cls`'s comments: cam-eval's and cam-visualize's data
    overrides are made from DataConfig's fields (evaluate/config.py, make_dataclass)."""
    if cls.__name__ == "DataOverrides" and cls.__module__ == "cam_repro.evaluate.config":
        from cam_repro.data.config import DataConfig

        return DataConfig
    return cls


@functools.cache
def class_comments(cls: type) -> dict[str, str]:
    """{field: comment} from a class's source: the comments on the field's own lines (its
    trailing `# ...`), else the comment lines just above it; pragmas (noqa, type: ignore)
    dropped. A class without source has none."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments = dict(_comments(source))
    code_lines = source.splitlines()
    tree = ast.parse(source)
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    found = {}
    for node in body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        end = node.end_lineno or node.lineno
        trailing = [comments[n] for n in range(node.lineno, end + 1) if n in comments]
        above = []
        line = node.lineno - 1
        while line >= 1 and code_lines[line - 1].strip().startswith("#") and line in comments:
            above.insert(0, comments[line])
            line -= 1
        text = " ".join(c for c in (trailing if any(trailing) else above) if c)
        found[node.target.id] = text
    return found


def _comments(source: str) -> Iterator[tuple[int, str]]:
    """(line number, comment text without `#` and pragmas) of every comment in `source`."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            text = PRAGMA.sub("", token.string.lstrip("#")).strip()
            yield token.start[0], text


def reachable_schemas(schema: type) -> Iterator[type]:
    """`schema` and every dataclass its fields hold, recursively (each once)."""
    seen: set[type] = set()
    todo = [schema]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        yield cls
        for tp in field_types(cls).values():
            inner = field_dataclass(tp)
            if inner is not None:
                todo.append(inner)
