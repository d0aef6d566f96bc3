"""Any classifier as a network of ours: a torchvision classification model by name
(`model=torchvision model.name=resnet18`), a module of one's own built by Hydra's instantiate
(`model=module model._target_=my_package.MyNet`), or a torch.export program
(`model=file model.file=net.pt2`).

Each is wrapped so that its parameters are named `net.<its own names>` whatever it is: as a CAM
network (`LayerCAMNet`: its feature map and final linear layer, found on its graph or named by
`model.features_layer` / `model.classifier_layer`), or, when its head is not global pooling and
one linear layer (VGG, MobileNet v3), as a `Classifier` that Grad-CAM and Backprop localize and
whose CAM is refused with the finder's reason.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import zipfile
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import Tensor, nn

from cam_repro.localize.layer_net import LayerCAMNet
from cam_repro.localize.layers import NO_SCORES, CAMUnavailableError, NoScoresError
from cam_repro.models.config import ModelConfig
from cam_repro.runtime.errors import ConfigError, InputFileError, MissingFileError, first_line

# torchvision models whose auxiliary classifiers run in training: built without them (their
# weights files' aux tensors are skipped), so that forward gives the scores alone.
_AUX = ("googlenet", "inception_v3")


class Classifier(nn.Module):
    """A classifier with no class activation map: the network as it is (`net`), and why CAM is
    refused (`cam_refusal`, the layer finder's error)."""

    def __init__(self, net: nn.Module, cam_refusal: CAMUnavailableError) -> None:
        super().__init__()
        self.net = net
        self.cam_refusal = cam_refusal

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def torchvision_names() -> list[str]:
    """torchvision's classification models (not detection, segmentation or video)."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def build_any(cfg: ModelConfig, num_classes: int) -> nn.Module:
    """The classifier `cfg` names, wrapped (LayerCAMNet, or Classifier)."""
    if cfg.arch == "torchvision":
        net = _torchvision(cfg, num_classes)
    elif cfg.arch == "module":
        net = _module(cfg, num_classes)
    else:
        net = _file(cfg)
    try:
        return wrap(net, cfg, num_classes)
    except NoScoresError as err:  # found on its graph: refused now, not at the first batch
        where = f"model._target_={cfg._target_}" if cfg.arch == "module" else f"model={cfg.arch}"
        raise ConfigError(f"{where}: {err}") from None


def wrap(net: nn.Module, cfg: ModelConfig, num_classes: int) -> nn.Module:
    """`net` as a CAM network through its two layers (named in `cfg`, or found), or as a
    Classifier when it has no CAM and no layers were named."""
    named = cfg.features_layer is not None
    try:
        model: nn.Module = LayerCAMNet(net, cfg.features_layer, cfg.classifier_layer, cfg.pool)
    except CAMUnavailableError as err:
        if named:
            raise ConfigError(f"model.features_layer / model.classifier_layer: {err}") from None
        return Classifier(net, err)
    out = model.classifier.weight.shape[0]
    if out != num_classes:
        raise ConfigError(
            f"model: {type(net).__name__}'s {model.layers.classifier} gives {out} classes, the "
            f"data has {num_classes} (build it with num_classes={num_classes}, e.g. in "
            "model.kwargs)"
        )
    return model


def _torchvision(cfg: ModelConfig, num_classes: int) -> nn.Module:
    names = torchvision_names()
    if cfg.name not in names:
        close = difflib.get_close_matches(str(cfg.name), names, n=4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"model.name={cfg.name!r} is not a torchvision classification model{hint} "
            "(torchvision.models.list_models(module=torchvision.models) lists them)"
        )
    extra: dict[str, Any] = {}
    if cfg.name in _AUX:  # torchvision's weights expect its input transform; null: on with them
        on = cfg.transform_input
        if on is None:
            on = cfg.pretrained or cfg.weights_path is not None
        extra = {"aux_logits": False, "init_weights": True, "transform_input": bool(on)}
    if (
        cfg.dropout is not None
        and "dropout"
        in inspect.signature(torchvision.models.get_model_builder(cfg.name)).parameters
    ):
        extra["dropout"] = cfg.dropout
    return torchvision.models.get_model(cfg.name, weights=None, num_classes=num_classes, **extra)


def _module(cfg: ModelConfig, num_classes: int) -> nn.Module:
    from hydra.utils import instantiate  # Hydra: what users name classes with

    target = str(cfg._target_)
    builder = _locate(target)
    kwargs = dict(cfg.kwargs)
    if "num_classes" not in kwargs and _takes(builder, "num_classes"):
        kwargs["num_classes"] = num_classes
    try:
        net = instantiate({"_target_": target, **kwargs}, _convert_="all")
    except Exception as err:  # whatever the user's constructor raises
        cause = err.__cause__ or err
        raise ConfigError(
            f"model._target_={target}: building it failed ({type(cause).__name__}: "
            f"{first_line(cause)})"
        ) from None
    if not isinstance(net, nn.Module):
        raise ConfigError(f"model._target_={target} gave a {type(net).__name__}, not an nn.Module")
    return net


# A user's package is imported from sys.path: the installed packages and PYTHONPATH. The
# console scripts (cam-train, ...) do not put the working folder on it, as `python -m` would.
IMPORTABLE = (
    "the package must be importable: installed (pip install -e DIR), or its folder on "
    "PYTHONPATH, e.g. PYTHONPATH=. cam-train ... in the folder that holds it"
)


def _locate(target: str) -> Any:
    """The object a dotted path names (the longest importable module, then attributes); a
    ConfigError if there is none."""
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name is not None and not module_name.startswith(err.name):
                raise ConfigError(  # the user's module imports a package that is not here
                    f"model._target_={target}: importing it failed ({err}: install it, or put "
                    "its folder on PYTHONPATH)"
                ) from None
            continue
        except Exception as err:  # the user's module fails on import
            cause = f"{type(err).__name__}: {first_line(err)}"
            raise ConfigError(f"model._target_={target}: importing it failed ({cause})") from None
        for depth, attr in enumerate(parts[cut:]):
            if not hasattr(obj, attr):
                owner = ".".join(parts[: cut + depth])
                close = difflib.get_close_matches(attr, [n for n in dir(obj) if n[:1] != "_"])
                hint = f" (did you mean {owner}.{close[0]}?)" if close else ""
                raise ConfigError(
                    f"model._target_={target}: cannot import it: {owner} has no {attr}{hint}"
                )
            obj = getattr(obj, attr)
        return obj
    raise ConfigError(
        f"model._target_={target}: cannot import it: no module named {parts[0]!r}; {IMPORTABLE}"
    )


def _takes(builder: Any, name: str) -> bool:
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _file(cfg: ModelConfig) -> nn.Module:
    path = Path(str(cfg.file)).expanduser()
    if not path.is_file():
        raise MissingFileError(f"model.file: {path} does not exist")
    if _is_torchscript(path):
        raise InputFileError(
            f"{path}: a TorchScript file; TorchScript runs as a whole and hides its inner maps "
            "from hooks, so no feature map can be read from it: save the network with "
            "torch.export.save(torch.export.export(model, (images,), dynamic_shapes=...), FILE) "
            "(a dynamic batch dimension) and pass that file"
        )
    try:
        program = torch.export.load(path)
    except Exception as err:  # a foreign or damaged archive
        raise InputFileError(
            f"{path}: not a torch.export program (torch.export.save) ({first_line(err)})"
        ) from None
    _check_dynamic_batch(program, path)
    out = program.call_spec.out_spec
    if out is not None and not out.is_leaf():  # a tuple, list or dict of outputs
        what = getattr(out.type, "__name__", "container")
        raise InputFileError(
            f"{path}: the exported forward returns a {what} of {out.num_leaves} outputs, not one "
            f"(B, C) tensor of class scores; {NO_SCORES}"
        )
    return torch.export.unflatten(program)


def _check_dynamic_batch(program: torch.export.ExportedProgram, path: Path) -> None:
    """Batches of every size (the last one is smaller) need a dynamic batch dimension."""
    users = set(program.graph_signature.user_inputs)
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in users:
            value = node.meta.get("val")
            batch = value.shape[0] if isinstance(value, Tensor) and value.dim() else None
            if isinstance(batch, int):
                raise InputFileError(
                    f"{path}: exported for batches of exactly {batch} images; export it with a "
                    "dynamic batch dimension (torch.export.export(model, (images,), "
                    'dynamic_shapes=({0: torch.export.Dim("batch")},)))'
                )


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives hold the network's code (code/__torch__/); torch.export's do not."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("code/__torch__/" in n for n in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
