"""What a WSOL method changes in one training step (`cam-train method=<name>`): the inputs
(HaS's hidden cells, CutMix's pasted box) and the loss (CutMix's mixed labels, ACoL's and SPG's
auxiliary terms); the networks' own parts (ACoL's second branch, SPG's auxiliary branches, ADL's
layers) are in `models/methods.py`, the config in `models/method_config.py`.

Every random draw comes from torch's global CPU generator (and is moved to the batch's device),
so a seed fixes them on any device and a checkpoint's RNG state (`runtime.rng`) makes a resumed
run draw what the uninterrupted one drew. Nothing here runs at test time: `train.epoch.validate`
calls the network on the plain inputs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cam_repro.localize.layers import class_scores
from cam_repro.models.method_config import MethodConfig, method_config
from cam_repro.runtime.errors import ConfigError
from cam_repro.runtime.precision import autocast

if TYPE_CHECKING:
    from cam_repro.train.epoch import Inputs

# The methods whose networks take the labels in training and return (logits, auxiliary loss)
# (models/methods.py's `method_aux` networks).
AUX_METHODS = ("acol", "spg")


def cell_of(size: int, grid: int) -> Tensor:
    """The grid cell (0 .. grid-1) of each of `size` rows (or columns): row r is in cell
    floor(r * grid / size), so cell i spans rows ceil(i * size / grid) .. ceil((i + 1) * size /
    grid) - 1. The cells cover the whole side, each floor(size / grid) or ceil(size / grid) rows
    (with grid > size some are empty)."""
    return torch.arange(size) * grid // size


def hide_cells(x: Tensor, grid: int, drop_rate: float) -> tuple[Tensor, Tensor]:
    """Hide-and-Seek (Singh & Lee, ICCV 2017): split each image of the normalised batch `x`
    (B, C, H, W) into grid x grid cells (`cell_of`: sides of floor or ceil H / grid) and hide each
    cell of each image, independently with probability `drop_rate`, by setting it to 0, the data
    mean after normalisation. Returns the new batch (x is left alone; its memory format kept) and
    `hidden` (B, grid, grid) bool, the cells hidden."""
    b, _, h, w = x.shape
    hidden = (torch.rand(b, grid, grid) < drop_rate).to(x.device)
    rows, cols = cell_of(h, grid).to(x.device), cell_of(w, grid).to(x.device)
    pixels = hidden[:, rows[:, None], cols[None, :]]  # (B, H, W): each pixel's cell
    out = x.clone(memory_format=torch.preserve_format)
    return out.masked_fill_(pixels[:, None], 0.0), hidden


def cutmix_box(h: int, w: int, lam: float) -> tuple[int, int, int, int]:
    """CutMix's box (Yun et al., ICCV 2019; their `rand_bbox`) in an h x w image: sides
    int(h sqrt(1 - lam)) and int(w sqrt(1 - lam)), so an area of about (1 - lam) h w, centred at
    a uniform random pixel, reaching half a side (rounded down) each way and clipped to the
    image. Returns (top, left, bottom, right), bottom and right exclusive."""
    ratio = math.sqrt(1.0 - lam)
    half_h, half_w = int(h * ratio) // 2, int(w * ratio) // 2
    cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
    top, bottom = max(cy - half_h, 0), min(cy + half_h, h)
    left, right = max(cx - half_w, 0), min(cx + half_w, w)
    return top, left, bottom, right


def cutmix(x: Tensor, labels: Tensor, beta: float, prob: float) -> tuple[Tensor, Tensor, float]:
    """CutMix on the normalised batch `x` (B, C, H, W): with probability `prob` (one draw per
    batch), lam ~ Beta(beta, beta), a random permutation of the batch, and each image gets the
    permuted image's pixels in one `cutmix_box`. Returns the new batch (x is left alone), the
    pasted images' labels and the weight of each image's own label, 1 - the box's area / (H W)
    (the area actually pasted, after clipping). Without a mix: (x, labels, 1.0)."""
    if not float(torch.rand(())) < prob:
        return x, labels, 1.0
    lam = float(torch.distributions.Beta(float(beta), float(beta)).sample())
    perm = torch.randperm(len(x)).to(x.device)
    h, w = x.shape[-2:]
    top, left, bottom, right = cutmix_box(h, w, lam)
    mixed = x.clone(memory_format=torch.preserve_format)
    mixed[:, :, top:bottom, left:right] = x[perm, :, top:bottom, left:right]
    weight_a = 1.0 - (bottom - top) * (right - left) / (h * w)
    return mixed, labels[perm], weight_a


class MethodLoss:
    """One training step's forward pass and loss under a method, built once from its config:

    - cam, adl: cross-entropy (ADL acts inside the network);
    - has: `hide_cells`, then cross-entropy;
    - cutmix: `cutmix`, then weight_a CE(labels) + (1 - weight_a) CE(pasted labels);
    - acol, spg: the network is called with the labels and returns (logits, aux loss): CE + aux.

    The batch is normalised first (`inputs`), the method's input change acts on the normalised
    batch, and both run under the forward pass's autocast; the cross-entropy is taken in float32
    outside it.
    """

    def __init__(self, method: MethodConfig | None = None) -> None:
        self.method = method_config(method)

    def __call__(
        self,
        net: nn.Module,
        model: nn.Module,
        inputs: Inputs,
        images: Tensor,
        labels: Tensor,
        extra: tuple = (),
    ) -> tuple[Tensor, Tensor]:
        """(logits, loss) of a uint8 batch: `net` runs it (DDP-wrapped or compiled), `model` is
        the plain module (which output holds the scores, whether it takes the labels)."""
        m = self.method
        aux_net = bool(getattr(model, "method_aux", False))
        if (m.name in AUX_METHODS) != aux_net:
            built = getattr(model, "method", "cam")
            raise ConfigError(
                f"method={m.name} needs the network built for it (build_model(..., "
                f"method=...)); this one was built for method={built}"
            )
        labels_b, weight_a, aux = labels, 1.0, None
        with autocast(images.device, inputs.amp):
            x = inputs(images)
            if m.name == "has":
                x, _ = hide_cells(x, m.has_grid_size, m.has_drop_rate)
            elif m.name == "cutmix":
                x, labels_b, weight_a = cutmix(x, labels, m.cutmix_beta, m.cutmix_prob)
            if aux_net:
                out = net(x, *extra, labels=labels)
                if not (isinstance(out, tuple) and len(out) == 2):
                    raise TypeError(f"a method={m.name} network must return (logits, aux_loss)")
                logits, aux = class_scores(out[0], model), out[1]
            else:
                logits = class_scores(net(x, *extra), model)
        loss = F.cross_entropy(logits.float(), labels)
        if weight_a != 1.0:
            loss = weight_a * loss + (1.0 - weight_a) * F.cross_entropy(logits.float(), labels_b)
        if aux is not None:
            loss = loss + aux.float()
        return logits, loss
