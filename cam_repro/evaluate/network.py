"""Loads a network to run: a checkpoint or a model config, ready on the device (one loader).

cam-eval (evaluate.loop.Evaluator), its VQA evaluation (evaluate.vqa), cam-features
(features.run) and cam-visualize (cam_repro.visualize, features.views) all get their network
here, so that a checkpoint means the same model, data config, classes and weights digest
everywhere. It takes values (a checkpoint path or a model config, the user's data.* keys, the
device), never a command's whole config.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cam_repro.data import DataConfig
from cam_repro.data.transforms import eval_transform
from cam_repro.evaluate.config import resolve_data
from cam_repro.models import build_model, model_config, paper_name, variant_name
from cam_repro.models.checkpoint import load_checkpoint, model_from_state
from cam_repro.models.config import ModelConfig
from cam_repro.models.method_config import method_title
from cam_repro.models.weights import torchvision_weights_enum, weights_record
from cam_repro.runtime.errors import ConfigError
from cam_repro.runtime.files import file_sha256


@dataclass
class Network:
    """A network in eval mode on its device, and what its commands need to know about it."""

    model: nn.Module
    config: ModelConfig
    data: DataConfig  # the checkpoint's data config with the user's data.* keys
    num_classes: int  # outputs of its own last layer
    weights: str  # checkpoint | file | pretrained | random
    checkpoint: str | None = None
    state: dict[str, Any] | None = None  # the checkpoint, loaded
    seed: int | None = None  # the checkpoint's training seed; a random init's seed
    channels_last: bool = False  # its memory format, which its inputs take too (model_input)
    # the WSOL method it was trained with (models/method_config.py): a checkpoint's; a zoo
    # model's, built as it is: cam
    method: str = "cam"

    @property
    def classes(self) -> list[str] | None:
        """The checkpoint's classes (VQA: the answers); None for a zoo model."""
        return None if self.state is None else list(self.state["classes"])

    @property
    def class_names(self) -> list[str] | None:
        if self.state is None:
            return None
        return list(self.state.get("class_names") or self.state["classes"])

    @property
    def question_vocab(self) -> list[str] | None:
        """A VQA model's question words (cam-train task=vqa); None for a classifier."""
        return None if self.state is None else self.state.get("question_vocab")

    @property
    def paper(self) -> str:
        """Its name in tables: the paper's name of the network, with the method unless CAM
        (e.g. Tiny-GAP, Tiny-GAP (HaS)), so a method's runs are never grouped with CAM's."""
        return method_title(paper_name(self.config), self.method)

    @property
    def variant(self) -> str:
        return variant_name(self.config)  # e.g. tiny_gap

    @property
    def transform(self):
        """How an image becomes the network's uint8 input (data.transforms.eval_transform)."""
        return eval_transform(self.data)

    @property
    def weights_load(self) -> dict[str, Any] | None:
        """Which file gave the network its tensors (models.weights.weights_record)."""
        return weights_record(self.model)

    @functools.cached_property
    def weights_sha256(self) -> str | None:
        """The SHA-256 of its checkpoint or weights file (None: torchvision's or random): for a
        weights file, the digest its loader took of the bytes it read (weights_load)."""
        if self.checkpoint is not None:
            return file_sha256(Path(self.checkpoint).expanduser())
        if self.weights == "file":
            return self.model.weights_load.sha256
        return None


def load_network(
    checkpoint: str | None,
    model: ModelConfig | Any | None,
    data: Any,
    device: torch.device,
    channels_last: bool,
    *,
    state: dict[str, Any] | None = None,
    num_classes: int | None = None,
    seed: int | None = None,
) -> Network:
    """The network of `checkpoint` (its `state` if already loaded), else the zoo `model` with
    `num_classes` outputs (`seed`: torch's seed before a random init, the same every run); on
    `device` in eval mode. `data`: the user's data.* keys (evaluate.config.DataOverrides)."""
    if checkpoint is not None:
        state = state or load_checkpoint(checkpoint)
        net = model_from_state(state, checkpoint)
        trained = state["config"]
        found = Network(
            net, model_config(trained["model"]), resolve_data(data, trained.get("data")),
            len(state["classes"]), "checkpoint", checkpoint, state, trained.get("seed"),
        )  # fmt: skip
        found.method = trained_method(trained)
    else:
        cfg = model_config(model)
        weights = "file" if cfg.weights_path else "pretrained" if cfg.pretrained else "random"
        assert num_classes is not None, "a zoo model needs its number of classes"
        if seed is not None:
            torch.manual_seed(seed)
        net = build_model(cfg, num_classes)  # a missing or foreign weights file: its error
        found = Network(
            net, cfg, resolve_data(data, None), num_classes, weights,
            seed=seed if weights == "random" else None,
        )  # fmt: skip
    found.model.to(device).eval()
    found.channels_last = channels_last
    if channels_last:
        found.model.to(memory_format=torch.channels_last)
    return found


def trained_method(config: Mapping[str, Any]) -> str:
    """The WSOL method of a checkpoint's training config (its method.name); cam for checkpoints
    written before methods, which have no `method`."""
    method = config.get("method") or {}
    return str(method.get("name") or "cam")


# torchvision's classification weights are all ImageNet-1k's: a network loaded with weights and no
# other word on its classes has these outputs.
IMAGENET_CLASSES = 1000


def zoo_classes(cfg: ModelConfig, given: int | None, data_classes: int | None) -> int:
    """A network's own number of outputs without a checkpoint: `given` (model_classes), else
    ImageNet's 1000 when it is loaded with weights (torchvision's, or a file of them), else the
    data's; a one-line ConfigError when none is known."""
    weighted = cfg.weights_path or cfg.pretrained
    classes = given or (IMAGENET_CLASSES if weighted else data_classes)
    if classes is None:
        raise ConfigError("model_classes: the number of the network's own classes is unknown")
    return classes


def known_class_names(net: Network) -> list[str] | None:
    """The names of the network's outputs, in order, where they are known: a checkpoint's, or
    the categories of the torchvision weights it was loaded with (model=torchvision
    model.pretrained=true); None otherwise (a weights file, a module, a file, a random init: the
    order of their outputs is not recorded anywhere)."""
    if net.state is not None:
        return net.class_names
    cfg = net.config
    if net.weights == "pretrained" and cfg.arch == "torchvision":
        categories = torchvision_weights_enum(cfg)[cfg.weights].meta.get("categories")
        if categories and len(categories) == net.num_classes:
            return list(categories)
    return None
