"""Section 3's paired comparisons (comparisons.md, comparisons.csv): GAP - GMP and a larger - a
smaller CAM, a - b paired by seed, with a 95% t interval over seeds (present/stats.py).

The classification difference stands beside the localization ones because the paper's claim is
better localization at similar classification. Pairs are taken over the seeds that name one
network in each group (groups are folded, present/table_rows.py); a seed claimed by two networks
in either is left out, and said.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cam_repro.present.stats import Paired, group_by, paired
from cam_repro.present.table_cam import Group
from cam_repro.present.table_rows import markdown_table, seed_of, to_csv

_DIFF_METRICS = ("cls_top1_err", "loc_top1_err", "gt_known_loc_err", "maxboxacc_v2")
# comparisons.csv: per metric, these columns after `<metric>_diff_` (ci_*: None with one seed)
COMPARISON_STATS = ("mean", "std", "ci_low", "ci_high", "n", "n_positive", "n_negative")


@dataclass
class SeedPairs:
    """a - b paired by seed (`pair_by_seed`): the seeds that name one network in each group, the
    differences per metric and the seeds left out; for comparisons.md and table_methods.md."""

    seeds: list[int]
    diffs: dict[str, list[float]]  # a - b per seed, for the seeds where both have the metric
    # seeds both have but that cannot be paired: different networks claim them in a or b
    ambiguous: list[int] = field(default_factory=list)

    @property
    def seeds_text(self) -> str:
        """'0 1 2' ('none' without any), with the seeds left out and why."""
        text = " ".join(map(str, self.seeds)) or "none"
        if self.ambiguous:
            left = " ".join(map(str, self.ambiguous))
            text += f" (left out: {left}, claimed by several networks)"
        return text

    def stat(self, metric: str) -> Paired | None:
        """The mean difference, its 95% t interval over seeds and the signs; None without any."""
        values = self.diffs[metric]
        return paired(values) if values else None

    def cell(self, metric: str) -> str:
        """The markdown cell of `metric`'s difference ('n/a' without any)."""
        stat = self.stat(metric)
        return "n/a" if stat is None else stat.text()

    def csv_values(self, metric: str) -> dict[str, Any]:
        """`metric`'s difference as the CSV's COMPARISON_STATS (all None without any)."""
        stat = self.stat(metric)
        if stat is None:
            return dict.fromkeys(COMPARISON_STATS)
        return {"mean": stat.mean, "std": stat.sd, "ci_low": stat.ci_low,
                "ci_high": stat.ci_high, "n": stat.n, "n_positive": stat.n_positive,
                "n_negative": stat.n_negative}  # fmt: skip


def pair_by_seed(a: Group, b: Group, metrics: Sequence[str]) -> SeedPairs:
    """a - b of each of `metrics` paired by seed, over the seeds that name one network in each
    (groups are folded: one row per network); a seed claimed by two networks in either is left
    out, and said."""
    by_seed_a, by_seed_b = group_by(a.rows, seed_of), group_by(b.rows, seed_of)
    common = set(by_seed_a) & set(by_seed_b)
    ambiguous = sorted(s for s in common if len(by_seed_a[s]) > 1 or len(by_seed_b[s]) > 1)
    seeds = sorted(common - set(ambiguous))
    diffs = {}
    for metric in metrics:
        pairs = [(by_seed_a[s][0].get(metric), by_seed_b[s][0].get(metric)) for s in seeds]
        diffs[metric] = [float(x) - float(y) for x, y in pairs if x is not None and y is not None]
    return SeedPairs(seeds, diffs, ambiguous)


@dataclass(kw_only=True)
class Comparison(SeedPairs):
    """a - b over the seeds both groups have: the claim's numbers beside classification's."""

    data: str
    what: str  # e.g. "GAP - GMP (16x16)"
    a: Group
    b: Group


def _paired(a: Group, b: Group, what: str) -> Comparison | None:
    """a - b paired by seed (`pair_by_seed`); None without a seed to pair."""
    pairs = pair_by_seed(a, b, _DIFF_METRICS)
    if not pairs.seeds:
        return None
    return Comparison(pairs.seeds, pairs.diffs, pairs.ambiguous, data=a.data, what=what, a=a, b=b)


def comparisons(groups: Sequence[Group]) -> list[Comparison]:
    """GAP vs GMP at the same map size, and a larger vs a smaller map with the same pooling, for
    every architecture, dataset and protocol that has both; paired by seed."""
    out = []
    # the protocol includes the localizer (the name's "Backprop on " / "Grad-CAM on "): a network's
    # CAM rows and its Grad-CAM rows are compared among themselves, never across
    keyed = {(g.data, g.variant.split("_")[0], g.pool, g.map_size,
              (g.paper_name.rpartition(" on ")[0], g.protocol)): g for g in groups}  # fmt: skip
    for (data, arch, pool, size, protocol), g in keyed.items():
        if pool == "gap":
            other = keyed.get((data, arch, "gmp", size, protocol))
            if other is not None:
                out.append(_paired(g, other, f"{g.name} - {other.name}"))
        for (data2, arch2, pool2, size2, protocol2), h in keyed.items():
            if (data2, arch2, pool2, protocol2) == (data, arch, pool, protocol) and _side(
                size
            ) > _side(size2):
                out.append(_paired(g, h, f"{g.name} - {h.name}"))
    return [c for c in out if c is not None]


def _side(size: str | None) -> int:
    return int(size.split("x")[0]) if size else 0


COMPARISONS_NOTE = (
    "Each cell: the mean of a - b over the seeds both have, its 95% t interval over seeds "
    "[low, high] (mean +- t_{0.975, n-1} * sd / sqrt(n), sd the seeds' sample standard "
    "deviation), and how many seeds share the mean's sign (e.g. 3/3 < 0); one seed: no interval "
    "(n=1). An interval that holds 0 means these seeds do not show a difference. Negative error "
    "differences mean a has less error; a positive MaxBoxAccV2 difference means a localizes "
    "better. The classification difference stands beside the localization ones because the "
    "claim is better localization at similar classification."
)


def comparisons_markdown(items: Sequence[Comparison]) -> str:
    """The paired differences: classification beside localization (negative: a has less error)."""
    header = ["comparison (a - b)", "seeds", "top-1 cls err", "top-1 loc err",
              "GT-known loc err", "MaxBoxAccV2"]  # fmt: skip
    lines = [
        "# Paired differences, a - b, over the seeds both have (mean and 95% t interval over "
        "seeds)",
        "",
        COMPARISONS_NOTE,
        "",
    ]
    for data, section in group_by(items, lambda c: c.data).items():
        body = [[c.what, c.seeds_text] + [c.cell(m) for m in _DIFF_METRICS] for c in section]
        lines += [f"## {data}", "", *markdown_table(header, body), ""]
    return "\n".join(lines)


def comparisons_csv(items: Sequence[Comparison]) -> str:
    """One row per comparison: data, a, b, seeds, then per metric COMPARISON_STATS."""
    rows = []
    for c in items:
        row: dict[str, Any] = {"data": c.data, "a": c.a.name, "b": c.b.name,
                               "seeds": " ".join(map(str, c.seeds))}  # fmt: skip
        for metric in _DIFF_METRICS:
            for key, value in c.csv_values(metric).items():
                row[f"{metric}_diff_{key}"] = value
        rows.append(row)
    columns = ["data", "a", "b", "seeds"]
    columns += [f"{m}_diff_{s}" for m in _DIFF_METRICS for s in COMPARISON_STATS]
    return to_csv(rows, columns)
