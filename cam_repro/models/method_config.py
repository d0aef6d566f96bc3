"""The WSOL method a network is trained with (`cam-train method=<name>`, `configs/method/`): one
typed schema, torch-free; the mechanisms are in `models/methods.py` (the network's parts) and
`train/methods.py` (the inputs and the loss).

The key names and defaults are wsolevaluation's (Choe et al., "Evaluating Weakly Supervised
Object Localization Methods Right", CVPR 2020, its `config.py`), except HaS's grid (see
`has_grid_size`). docs/methods.md describes each method and what differs from its paper.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from omegaconf import DictConfig

from cam_repro.models.config import ANY_ARCHS, ModelConfig, model_config
from cam_repro.runtime.config import check_choice, to_schema
from cam_repro.runtime.errors import ConfigError

METHODS = ("cam", "has", "acol", "spg", "adl", "cutmix")
# The methods' names in tables ("VGGnet-GAP (ACoL)"); CAM's rows keep the network's own name.
METHOD_TITLES = {
    "cam": "CAM",
    "has": "HaS",
    "acol": "ACoL",
    "spg": "SPG",
    "adl": "ADL",
    "cutmix": "CutMix",
}
# The architectures with default ADL positions and SPG taps (models/methods.py's
# `default_adl_positions`, `default_spg_taps`); another CAM network takes ADL with
# method.adl_positions, SPG not at all.
DEFAULT_POSITION_ARCHS = ("tiny", "vgg16", "resnet50", "googlenet")
# The methods that only change the inputs and labels: they apply to every network.
INPUT_METHODS = ("cam", "has", "cutmix")
# The key prefix of each method's own hyperparameters.
_PREFIX = {"has": "has_", "acol": "acol_", "spg": "spg_", "adl": "adl_", "cutmix": "cutmix_"}


@dataclass
class MethodConfig:
    """How training localizes: plain CAM, or one of the later WSOL methods beside it."""

    name: str = "cam"  # cam | has | acol | spg | adl | cutmix
    citation: str = ""  # the method's paper (configs/method/<name>.yaml); shown, not used
    # HaS (Singh & Lee, ICCV 2017), in training only: the image is split into has_grid_size x
    # has_grid_size cells (wsolevaluation's has_grid_size is a cell's side in pixels instead)
    has_grid_size: int = 4
    has_drop_rate: float = 0.5  # HaS: each cell hidden (set to the data mean) with this probability
    # ACoL (Zhang et al., CVPR 2018): the second branch sees the shared features with the first
    # branch's map of the true class >= this (of its min-max range) erased
    acol_threshold: float = 0.7
    # SPG (Zhang et al., ECCV 2018): (foreground, background) thresholds of its three
    # self-produced masks: the CAM for branch B2, B2's map for B1, the fused B1 + B2 map for C
    spg_thresholds: list[list[float]] = field(
        default_factory=lambda: [[0.7, 0.01], [0.5, 0.05], [0.7, 0.1]]
    )
    # ADL (Choe & Shim, CVPR 2019), in training only: the probability of multiplying the
    # features by the drop mask rather than by the sigmoid importance map; identity at test time
    adl_drop_rate: float = 0.75
    adl_threshold: float = 0.9  # ADL: the drop mask is 0 where attention >= this x its max
    # ADL: the modules after which an ADL layer goes, by the network's module names (e.g.
    # backbone.16, backbone.layer3.0); empty: the backbone's defaults (docs/methods.md)
    adl_positions: list[str] = field(default_factory=list)
    # CutMix (Yun et al., ICCV 2019): a box of another image's pixels pasted in, its area from
    # Beta(cutmix_beta, cutmix_beta); the labels mixed by area
    cutmix_beta: float = 1.0
    cutmix_prob: float = 1.0  # CutMix: the probability that a batch is mixed


def _in_unit(value: float, key: str, closed_low: bool = True) -> None:
    if not (0 <= value <= 1 if closed_low else 0 < value <= 1):
        raise ConfigError(f"method.{key} must be in [0, 1], got {value}")


def method_config(cfg: MethodConfig | Mapping[str, Any] | DictConfig | None) -> MethodConfig:
    """Validate a method config (None: plain CAM); a key of another method changed from its
    default is refused, so a run's config never carries a setting that did nothing."""
    if cfg is None:
        return MethodConfig()
    spec = to_schema(MethodConfig, cfg, "method")
    check_choice(spec.name, "method.name", METHODS)
    default = MethodConfig()
    own = _PREFIX.get(spec.name)
    for f in fields(MethodConfig):
        prefix = next((p for p in _PREFIX.values() if f.name.startswith(p)), None)
        if prefix is None or prefix == own:
            continue
        if getattr(spec, f.name) != getattr(default, f.name):
            owner = next(m for m, p in _PREFIX.items() if p == prefix)
            raise ConfigError(f"method.{f.name} applies to method={owner}, not method={spec.name}")
    if spec.has_grid_size < 1:
        raise ConfigError(f"method.has_grid_size must be >= 1, got {spec.has_grid_size}")
    for key in ("has_drop_rate", "acol_threshold", "adl_drop_rate", "adl_threshold",
                "cutmix_prob"):  # fmt: skip
        _in_unit(getattr(spec, key), key)
    if not spec.cutmix_beta > 0:
        raise ConfigError(f"method.cutmix_beta must be > 0, got {spec.cutmix_beta}")
    pairs = spec.spg_thresholds
    if len(pairs) != 3 or any(len(p) != 2 or not 0 <= p[1] < p[0] <= 1 for p in pairs):
        raise ConfigError(
            "method.spg_thresholds must be three [foreground, background] pairs with "
            f"0 <= background < foreground <= 1, got {pairs}"
        )
    return spec


def method_title(paper: str, method: str) -> str:
    """A run's name in tables: the network's, with the method beside it unless it is CAM
    ("VGGnet-GAP (ACoL)")."""
    return paper if method == "cam" else f"{paper} ({METHOD_TITLES[method]})"


def method_problem(
    model_cfg: ModelConfig | Mapping[str, Any] | DictConfig,
    method_cfg: MethodConfig | Mapping[str, Any] | DictConfig | None,
) -> str | None:
    """The one-line reason `method_cfg`'s method does not apply to `model_cfg`'s network; None
    when it does. CAM, HaS and CutMix apply to every network (inputs and labels only); ACoL, SPG
    and ADL need a zoo network with a CAM head, and SPG (and ADL without method.adl_positions)
    an arch with default positions. ADL also takes any classifier (model=torchvision|module)
    with method.adl_positions."""
    spec = model_config(model_cfg)
    m = method_config(method_cfg)
    if m.name in INPUT_METHODS:
        return None
    what = f"method={m.name}"
    if spec.arch in ANY_ARCHS:
        if m.name == "adl" and spec.arch != "file":
            if m.adl_positions:
                return None
            return (f"{what} on model={spec.arch} needs method.adl_positions (the names of the "
                    "modules after which ADL goes): its layers are not the zoo's, so there are no "
                    "default positions")  # fmt: skip
        if spec.arch == "file":
            why = "a torch.export program runs as one graph, so no layer can be added to it"
        else:
            why = f"its layers are not the zoo's, so {what}'s parts have nowhere to go"
        return f"{what} needs a zoo network with a CAM head, not model={spec.arch}: {why}"
    if not spec.modified and spec.arch in ("alexnet", "vgg16"):
        return (f"{what} needs a CAM head, and the original {spec.arch} ends in fully connected "
                f"layers; use its -GAP variant (model={spec.arch}_gap)")  # fmt: skip
    known = ", ".join(DEFAULT_POSITION_ARCHS)
    if m.name == "spg" and spec.arch not in DEFAULT_POSITION_ARCHS:
        return f"{what} has no default taps for arch {spec.arch} (it has for {known})"
    if m.name == "adl" and spec.arch not in DEFAULT_POSITION_ARCHS and not m.adl_positions:
        return (f"{what} has no default positions for arch {spec.arch} (it has for {known}); "
                "give method.adl_positions")  # fmt: skip
    return None
