"""What every cam-report table shares: a row's runs (`RunGroup`, one run per network), its mean +-
std cells with numbered notes (`Notes`), and the markdown and CSV text the tables are written in.

What a seed is: one network's weights (metrics.json's `checkpoint_sha256`, cam-features'
`weights_sha256`). Every group folds repeated evaluations of one checkpoint into one run
(`RunGroup.fold`), noted with the folders it folded, so they never count as extra seeds nor make a
spread; two different checkpoints that claim one seed number stay two runs, noted; runs without a
digest cannot be told apart and each counts, noted too (`undigested`). A metric a run could not
measure is null in its metrics.json with a reason under "undefined"
(evaluate.outputs.with_undefined): its cell is n/a with the reason in a note under the table, a
mean over the runs that have it says over how many ("12.34 +- 0.56 (2 of 3 runs)"), and the run's
other metrics stay.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from cam_repro.present.stats import Stat, group_by, stat_of


def seed_of(row: dict[str, Any]) -> int:
    """A row's seed, -1 for a run that recorded none (sorted first)."""
    return -1 if row["seed"] is None else int(row["seed"])


def weights_digest(row: dict[str, Any]) -> str | None:
    """What makes a seed: the SHA-256 of the network's weights (cam-eval's checkpoint_sha256,
    cam-features' weights_sha256); None when the run recorded none."""
    return row.get("checkpoint_sha256") or row.get("weights_sha256") or None


def undefined_columns(why: dict[str, str], keys: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """A row's `undefined` column ('key: reason; ...', None if none) and its `reasons` (rides
    along unwritten: {row key: reason}) from metrics.json's `undefined` (`why`); `keys` maps each
    row key to the metrics.json keys it is read from (the first one listed there counts)."""
    reasons = {}
    for row_key, names in keys.items():
        found = [why[name] for name in names if name in why]
        if found:
            reasons[row_key] = found[0]
    text = "; ".join(f"{key}: {reason}" for key, reason in why.items())
    return {"undefined": text or None, "reasons": reasons}


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV text of `rows` with `columns`; floats to 4 decimals, None as empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            ["" if row.get(c) is None else f"{row[c]:.4f}" if isinstance(row[c], float) else row[c]
             for c in columns]
        )  # fmt: skip
    return out.getvalue()


def markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    """The lines of a markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in body]


def stat_cell(stat: Stat | None) -> str:
    """A table cell: mean +- std, or n/a without a value."""
    return "n/a" if stat is None else stat.text()


class Notes:
    """Numbered notes under a table: `mark(text)` gives the text's '[n]' (one per distinct text),
    `lines()` the notes."""

    def __init__(self) -> None:
        self.marks: dict[str, str] = {}

    def mark(self, text: str) -> str:
        return self.marks.setdefault(text, f"[{len(self.marks) + 1}]")

    def marked(self, texts: Sequence[str]) -> str:
        """' [n]' marking `texts` (joined by '; ') as one note; '' without any."""
        return f" {self.mark('; '.join(texts))}" if texts else ""

    def lines(self) -> list[str]:
        return [f"- {mark} {text}" for text, mark in self.marks.items()] + [""] * bool(self.marks)


class RunGroup:
    """What every table group of runs (one per seed, usually) offers: a metric's mean +- std and
    the seeds; `rows` is its runs' flat rows, one per network (`fold`), `folded` the repeated
    evaluations folded into them."""

    rows: list[dict[str, Any]]
    folded: list[list[dict[str, Any]]]

    def stat(self, metric: str) -> Stat | None:
        return stat_of(self.rows, metric)

    @property
    def seeds(self) -> list[int]:
        return sorted(seed_of(r) for r in self.rows)

    def undefined(self, metric: str) -> dict[str, list[str]]:
        """{reason: the runs' folders} of the runs where `metric` is undefined."""
        undefined = [
            r
            for r in self.rows
            if r.get(metric) is None and (r.get("reasons") or {}).get(metric) is not None
        ]
        by_reason = group_by(undefined, lambda r: r["reasons"][metric])
        return {reason: [str(r["run"]) for r in rows] for reason, rows in by_reason.items()}

    def fold(self) -> None:
        """Keep one run per network weights (`weights_digest`; the first in row order): repeated
        evaluations of one checkpoint are one seed, not several, and make no spread. The folded
        ones stay in `folded`, each list headed by the run kept."""
        by_digest = group_by((r for r in self.rows if weights_digest(r)), weights_digest)
        kept = {id(rows[0]) for rows in by_digest.values()}
        self.rows = [r for r in self.rows if weights_digest(r) is None or id(r) in kept]
        self.folded = [rows for rows in by_digest.values() if len(rows) > 1]

    def run_notes(self) -> list[str]:
        """What a reader must know about the runs counted: duplicates folded, one seed number
        claimed by different networks (runs without a digest: `undigested`, under the table)."""
        notes = []
        for first, *others in self.folded:
            metrics = [k for k, v in first.items() if isinstance(v, float)]
            differ = [k for k in metrics if any(o.get(k) != first[k] for o in others)]
            agree = f"they differ in {', '.join(differ)}" if differ else "the same numbers"
            notes.append(
                f"checkpoint {weights_digest(first)[:12]} evaluated {len(others) + 1} times "
                f"({', '.join(str(r['run']) for r in (first, *others))}): counted once, the first "
                f"folder's numbers shown ({agree})"
            )
        by_seed = group_by((r for r in self.rows if r.get("seed") is not None), seed_of)
        for seed, rows in by_seed.items():
            if len(rows) > 1:
                digests = [(weights_digest(r) or "?")[:12] for r in rows]
                notes.append(
                    f"seed {seed} is claimed by {len(digests)} different networks (checkpoints "
                    f"{', '.join(digests)}): each counted as a run"
                )
        return notes

    def seeds_cell(self, notes: Notes) -> str:
        """The number of runs (networks), marked with `run_notes` when there are any."""
        return str(len(self.rows)) + notes.marked(self.run_notes())

    def cell(self, metric: str, label: str, notes: Notes) -> str:
        """`metric`'s mean +- std, or n/a; marked with a note where it is undefined in some run
        (the reasons and those runs' folders)."""
        text = stat_cell(self.stat(metric))
        why = self.undefined(metric)
        if why:
            count = sum(len(runs) for runs in why.values())
            reasons = "; ".join(f"{reason} ({', '.join(runs)})" for reason, runs in why.items())
            text += " " + notes.mark(f"{label} undefined in {count} of {len(self.rows)} runs: "
                                     f"{reasons}")  # fmt: skip
        return text


def undigested(groups: Iterable[RunGroup]) -> list[str]:
    """The line under a table for its rows of several runs where some recorded no weights
    digest: repeated evaluations among those cannot be found, so each counts ([] if none)."""
    count = sum(sum(weights_digest(r) is None for r in g.rows) for g in groups if len(g.rows) > 1)
    if not count:
        return []
    return [
        f"{count} runs of rows with several runs recorded no weights digest (zoo models, or "
        "runs written before digests): repeated evaluations of one network among them cannot be "
        "told apart, so each is counted as a seed.",
        "",
    ]
