"""Mixed precision: the autocast context of a forward pass, from the `runtime.amp` key."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch


def amp_dtype(amp: str) -> torch.dtype | None:
    """none | bf16 | fp16 -> the autocast dtype (None: full precision)."""
    return {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def autocast(device: torch.device, amp: str) -> AbstractContextManager:
    """Mixed precision for the forward pass, or nothing."""
    dtype = amp_dtype(amp)
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)
