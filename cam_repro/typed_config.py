"""Configs as typed dataclasses: one merge that turns a bad key or value into a one-line error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cam_repro.errors import ConfigError

T = TypeVar("T")


def to_schema(schema: type[T], cfg: T | Mapping[str, Any] | DictConfig, group: str = "") -> T:
    """`cfg` (a dict, DictConfig or `schema` instance) merged into the dataclass `schema`.

    An unknown key, a wrong type or a missing mandatory value raises ConfigError naming the key,
    as `group.key` when the config is a group (`model`, `data`).
    """
    if isinstance(cfg, schema):
        cfg = OmegaConf.structured(cfg)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), cfg)
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        where = f"{group + '.' if group else ''}{key}: " if key else ""
        label = group or schema.__name__.removesuffix("Config").lower()
        raise ConfigError(f"invalid {label} config: {where}{str(err).splitlines()[0]}") from None
