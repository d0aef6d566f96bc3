"""Configs as typed dataclasses: one merge that turns a bad key or value into a one-line error,
one choice check, and the runtime keys (device, precision, threads) every app spells alike."""

from __future__ import annotations

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
