"""Typed JSON: dataclass records to JSON values and back, each value checked against its field's
type, for runtime/metrics_file.py's records (generic: it knows no metrics.json key).

- A field's JSON key is its name, or its metadata "key" (`from`, a Python keyword: `from_`).
- An `optional()` field is a key some records leave out: absent from the JSON when None, None when
  absent. Every other field's key is required, and a key no field has is refused.
- Types: int, float (an integer too, read back as the integer: a file read and written again is
  the same file), str, bool, lists, str-keyed dicts, nested dataclasses, and `X | None`.
- Errors are InputFileErrors naming the dotted key ("data.root", "epochs[0].lr") and the value.
"""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, field, fields, is_dataclass
from functools import cache
from typing import Any, NoReturn

from cam_repro.runtime.errors import InputFileError


def optional() -> Any:
    """A field whose key some records leave out: absent from the JSON when None."""
    return field(default=None, metadata={"omit_none": True})


def plain(value: Any) -> Any:
    """A record (or part) as JSON values, in field order; `optional` fields left out if None."""
    if is_dataclass(value):
        return {
            f.metadata.get("key", f.name): plain(getattr(value, f.name))
            for f in fields(value)
            if not (f.metadata.get("omit_none") and getattr(value, f.name) is None)
        }
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(tp: Any) -> str:
    """A type as the errors name it."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args if a is not type(None)) + " or null"
    origin = typing.get_origin(tp) or tp
    if is_dataclass(origin) or origin is dict:
        return "a mapping"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             list: "a list"}  # fmt: skip
    return names.get(origin, str(tp))


def _wrong(where: str, value: Any, tp: Any) -> NoReturn:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise InputFileError(f"{where} {shown} is not {_describe(tp)}")


def _fits(tp: Any, value: Any) -> bool:
    """Whether a JSON value has the outer shape of type `tp` (not a union)."""
    origin = typing.get_origin(tp) or tp
    if is_dataclass(origin) or origin is dict:
        return isinstance(value, dict)
    if origin is float:  # an integer is a number too (bool is not)
        return isinstance(value, int | float) and not isinstance(value, bool)
    return type(value) is origin


def _value(tp: Any, value: Any, where: str, unknown: str) -> Any:
    """`value` (JSON, at dotted `where`) as type `tp`; an InputFileError (`where` first) if not."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        if not _fits(inner, value):
            _wrong(where, value, tp)
        return _value(inner, value, where, unknown)
    if not _fits(tp, value):
        _wrong(where, value, tp)
    if is_dataclass(tp):
        return from_json(tp, value, where, unknown)
    if origin is list:
        return [_value(args[0], v, f"{where}[{i}]", unknown) for i, v in enumerate(value)]
    if origin is dict:
        return {k: _value(args[1], v, f"{where}.{k}", unknown) for k, v in value.items()}
    return value


def from_json(
    cls: type, data: dict[str, Any], where: str = "", unknown: str = "no such key"
) -> Any:
    """A dataclass `cls` from its JSON mapping `data` (at dotted `where`): every field's key
    present (but `optional`'s), no other key ("<key>: <unknown>"), each value of its field's
    type."""
    hints, prefix = _hints(cls), f"{where}." if where else ""
    known = {f.metadata.get("key", f.name): f for f in fields(cls)}
    extra = [k for k in data if k not in known]
    if extra:
        raise InputFileError(f"{prefix}{extra[0]}: {unknown}")
    missing = [k for k, f in known.items() if k not in data and f.default is MISSING]
    if missing:
        raise InputFileError(f"lacks {', '.join(prefix + k for k in missing)}")
    return cls(**{
        f.name: _value(hints[f.name], data[k], prefix + k, unknown) if k in data else None
        for k, f in known.items()
    })  # fmt: skip


def value_at(record: Any, key: str) -> Any:
    """The value under a dotted JSON key ("localization.top1_loc_acc", "thresholds.paper_rule.from")
    of a record or of its JSON mapping; None where the path ends early."""
    value = record
    for part in key.split("."):
        if is_dataclass(value):
            names = {f.metadata.get("key", f.name): f.name for f in fields(value)}
            value = getattr(value, names[part]) if part in names else None
        else:
            value = value.get(part) if isinstance(value, dict) else None
    return value
