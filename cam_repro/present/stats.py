"""Paired differences over seeds, reported honestly: the mean with a 95% t interval, and how many
seeds agree in sign.

For differences d_1 .. d_n of two models paired by seed (the same seed's data order and
initialisation): the mean m, the sample standard deviation s (n - 1 in the denominator), and
Student's t interval m +- t_{(1 + level) / 2, n - 1} * s / sqrt(n) (scipy.stats.t.ppf). It treats
the seeds' differences as a normal sample; with 3-5 seeds it is wide, which is the point: a
difference whose interval holds 0 is not shown by so few seeds. With one seed there is no
interval (n=1). Pure functions: numbers in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Paired:
    """The paired statistics of a - b over seeds (`paired` makes them)."""

    n: int
    mean: float
    sd: float | None  # sample standard deviation; None with one value
    half_width: float | None  # of the t interval; None with one value
    n_positive: int  # seeds with a - b > 0
    n_negative: int  # seeds with a - b < 0
    level: float = 0.95

    @property
    def ci_low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def ci_high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width

    @property
    def agreement(self) -> str:
        """How many seeds share the mean's sign: '5/5 < 0', '2/3 > 0' ('... = 0' at 0)."""
        if self.mean < 0:
            return f"{self.n_negative}/{self.n} < 0"
        if self.mean > 0:
            return f"{self.n_positive}/{self.n} > 0"
        return f"{self.n - self.n_positive - self.n_negative}/{self.n} = 0"

    def text(self, digits: int = 2) -> str:
        """'-18.00 [-26.61, -9.39], 3/3 < 0'; with one seed '-10.00 (n=1)'."""
        mean = f"{self.mean:+.{digits}f}"
        if self.half_width is None:
            return f"{mean} (n={self.n})"
        return f"{mean} [{self.ci_low:+.{digits}f}, {self.ci_high:+.{digits}f}], {self.agreement}"


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile: P(T <= t) = p with `df` degrees of freedom."""
    from scipy.stats import t  # here: scipy.stats takes ~0.5 s to import, cam-report's start-up

    return float(t.ppf(p, df))


def paired(diffs: Sequence[float], level: float = 0.95) -> Paired:
    """The mean of `diffs` (a - b, one per seed, at least one), its `level` t interval over seeds
    and the counts of positive and negative differences."""
    values = [float(d) for d in diffs]
    n = len(values)
    if n == 0:
        raise ValueError("paired needs at least one difference")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    mean = sum(values) / n
    positive = sum(v > 0 for v in values)
    negative = sum(v < 0 for v in values)
    if n == 1:
        return Paired(n, mean, None, None, positive, negative, level)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile((1 + level) / 2, n - 1) * sd / math.sqrt(n)
    return Paired(n, mean, sd, half, positive, negative, level)
