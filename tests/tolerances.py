"""Float tolerances that follow from the arithmetic, so the suite passes on any x86 CPU.

float32 results computed two ways (another batch size, another kernel, another order of
summation) differ by rounding errors of the size of the terms that were added, not of each result:
where terms cancel, a value near 0 carries an error of the terms' size. A fixed absolute tolerance
(1e-8, 1e-6) on unscaled values therefore passes on one CPU and fails on another. These helpers
scale the absolute part with the values compared."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

EPS32 = torch.finfo(torch.float32).eps


def assert_sums_close(actual: Tensor, expected: Tensor, scale: Tensor, terms: int) -> None:
    """`actual` and `expected` are two float32 evaluations of the same sums of `terms` products,
    whose absolute values add up to `scale` (elementwise). Each sum's rounding error is at most
    terms * eps * scale in any order of summation (Higham, Accuracy and Stability of Numerical
    Algorithms, 2002, eq. 4.4), and ReLU does not enlarge it."""
    bound = 2 * terms * EPS32 * scale
    excess = (actual - expected).abs() - bound
    assert (excess <= 0).all(), f"off by {excess.max().item():.3g} beyond the bound"


def assert_close_at_scale(actual, expected, rtol: float = 1e-4) -> None:
    """Agreement to `rtol` of the largest |expected| (tensors or arrays): for values carried
    through many layers or an optimiser, whose errors are of the activations' size."""
    if isinstance(expected, Tensor):
        atol = rtol * max(expected.abs().max().item(), torch.finfo(expected.dtype).tiny)
        torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)
    else:
        expected = np.asarray(expected)
        atol = rtol * max(float(np.abs(expected).max()), np.finfo(np.float32).tiny)
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)
