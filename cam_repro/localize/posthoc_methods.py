"""torch-cam's post-hoc CAM methods as localizers: their names, titles, options and cost, without
torch (configs, `--help` and cam-report read this). The maps themselves: `localize.posthoc`.

Every method is torch-cam's own (torchcam.methods, version 0.5), called on a batch with one class
per image; `PosthocSpec` is what a run asks of it (the layer, the options that change the maps,
the seed of the noise the smoothed methods draw).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cam_repro.runtime.errors import ConfigError


@dataclass(frozen=True)
class PosthocMethod:
    """One torch-cam method: `name` its class in torchcam.methods."""

    name: str
    title: str  # as the method's paper names it, e.g. "Score-CAM"
    citation: str
    gradient: bool  # differentiates the class score (a backward pass per map)
    # the keys of PosthocSpec it takes, with torch-cam's defaults
    defaults: dict[str, float | int] = field(default_factory=dict)
    masks: bool = False  # scores one masked input per channel of the layer (Score-CAM's family)
    noise: bool = False  # draws random noise (seeded per batch and column: PosthocSpec.seed)

    def passes_per_map(self, channels: int, num_samples: int | None = None) -> tuple[int, int]:
        """(forward, backward) passes of the network one map of one image costs beyond the
        evaluation's own forward pass, for a layer of `channels` maps (torch-cam's algorithms:
        Score-CAM scores each channel's masked image and the unmasked one; SS-CAM and IS-CAM do
        so `num_samples` times; Smooth Grad-CAM++ differentiates `num_samples` noisy copies)."""
        n = int(num_samples if num_samples is not None else self.defaults.get("num_samples", 1))
        if self.masks:
            return (n if "num_samples" in self.defaults else 1) * channels + 1, 0
        if self.name == "SmoothGradCAMpp":
            return n, n
        return 0, int(self.gradient)


_GRAD = "Selvaraju et al., Grad-CAM, ICCV 2017"
POSTHOC_METHODS: dict[str, PosthocMethod] = {
    m.name: m
    for m in (
        PosthocMethod("CAM", "CAM (torch-cam)", "Zhou et al., CVPR 2016", gradient=False),
        PosthocMethod("GradCAM", "Grad-CAM (torch-cam)", _GRAD, gradient=True),
        PosthocMethod(
            "GradCAMpp",
            "Grad-CAM++ (torch-cam 0.5)",
            "Chattopadhay et al., WACV 2018; as torch-cam 0.5 computes it, its alpha left "
            "undivided (a masked in-place division acts on a copy), so the channel weights are "
            "sum(grad^2 relu(grad)), not the paper's",
            gradient=True,
        ),
        PosthocMethod(
            "SmoothGradCAMpp",
            "Smooth Grad-CAM++",
            "Omeiza et al., arXiv:1908.01224; torch-cam's variant, its alpha's numerator changed "
            "by torch-cam's author (its docstring says so), the map from the last noisy copy's "
            "activations",
            gradient=True,
            defaults={"num_samples": 4, "std": 0.3},
            noise=True,
        ),
        PosthocMethod(
            "ScoreCAM",
            "Score-CAM",
            "Wang et al., CVPR-W 2020",
            gradient=False,
            defaults={"batch_size": 32},
            masks=True,
        ),
        PosthocMethod(
            "SSCAM",
            "SS-CAM",
            "Wang et al., arXiv:2006.14255",
            gradient=False,
            defaults={"batch_size": 32, "num_samples": 35, "std": 2.0},
            masks=True,
            noise=True,
        ),
        PosthocMethod(
            "ISCAM",
            "IS-CAM",
            "Naidu et al., arXiv:2010.03023",
            gradient=False,
            defaults={"batch_size": 32, "num_samples": 10},
            masks=True,
        ),
        PosthocMethod("XGradCAM", "XGrad-CAM", "Fu et al., BMVC 2020", gradient=True),
        PosthocMethod("LayerCAM", "Layer-CAM", "Jiang et al., IEEE TIP 2021", gradient=True),
        PosthocMethod(
            "FinerCAM",
            "Finer-CAM",
            "Zhang et al., arXiv:2501.11309",
            gradient=True,
            defaults={"gamma": 0.6, "num_references": 3},
        ),
    )
}
# torch-cam's methods that cam-eval cannot run, and why (one line each)
NOT_LOCALIZERS = {
    "LeGrad": "explains vision transformers' attention blocks; cam-eval's networks are CNNs",
    "RefineCAM": "fuses the maps of two or more layers; a localizer here has one layer",
}
OPTIONS = ("batch_size", "num_samples", "std", "gamma", "num_references")


# The titles a localizer puts before the network's name in a run's paper_name ("Grad-CAM on
# Tiny-GAP"; a torch-cam method's: its title); CAM's rows carry the network's name alone.
LOCALIZER_TITLES = {"gradcam": "Grad-CAM", "backprop": "Backprop"}


def localizer_title(localizer: str, method: str | None = None) -> str | None:
    """The title a localizer's runs are named by (`method`: localizer=torchcam's), None for CAM."""
    if localizer == "torchcam" and method is not None:
        return posthoc_method(method).title
    return LOCALIZER_TITLES.get(localizer)


def posthoc_method(name: str, key: str = "torchcam.method") -> PosthocMethod:
    """The method of `name` (torch-cam's class name, any case: scorecam, ScoreCAM); else a
    one-line ConfigError naming `key` and the choices."""
    found = {m.lower(): m for m in POSTHOC_METHODS}.get(str(name).lower())
    if found is not None:
        return POSTHOC_METHODS[found]
    names = ", ".join(POSTHOC_METHODS)
    why = {m.lower(): (m, r) for m, r in NOT_LOCALIZERS.items()}.get(str(name).lower())
    if why is not None:
        raise ConfigError(f"{key}: torch-cam's {why[0]} {why[1]}; choose one of {names}")
    raise ConfigError(f"{key}: unknown torch-cam method {name!r}; choose one of {names}")


@dataclass(frozen=True)
class PosthocSpec:
    """What a run asks of a torch-cam method: the layer (a module name; None: the default) and the
    options (None: torch-cam's default). `seed`: the noise of SS-CAM and Smooth Grad-CAM++."""

    method: str
    layer: str | None = None
    batch_size: int | None = None  # masked inputs per forward pass (Score-CAM's family): speed
    num_samples: int | None = None
    std: float | None = None
    gamma: float | None = None  # Finer-CAM: the weight of the reference classes' mean score
    num_references: int | None = None  # Finer-CAM: the reference classes (closest scores)
    seed: int = 0

    @property
    def info(self) -> PosthocMethod:
        return posthoc_method(self.method)

    def options(self) -> dict[str, float | int]:
        """The options given (torch-cam's keyword arguments), checked: each applies to this
        method and is in range; one-line ConfigErrors naming torchcam.<key>."""
        info = self.info
        given = {k: getattr(self, k) for k in OPTIONS if getattr(self, k) is not None}
        for key, value in given.items():
            if key not in info.defaults:
                takers = [m.name for m in POSTHOC_METHODS.values() if key in m.defaults]
                raise ConfigError(
                    f"torchcam.{key}: applies to {', '.join(takers)}, not to {info.name}"
                )
            positive = key != "gamma"  # Finer-CAM's weight may be 0 (then it is Grad-CAM)
            if not math.isfinite(value) or (value <= 0 if positive else value < 0):
                raise ConfigError(
                    f"torchcam.{key} must be a finite number {'> 0' if positive else '>= 0'}, "
                    f"got {value}"
                )
        return given

    def protocol(self) -> dict[str, object]:
        """What the maps depend on (metrics.json's protocol.torchcam; threshold_from compares
        it): the method, the layer, every option but batch_size at its value (defaults filled
        in) and, for a method that draws noise, the seed."""
        info = self.info
        given = self.options()
        record: dict[str, object] = {"method": info.name, "layer": self.layer}
        for key, default in info.defaults.items():
            if key != "batch_size":
                record[key] = given.get(key, default)
        if info.noise:
            record["seed"] = self.seed
        return record
