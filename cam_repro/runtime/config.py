"""Configs as typed dataclasses: one merge that turns a bad key or value into a one-line error,
one choice check, and the runtime keys (device, precision, threads) every app spells alike."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cam_repro.runtime.errors import ConfigError

T = TypeVar("T")

DEVICES = ("auto", "cpu", "cuda")
AMP = ("none", "bf16", "fp16")
BACKENDS = ("auto", "nccl", "gloo")


def to_schema(schema: type[T], cfg: T | Mapping[str, Any] | DictConfig, group: str = "") -> T:
    """`cfg` (a dict, DictConfig or `schema` instance) merged into the dataclass `schema`.

    An unknown key, a wrong type or a missing mandatory value raises ConfigError naming the key,
    as `group.key` when the config is a group (`model`, `data`).
    """
    label = group or schema.__name__.removesuffix("Config").lower()
    if isinstance(cfg, schema):
        cfg = OmegaConf.structured(cfg)
    else:
        check_keys(schema, cfg, f"the {label} config", f"{group}." if group else "")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), cfg)
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        where = f"{group + '.' if group else ''}{key}: " if key else ""
        raise ConfigError(f"invalid {label} config: {where}{str(err).splitlines()[0]}") from None


def check_keys(schema: type, cfg: Any, owner: str, prefix: str = "") -> None:
    """Refuse a key of `cfg` that the dataclass `schema` does not have, at any depth, with the
    close matches: `trainer.epoch is not a key of cam-train's config (did you mean
    trainer.epochs?)`. `owner` names the config in the message, `prefix` the keys' group.

    Hydra lets `+key=value` add a key that its struct mode refuses otherwise, and OmegaConf's
    merge into the schema then drops it without a word; fields typed dict or Any hold free keys.
    """
    found = unknown_key(schema, cfg, prefix)
    if found is not None:
        key, close = found
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise ConfigError(f"{key} is not a key of {owner}{hint}")


def unknown_key(schema: type, cfg: Any, prefix: str = "") -> tuple[str, list[str]] | None:
    """The first key of `cfg` (a mapping; as `prefix` + its dotted path) that the dataclass
    `schema` has no field for, and its sibling fields that are close to it; None if every key is
    a field. Nested dataclass fields are checked too, dict and Any fields not."""
    cfg = _plain(cfg)
    if not isinstance(cfg, Mapping):
        return None
    names = [f.name for f in dataclasses.fields(schema)]
    hints = typing.get_type_hints(schema)
    for key, value in cfg.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=2)
            return f"{prefix}{key}", [f"{prefix}{c}" for c in close]
        nested = field_dataclass(hints.get(key))
        if nested is not None:
            found = unknown_key(nested, value, f"{prefix}{key}.")
            if found is not None:
                return found
    return None


def _plain(cfg: Any) -> Any:
    """`cfg` as plain dicts and lists, interpolations and ??? left as written (not resolved)."""
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=False)
    if dataclasses.is_dataclass(cfg):
        return {}  # an instance has its class's fields only
    return cfg


def field_dataclass(hint: Any) -> type | None:
    """The dataclass a field's type names (`X`, `X | None`), else None (dict, Any, list, ...)."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return hint
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        found = [a for a in typing.get_args(hint) if field_dataclass(a) is not None]
        return found[0] if len(found) == 1 else None
    return None


def check_choice(value: str, key: str, choices: tuple[str, ...]) -> None:
    """A ConfigError naming `key` unless `value` is one of `choices`."""
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {value!r}")


@dataclass
class RuntimeConfig:
    """Where and how a network runs: the `runtime` keys of cam-train, cam-eval, cam-visualize
    and cam-reproduce."""

    device: str = "auto"  # auto (cuda when available) | cpu | cuda; torchrun: cuda:LOCAL_RANK
    dist_backend: str = "auto"  # auto (nccl on GPUs, gloo on CPU) | nccl | gloo
    # none | bf16 | fp16: autocast of the forward pass (fp16 training needs CUDA and uses a
    # gradient scaler; CAMs and boxes are computed in fp32 whatever this is)
    amp: str = "none"
    channels_last: bool = True  # NHWC memory format (faster convs on CPUs and with AMP on GPUs)
    threads: int | None = None  # CPU threads per process; null: PyTorch's choice
    progress: bool = True  # tqdm bars (false: log lines only, for CI and workers)


def runtime_config(cfg: RuntimeConfig | Mapping[str, Any] | DictConfig) -> RuntimeConfig:
    """Validate the `runtime` keys: one-line errors for bad values."""
    spec = to_schema(RuntimeConfig, cfg, "runtime")
    check_choice(spec.device, "runtime.device", DEVICES)
    check_choice(spec.amp, "runtime.amp", AMP)
    check_choice(spec.dist_backend, "runtime.dist_backend", BACKENDS)
    if spec.threads is not None and spec.threads < 1:
        raise ConfigError(f"runtime.threads must be >= 1, got {spec.threads}")
    return spec
