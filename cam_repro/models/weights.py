"""Loading torchvision's ImageNet weights, or a local state dict, into our models: strictly.

Our modules keep torchvision's names under `backbone.` (and `classifier.` for the originals), so a
torchvision state dict maps by prefix. Every file goes through one loader (`load_strictly`):
every tensor of the network that the file's network has (parameters and buffers) is loaded, or
the command stops naming how many and which are missing, and a tensor in the file that belongs to
no layer of that network is refused too (a file of another architecture would otherwise leave a
half-random network that still gives numbers). Layers the file's network lacks by design (the
added conv and linear layer of a CAM model) keep their fresh init, and so, the one exception, does
a final classifier with another number of classes (logged at WARNING). What was loaded is kept on
the network as `model.weights_load` (`WeightsLoad`), for the run's metrics.json.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchvision import models as tvm

from cam_repro.models.config import (
    ANY_ARCHS,
    WEIGHTS_ORIGIN,
    ModelConfig,
    config_differences,
    model_config,
    variant_name,
)
from cam_repro.runtime.distributed import unwrap
from cam_repro.runtime.errors import (
    CamReproError,
    ConfigError,
    InputFileError,
    MissingFileError,
    WeightsUnavailableError,
    first_line,
)
from cam_repro.runtime.files import file_sha256
from cam_repro.runtime.numeric import first_non_finite

log = logging.getLogger(__name__)


# The torchvision network whose layers each of the zoo's architectures reuses (by name).
_TORCHVISION_ARCH = {
    "alexnet": "alexnet",
    "alexnet_star": "alexnet",
    "googlenet": "googlenet",
    "resnet50": "resnet50",
}
# torchvision's auxiliary classifiers: in its GoogLeNet and Inception v3 files, never built here.
_AUX = ("aux1.", "aux2.", "AuxLogits.")


def torchvision_arch(cfg: ModelConfig) -> str | None:
    """The torchvision model whose weights `cfg`'s network reuses, or None (tiny, NIN, a module
    of one's own, a torch.export file: only state dicts of the network itself fit them)."""
    if cfg.arch == "torchvision":
        return str(cfg.name)
    if cfg.arch == "vgg16":
        return "vgg16_bn" if cfg.batch_norm else "vgg16"
    return _TORCHVISION_ARCH.get(cfg.arch)


def torchvision_weights_enum(cfg: ModelConfig) -> type[tvm.WeightsEnum]:
    """The torchvision weights enum whose layers our variant reuses."""
    name = torchvision_arch(cfg)
    if name is None:
        raise ConfigError(f"{variant_name(cfg)} has no torchvision weights (model.pretrained)")
    return tvm.get_model_weights(name)


def torchvision_keymap(cfg: ModelConfig) -> list[tuple[str, str | None]]:
    """(torchvision prefix, our prefix or None to skip), first match wins."""
    if cfg.arch in ANY_ARCHS:  # wrapped as `net` (models.anynet)
        return [("", "net.")]
    if cfg.arch in ("alexnet", "alexnet_star", "vgg16"):
        # A CAM model has no `classifier.<i>.` keys, so the FC layers find nothing to load into.
        return [("features.", "backbone."), ("classifier.", "classifier.")]
    fc = None if cfg.modified else "classifier."  # the CAM models' linear layer is new
    return [("fc.", fc), ("aux1.", None), ("aux2.", None), ("", "backbone.")]


def _map_key(key: str, keymap: list[tuple[str, str | None]]) -> str | None:
    for src, dst in keymap:
        if key.startswith(src):
            return None if dst is None else dst + key[len(src) :]
    return None


def check_hub_file(cache: Path, what: str, url: str) -> None:
    """torch.hub checks a file's SHA-256 against the digest prefix in its name only when it
    downloads it (`load_state_dict_from_url(check_hash=True)`); a file already in its cache, such
    as one put there by hand as the offline advice below says, is loaded unchecked. Checked here,
    so that another file under that name is never taken for torchvision's weights."""
    found = torch.hub.HASH_REGEX.search(cache.name)
    if not (found and found.group(1) and cache.is_file()):
        return
    prefix, digest = found.group(1), file_sha256(cache)
    if not digest.startswith(prefix):
        raise InputFileError(
            f"{cache}: its SHA-256 begins {digest[: len(prefix)]}, not {prefix} as its name says, "
            f"so it is not {what} (a partial download, or another file under its name); delete "
            f"it and fetch {url} again, or pass your file as model.weights_path=FILE"
        )


def download_torchvision_state_dict(cfg: ModelConfig) -> dict[str, Tensor]:
    """torchvision's ImageNet state dict for `cfg` (from torch.hub's cache, or downloaded)."""
    enum = torchvision_weights_enum(cfg)
    try:
        weights = enum[cfg.weights]
    except KeyError:
        choices = ", ".join(enum.__members__)
        msg = f"model.weights={cfg.weights!r} is not one of {enum.__name__}: {choices}"
        raise ConfigError(msg) from None
    cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    check_hub_file(cache, f"torchvision's {enum.__name__}.{cfg.weights}", weights.url)
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except OSError as err:  # URLError, timeouts, refused connections, read-only cache
        reason = getattr(err, "reason", None) or err
        raise WeightsUnavailableError(
            f"cannot download torchvision's {enum.__name__}.{cfg.weights} ({reason}); this "
            f"machine looks offline: fetch {weights.url} elsewhere and pass "
            f"model.weights_path=FILE, or put the file at {cache}"
        ) from None


@dataclass(frozen=True)
class WeightsLoad:
    """What a weights file gave a network, kept on it as `model.weights_load` so that a run can
    say in its metrics.json which weights it started from (`record()`).

    `new`: tensors of layers that the file's network does not have (the CAM head the paper adds
    to a pretrained trunk): freshly initialised by design. `skipped`: the final classifier's
    tensors when the file's has another number of classes (ImageNet weights into a 10-class
    model), the one case where a tensor the file has is not loaded."""

    source: str  # the file, or torchvision's enum member
    sha256: str | None  # of the file (None: torchvision's download, named by `source`)
    loaded: frozenset[str]
    new: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        """metrics.json's `weights_load`."""
        return {
            "source": self.source,
            "sha256": self.sha256,
            "tensors_loaded": len(self.loaded),
            "new_layers": sorted({k.rsplit(".", 1)[0] for k in self.new}),
            "classifier_not_loaded": list(self.skipped),
        }


def weights_record(model: nn.Module) -> dict[str, Any] | None:
    """metrics.json's `weights_load` of a network built by `build_model` or read from a
    checkpoint (None: it was built without weights)."""
    load = getattr(unwrap(model), "weights_load", None)
    return load.record() if isinstance(load, WeightsLoad) else None


def load_torchvision_state_dict(
    model: nn.Module,
    state: Mapping[str, Tensor],
    cfg: ModelConfig,
    source: str,
    sha256: str | None = None,
) -> WeightsLoad:
    """Load a state dict in torchvision's layout (its names, or a bare network's own names for
    model=module|file): every tensor of our network that the file's network has must be in it,
    and every tensor in it must belong to that network (`load_strictly`). What the file's
    network has no layer for (the CAM head) stays freshly initialised, and is logged."""
    own = model.state_dict()
    reference = _reference_names(model, cfg)
    keymap = torchvision_keymap(cfg)
    ours_of = {k: o for k in reference if (o := _map_key(k, keymap)) in own}  # file -> ours
    shown = {o: k for k, o in ours_of.items()}
    foreign = [k for k in state if k not in reference and not k.startswith(_AUX)]
    tensors = {ours_of[k]: v for k, v in state.items() if k in ours_of}
    result = load_strictly(
        model, tensors, source, variant_name(cfg), expected=set(ours_of.values()),
        foreign=foreign, shown=shown, classifier_may_differ=True, sha256=sha256,
    )  # fmt: skip
    if cfg.arch == "googlenet" and cfg.transform_input is not False:
        model.backbone.transform_input.fill_(True)  # torchvision's GoogLeNet weights expect it
    return result


def _reference_names(model: nn.Module, cfg: ModelConfig) -> set[str]:
    """The tensor names of the network a torchvision-layout file must be of: torchvision's model
    (built on the meta device: names and shapes, no memory), or, for a network of one's own or
    a torchvision model by name, the network itself without our `net.` prefix."""
    if cfg.arch in ANY_ARCHS:
        return {k[len("net.") :] for k in model.state_dict() if k.startswith("net.")}
    name = torchvision_arch(cfg)
    if name is None:
        return set()
    extra = {"aux_logits": True, "init_weights": False} if name == "googlenet" else {}
    with torch.device("meta"):
        return set(tvm.get_model(name, weights=None, **extra).state_dict())


def _optional(name: str) -> bool:
    """BatchNorm's step counter: older torchvision files lack it and torch's own strict loading
    fills it in (it only matters for momentum=None, which no network here uses)."""
    return name.endswith("num_batches_tracked")


def _examples(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def load_strictly(
    model: nn.Module,
    state: Mapping[str, Tensor],
    source: str | Path,
    name: str,
    *,
    expected: set[str] | None = None,
    foreign: list[str] | None = None,
    shown: Mapping[str, str] | None = None,
    classifier_may_differ: bool = False,
    sha256: str | None = None,
    hint: str | None = None,
) -> WeightsLoad:
    """Load `state` (our names) into `model`, all or nothing: the one loader of every weights
    file (checkpoints, model.weights_path, torchvision's). Every tensor in `expected` (default:
    every parameter and buffer of the model) must be in `state` with its shape, and nothing may
    be in `state` that the model lacks (`foreign`: the file's names that map to no tensor of
    ours); else one InputFileError naming how many and which. The one exception, when
    `classifier_may_differ`: the final linear layer with another number of classes stays freshly
    initialised, logged at WARNING. `shown`: our name -> the file's, for messages; `sha256`:
    the file's, for the record; `hint`: what to do instead (default: load the right file)."""
    own = model.state_dict()
    expected = set(own) if expected is None else expected
    show = (lambda k: shown.get(k, k)) if shown else (lambda k: k)
    missing = [show(k) for k in own if k in expected and k not in state and not _optional(k)]
    foreign = [*(foreign or []), *(show(k) for k in state if k not in own)]
    last = _last_linear(model) if classifier_may_differ else None
    wrong = [k for k in state if k in own and state[k].shape != own[k].shape]
    # the exception: the final linear layer, whose shapes differ in the number of classes only
    skipped = [
        k for k in wrong if k.rsplit(".", 1)[0] == last and state[k].shape[1:] == own[k].shape[1:]
    ]
    wrong = [k for k in wrong if k not in skipped]
    problems = []
    if missing:
        count = sum(1 for k in own if k in expected and not _optional(k))
        problems.append(
            f"{len(missing)} of {count} tensors of {name} are not in the file "
            f"(e.g. {_examples(missing)})"
        )
    if foreign:
        problems.append(f"{len(foreign)} tensors in the file are not in {name} "
                        f"(e.g. {_examples(foreign)})")  # fmt: skip
    if wrong:
        k = wrong[0]
        problems.append(
            f"{show(k)} has shape {tuple(state[k].shape)} but {name} expects "
            f"{tuple(own[k].shape)}" + (f" (and {len(wrong) - 1} more differ)" if wrong[1:] else "")
        )
    if problems:
        hint = hint or (
            f"it holds another network's weights: load a file saved from {name} (its options, "
            "e.g. width_mult or model.kwargs, change its tensors)"
        )
        raise InputFileError(f"{source}: {'; '.join(problems)}; {hint}")
    loaded = {k: v for k, v in state.items() if k not in skipped}
    model.load_state_dict(loaded, strict=False)  # checked above, to the tensor
    new = tuple(k for k in own if k not in expected and not _optional(k))
    new_layers = ", ".join(sorted({k.rsplit(".", 1)[0] for k in new}))
    if skipped:
        log.warning(
            "%s: the final classifier's %s stay freshly initialised: the file has %d classes, "
            "%s has %d (fine-tune it)",
            source, ", ".join(show(k) for k in skipped), state[skipped[0]].shape[0], name,
            own[skipped[0]].shape[0],
        )  # fmt: skip
    log.info("%s: loaded %d tensors from %s%s", name, len(loaded), source,
             f"; new layers, freshly initialised: {new_layers}" if new else "")  # fmt: skip
    return WeightsLoad(str(source), sha256, frozenset(loaded), new, tuple(skipped))


def _last_linear(model: nn.Module) -> str | None:
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return names[-1] if names else None


def torch_load_safely(path: str | Path, missing: str, unreadable: str) -> object:
    """`torch.load(path, weights_only=True)` on the CPU; a missing or unloadable file raises one
    line from the templates `missing` ({path}) and `unreadable` ({path}, {detail})."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingFileError(missing.format(path=path))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated or foreign files
        detail = first_line(err)
        raise InputFileError(unreadable.format(path=path, detail=detail)) from None


def read_state_dict(path: str | Path) -> tuple[dict[str, Tensor], Mapping[str, Any] | None]:
    """A state dict from a file: bare, or in a checkpoint under 'model' or 'state_dict'; and the
    model config the file carries (a cam-repro checkpoint's `config.model`), or None.

    A tensor holding NaN or infinity is an InputFileError naming the file and the tensor."""
    path = Path(path).expanduser()
    obj = torch_load_safely(
        path,
        missing="model.weights_path: {path} does not exist",
        unreadable="{path}: not a PyTorch weights file that loads safely ({detail})",
    )
    carried = None
    if isinstance(obj, Mapping):
        config = obj.get("config")
        if isinstance(config, Mapping) and isinstance(config.get("model"), Mapping):
            carried = config["model"]
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if (
        not isinstance(obj, Mapping)
        or not obj
        or not all(isinstance(v, Tensor) for v in obj.values())
    ):
        raise InputFileError(f"{path}: expected a state dict (parameter name -> tensor)")
    check_weights_finite(obj, path)
    # Checkpoints of DistributedDataParallel or torch.compile'd models carry these prefixes.
    return {_strip_prefixes(k): v for k, v in obj.items()}, carried


def check_weights_finite(state: Mapping[str, Tensor], path: str | Path) -> None:
    """Refuse weights holding NaN or infinity, naming the file and the first bad tensor."""
    bad = first_non_finite(state)
    if bad is not None:
        raise InputFileError(
            f"{path}: tensor {bad}; these weights are unusable (did the training diverge?)"
        )


def _carried_name(carried: Mapping[str, Any]) -> str:
    try:
        return variant_name(model_config(carried))
    except CamReproError:
        return str(carried.get("arch", "different"))


def _strip_prefixes(key: str) -> str:
    for prefix in ("module.", "_orig_mod."):
        while key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def load_weights_file(model: nn.Module, path: str | Path, cfg: ModelConfig) -> WeightsLoad:
    """Load a local state dict strictly (`load_strictly`): our own (keys under `backbone.`, or
    `net.` for any classifier; tiny and NIN have no other), torchvision's or the bare network's
    by name (`load_torchvision_state_dict`)."""
    state, carried = read_state_dict(path)
    if carried is not None:
        differ = config_differences(cfg, carried, ignore=(*WEIGHTS_ORIGIN, "dropout"))
        if differ:
            raise InputFileError(
                f"{path}: holds a {_carried_name(carried)} network, not {variant_name(cfg)} "
                f"({'; '.join(differ)}); load it with the model config it was trained with"
            )
    ours = "net." if cfg.arch in ANY_ARCHS else "backbone."
    sha256 = file_sha256(Path(path).expanduser())
    has_other_layout = torchvision_arch(cfg) is not None or cfg.arch in ANY_ARCHS
    if has_other_layout and not any(k.startswith(ours) for k in state):
        return load_torchvision_state_dict(model, state, cfg, str(path), sha256)
    return load_strictly(model, state, str(path), variant_name(cfg), sha256=sha256,
                         classifier_may_differ=True)  # fmt: skip
