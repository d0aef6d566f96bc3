"""NaN and infinity stop a run: a metric computed from them would look believable and be wrong."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from cam_repro.runtime.errors import NonFiniteError


def first_non_finite(tensors: Mapping[str, Tensor]) -> str | None:
    """'name (n of N values are NaN or infinite)' for the first such tensor, or None."""
    for name, tensor in tensors.items():
        if not (tensor.is_floating_point() or tensor.is_complex()):
            continue
        bad = ~torch.isfinite(tensor.detach())
        if bad.any():
            return f"{name} ({int(bad.sum())} of {tensor.numel()} values are NaN or infinite)"
    return None


def check_finite(tensors: Mapping[str, Tensor], where: str, hint: str = "") -> None:
    """Raise a NonFiniteError '{where}: {first bad tensor}{hint}' if any value is NaN or inf."""
    bad = first_non_finite(tensors)
    if bad is not None:
        raise NonFiniteError(f"{where}: {bad}{hint}")
