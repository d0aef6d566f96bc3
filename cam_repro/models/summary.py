"""What a built network looks like: parameters, last conv map, whether it has CAMs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cam_repro.localize.layer_net import LayerCAMNet
from cam_repro.models.config import ANY_ARCHS, ARCHS, ModelConfig, paper_name, variant_name
from cam_repro.models.heads import CAMNet


@dataclass
class ModelSummary:
    arch: str  # e.g. vgg16
    variant: str  # our name, e.g. vgg16_gap
    paper_name: str  # the paper's, e.g. VGGnet-GAP
    params: int
    map_channels: int | None  # K of the last conv map f_k (CAM models only)
    map_size: tuple[int, int] | None  # (h, w) of the last conv map at the given input
    num_classes: int


def summarize(model: nn.Module, cfg: ModelConfig, input_size: int = 224) -> ModelSummary:
    """Run one zero image of `input_size` through `model` and describe what comes out."""
    device = next(model.parameters()).device
    x = torch.zeros(1, 3, input_size, input_size, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if isinstance(model, CAMNet | LayerCAMNet):
                features = model.features(x)  # (1, K, h, w)
                logits = model.logits_from_features(features)
                channels, size = features.shape[1], (features.shape[2], features.shape[3])
            else:
                logits, channels, size = model(x), None, None
    finally:
        model.train(was_training)
    return ModelSummary(
        arch=cfg.arch,
        variant=variant_name(cfg),
        paper_name=paper_name(cfg),
        params=sum(p.numel() for p in model.parameters()),
        map_channels=channels,
        map_size=size,
        num_classes=logits.shape[1],
    )


def zoo_order(row: ModelSummary) -> tuple[int, str]:
    """Sort key: the paper's architectures in order, each original before its GAP/GMP variants."""
    return (*ARCHS, *ANY_ARCHS).index(row.arch), row.variant


def summary_table(rows: list[ModelSummary], input_size: int) -> str:
    """A markdown table of model summaries."""
    lines = [
        f"| model | paper name | parameters | last conv map at {input_size} px | CAM |",
        "|---|---|---:|---|---|",
    ]
    for r in rows:
        if r.map_size is None:
            shape, cam = "n/a (no GAP + linear head)", "no: Grad-CAM, Backprop"
        else:
            shape, cam = f"{r.map_channels} x {r.map_size[0]}x{r.map_size[1]}", "yes"
        lines.append(f"| {r.variant} | {r.paper_name} | {r.params:,} | {shape} | {cam} |")
    return "\n".join(lines)
