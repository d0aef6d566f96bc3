"""Statistics over seeds for the tables: mean +- std (`Stat`), paired differences with a t interval
(`paired`), and the one group-by (`group_by`) every table family groups its runs with.

Mean +- std: the mean and the sample standard deviation (n - 1 in the denominator) of a metric over
seeds, saying over how many runs when some have no value (undefined there).

Paired differences, reported honestly: for differences d_1 .. d_n of two models paired by seed (the
same seed's data order and initialisation): the mean m, the sample standard deviation s, and
Student's t interval m +- t_{(1 + level) / 2, n - 1} * s / sqrt(n) (scipy.stats.t.ppf). It treats
the seeds' differences as a normal sample; with 3-5 seeds it is wide, which is the point: a
difference whose interval holds 0 is not shown by so few seeds. With one seed there is no
interval (n=1), and the mean's sign is told by how many seeds agree with it. Pure functions:
numbers in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def group_by(items: Iterable[T], key: Callable[[T], K]) -> dict[K, list[T]]:
    """`items` in lists by `key(item)`: keys in the order first seen, items in their order."""
    out: dict[K, list[T]] = {}
    for item in items:
        out.setdefault(key(item), []).append(item)
    return out


@dataclass
class Stat:
    """Mean and sample standard deviation (None with one value) of a metric over seeds; `of`:
    the runs it was taken over, when some of them have no value (undefined there)."""

    values: list[float]
    of: int | None = None

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def std(self) -> float | None:
        n = len(self.values)
        if n < 2:
            return None
        return math.sqrt(sum((v - self.mean) ** 2 for v in self.values) / (n - 1))

    def text(self, digits: int = 2) -> str:
        """'12.34' or '12.34 +- 0.56', then '(2 of 3 runs)' when taken over fewer than `of`."""
        text = f"{self.mean:.{digits}f}"
        if self.std is not None:
            text += f" +- {self.std:.{digits}f}"
        if self.of is not None and len(self.values) < self.of:
            text += f" ({len(self.values)} of {self.of} runs)"
        return text


def stat_of(rows: Sequence[dict[str, Any]], metric: str) -> Stat | None:
    """The Stat of `metric` over the rows that have it (saying over how many of the rows); None
    if none has."""
    values = [float(r[metric]) for r in rows if r.get(metric) is not None]
    return Stat(values, len(rows)) if values else None


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
