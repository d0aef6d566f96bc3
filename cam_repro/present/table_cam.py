"""Section 3's tables from cam-eval runs: Tables 1 and 2 (table1.md, table2.md), their numbers
(tables.csv, summary.csv) and GT-known error against the CAM threshold (thresholds.md).

`summary_rows` flattens eval runs to one row per run (the summary.csv the tables are aggregated
from); `aggregate` groups runs of the same model, data and protocol (several seeds -> mean +- std,
one run per network: present/table_rows.py); `table1` / `table2` / `group_csv` /
`threshold_table` write the text. Every row of table2.md and tables.csv says how it was measured
(`Group.provenance`): the CAM threshold and how it was chosen (metrics.json's `thresholds`: fixed,
oracle on the scored split, or held out with threshold_from), the normalisation, the box rule, the
blacklist and its checkpoints' SHA-256. Paired comparisons: present/table_comparisons.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cam_repro.present.paper import (
    PAPER_CHOICES,
    PAPER_NOTES,
    PAPER_TABLE1,
    PAPER_TABLE2,
    paper_rank,
)
from cam_repro.present.runs import (
    PROVENANCE_COLUMNS,
    EvalRun,
    Run,
    in_tables,
    run_provenance,
    with_protocol,
)
from cam_repro.present.stats import Stat, group_by
from cam_repro.present.table_rows import (
    Notes,
    RunGroup,
    markdown_table,
    seed_of,
    to_csv,
    undefined_columns,
    undigested,
)
from cam_repro.runtime.config import check_choice

SUMMARY_COLUMNS = (
    "variant", "pool", "seed", "cls_top1_err", "cls_top5_err", "loc_top1_err", "loc_top5_err",
    "gt_known_loc_err", "maxboxacc_v2", "evidence", "map_size", "paper_name", "data", "protocol",
    "run", "maxboxacc_v2_heldout", *PROVENANCE_COLUMNS, "checkpoint_sha256", "undefined",
)  # fmt: skip
METRICS = (
    "cls_top1_err", "cls_top5_err", "loc_top1_err", "loc_top5_err", "gt_known_loc_err",
    "maxboxacc_v2",
)  # fmt: skip
SWEEP_POINTS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)  # CAM thresholds shown in thresholds.md


def summary_rows(runs: Iterable[Run]) -> list[dict[str, Any]]:
    """One row per eval run with SUMMARY_COLUMNS (the tables are aggregated from these); features
    runs (table_features.features_rows) and text and VQA runs (table_discovery.discovery_rows) are
    passed over."""
    rows = []
    for run in runs:
        if not isinstance(run, EvalRun) or not in_tables(run):
            continue
        m = run.record
        rows.append(
            {
                "variant": m.variant,
                "pool": m.pool,
                "seed": m.seed,
                **{key: getattr(m, key) for key in METRICS},
                "evidence": run.data.evidence,
                "map_size": m.map_size,
                "paper_name": m.paper_name,
                "data": run.dataset,
                "protocol": run.protocol,
                "run": str(run.path),
                "maxboxacc_v2_heldout": m.maxboxacc_v2_heldout,
                **run_provenance(m),
                "checkpoint_sha256": m.checkpoint_sha256,
                "checkpoint": m.checkpoint,  # rides along unwritten: "-" without one
                **undefined_columns(
                    m.undefined, {k: (k,) for k in (*METRICS, "maxboxacc_v2_heldout")}
                ),
            }
        )
    return sorted(
        rows, key=lambda r: (r["data"], paper_rank(r["paper_name"]), r["protocol"], seed_of(r))
    )


@dataclass
class Group(RunGroup):
    """Runs of one model on one dataset under one protocol (usually several seeds)."""

    data: str
    name: str  # paper name, with protocol changes
    paper_name: str
    variant: str
    pool: str | None
    map_size: str | None
    evidence: str | None
    protocol: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    folded: list[list[dict[str, Any]]] = field(default_factory=list)

    def shared(self, key: str) -> str | None:
        """A provenance item over the group's runs: their distinct values joined by ' / '."""
        values = [str(r[key]) for r in self.rows if r.get(key) is not None]
        return " / ".join(dict.fromkeys(values)) or None

    @property
    def thresholds(self) -> str:
        """The paper rule's threshold of each run, in seed order ('-': box_rule=release)."""
        return " ".join("-" if r.get("threshold") is None else f"{r['threshold']:g}"
                        for r in self.rows)  # fmt: skip

    @property
    def checkpoints(self) -> str:
        """The first 12 hex digits of each run's checkpoint SHA-256, in seed order: '-' for a
        run without a checkpoint (a zoo model), '?' for one evaluated before digests."""
        return " ".join(
            r["checkpoint_sha256"][:12] if r.get("checkpoint_sha256")
            else "?" if r.get("checkpoint") else "-"
            for r in self.rows
        )  # fmt: skip

    @property
    def provenance(self) -> dict[str, str | None]:
        """PROVENANCE_COLUMNS and `checkpoints` of the group (tables.csv's columns)."""
        out = {key: self.shared(key) for key in PROVENANCE_COLUMNS}
        return {**out, "threshold": self.thresholds, "checkpoints": self.checkpoints}

    def note(self) -> str:
        """table2.md's footnote: how the row was measured, in words."""
        p = self.provenance
        threshold = _threshold_text(p, several=len(self.rows) > 1)
        blacklist = "no blacklist" if p["blacklist"] == "none" else f"blacklist {p['blacklist']}"
        return (f"{threshold}; {_maxboxacc_text(p)}; normalize {p['normalize']}; box rule "
                f"{p['box_rule']}; {blacklist}; checkpoints {p['checkpoints']}")  # fmt: skip


def _threshold_text(p: dict[str, str | None], several: bool) -> str:
    """How a row's paper-rule thresholds were set, in words (`p`: Group.provenance; `several`:
    the row has several runs)."""
    values = sorted(set(p["threshold"].split()), key=lambda v: (v == "-", v))
    if p["box_rule"] == "release":
        return "the release rule's thresholds (20, 100, 110 of 255)"
    if p["threshold_chosen"] == "heldout":
        per_seed = " (per seed)" if several and len(values) > 1 else ""
        return (f"threshold {p['threshold']}{per_seed}, each the best GT-known "
                f"accuracy on {p['threshold_from']} (held out)")  # fmt: skip
    return f"threshold {' / '.join(values)}, fixed"


def _maxboxacc_text(p: dict[str, str | None]) -> str:
    """How a row's MaxBoxAccV2 thresholds were set, in words (`p`: Group.provenance)."""
    box = p["maxboxacc_threshold_chosen"]
    oracle = "MaxBoxAccV2 at the best thresholds on the scored split (oracle)"
    if box is None:
        return "no MaxBoxAccV2"
    if box == "heldout":
        return f"{oracle}, its held-out column at those of {p['maxboxacc_threshold_from']}"
    return oracle


def aggregate(rows: Sequence[dict[str, Any]]) -> list[Group]:
    """Group summary rows by (data, paper name, protocol), in the paper's row order; one run per
    checkpoint in each (`RunGroup.fold`)."""
    groups = []
    by_key = group_by(rows, lambda r: (r["data"], r["paper_name"], r["protocol"]))
    for (data, paper_name, protocol), members in by_key.items():
        first = members[0]
        group = Group(
            data, with_protocol(paper_name, protocol), paper_name, first["variant"],
            first["pool"], first["map_size"], first["evidence"], protocol, list(members),
        )  # fmt: skip
        group.fold()
        groups.append(group)
    return sorted(groups, key=lambda g: (g.data, paper_rank(g.paper_name), g.protocol))


def _paper_cells(group: Group, table: dict[str, tuple[float, float]], top1: str, top5: str):
    """'paper top-1 / top-5' and 'ours - paper' cells (only when the protocol is the paper's)."""
    ref = table.get(group.paper_name)
    if ref is None or group.protocol:
        return ["-", "-"]
    ours = [group.stat(top1), group.stat(top5)]
    pairs = zip(ours, ref, strict=True)
    diffs = [f"{s.mean - r:+.2f}" if s is not None else "n/a" for s, r in pairs]
    return [f"{ref[0]:.2f} / {ref[1]:.2f}", " / ".join(diffs)]


def _show_paper(groups: Sequence[Group], paper: str) -> bool:
    """Whether to print the paper's numbers: 'auto' (on ILSVRC only), 'true' or 'false'."""
    check_choice(paper, "paper", PAPER_CHOICES)
    return paper == "true" or (paper == "auto" and any(g.data == "ILSVRC" for g in groups))


def _sections(groups: Sequence[Group]) -> dict[str, list[Group]]:
    """The groups by dataset: one section of each table per dataset."""
    return group_by(groups, lambda g: g.data)


def table1(groups: Sequence[Group], paper: str = "auto") -> str:
    """Table 1 (classification error, top-1 / top-5), one section per dataset."""
    lines = ["# Table 1: classification error (%), lower is better", ""]
    for data, section in _sections(groups).items():
        show = _show_paper(section, paper)
        header = ["model", "top-1 err", "top-5 err", "seeds"]
        if show:
            header += ["paper top-1 / top-5", "ours - paper"]
        body, notes = [], Notes()
        for g in section:
            row = [g.name, g.cell("cls_top1_err", "top-1 err", notes),
                   g.cell("cls_top5_err", "top-5 err", notes), g.seeds_cell(notes)]  # fmt: skip
            if show:
                row += _paper_cells(g, PAPER_TABLE1, "cls_top1_err", "cls_top5_err")
            body.append(row)
        lines += [f"## {data}", "", *markdown_table(header, body), ""]
        lines += notes.lines() + undigested(section)
    return "\n".join(lines)


TABLE2_NOTE = (
    "protocol: how each row was measured, in its note under the table: the CAM threshold of the "
    "paper's box rule and how it was chosen (fixed: the `threshold` key, the paper's 0.2; held "
    "out: the best on another split, cam-eval threshold_from), MaxBoxAccV2's thresholds (oracle: "
    "the best on the scored split itself, an upper bound; a held-out column when a row has one), "
    "the normalisation, the box rule, the blacklist, and the first 12 hex digits of each run's "
    "checkpoint SHA-256 in seed order ('-': no checkpoint, '?': not recorded). seeds: the "
    "networks counted (repeated evaluations of one checkpoint count once, noted); n/a: undefined "
    "on that data, the reason in a note."
)


# How table1.md / table2.md name a metric in their notes.
COLUMN_NAMES = {
    "cls_top1_err": "top-1 cls err", "cls_top5_err": "top-5 cls err",
    "loc_top1_err": "top-1 loc err", "loc_top5_err": "top-5 loc err",
    "gt_known_loc_err": "GT-known loc err", "maxboxacc_v2": "MaxBoxAccV2",
    "maxboxacc_v2_heldout": "MaxBoxAccV2 at threshold_from's thresholds",
}  # fmt: skip


def table2(groups: Sequence[Group], paper: str = "auto") -> str:
    """Table 2 (localization error, top-1 / top-5, plus GT-known and MaxBoxAccV2), each row with
    a protocol note (Group.note) under its section's table."""
    lines = ["# Table 2: localization error (%), lower is better (MaxBoxAccV2: higher)", "",
             TABLE2_NOTE, ""]  # fmt: skip
    for data, section in _sections(groups).items():
        show = _show_paper(section, paper)
        heldout = [g for g in section if g.stat("maxboxacc_v2_heldout") is not None]
        header = ["model", "top-1 loc err", "top-5 loc err", "GT-known loc err", "MaxBoxAccV2"]
        # "held-out" only when every run's thresholds were checked (evaluate.config.check_held_out)
        checked = all(g.provenance["maxboxacc_threshold_chosen"] == "heldout" for g in heldout)
        header += [f"MaxBoxAccV2, {'held-out' if checked else 'other run'} thr."] * bool(heldout)
        header += ["top-1 cls err", "seeds"]
        if show:
            header += ["paper top-1 / top-5", "ours - paper"]
        header.append("protocol")
        body, notes = [], Notes()
        for g in section:
            shown = ["loc_top1_err", "loc_top5_err", "gt_known_loc_err", "maxboxacc_v2"]
            shown += ["maxboxacc_v2_heldout"] if heldout else []
            cells = [g.cell(m, COLUMN_NAMES[m], notes) for m in [*shown, "cls_top1_err"]]
            row = [g.name, *cells, g.seeds_cell(notes)]
            if show:
                row += _paper_cells(g, PAPER_TABLE2, "loc_top1_err", "loc_top5_err")
            body.append([*row, notes.mark(g.note())])
        lines += [f"## {data}", "", *markdown_table(header, body), ""]
        lines += notes.lines() + undigested(section)
    if any(_show_paper(s, paper) for s in _sections(groups).values()):
        lines += [PAPER_NOTES, ""]
    return "\n".join(lines)


def group_csv(groups: Sequence[Group]) -> str:
    """The tables' numbers as CSV: one row per group, mean and std of every metric (over the runs
    that have it), then how the row was measured (PROVENANCE_COLUMNS: distinct values joined by
    ' / '; `threshold` and `checkpoints`, the short SHA-256s, one per run in seed order), then
    `undefined` (which metrics are undefined in how many runs, and why) and `runs_note`
    (duplicates folded, seed numbers claimed twice, runs without a digest)."""
    rows = []
    for g in groups:
        row: dict[str, Any] = {"data": g.data, "model": g.name, "variant": g.variant,
                               "seeds": " ".join(map(str, g.seeds)), "n": len(g.rows)}  # fmt: skip
        for metric in (*METRICS, "maxboxacc_v2_heldout"):
            stat = g.stat(metric)
            row[f"{metric}_mean"] = stat.mean if stat else None
            row[f"{metric}_std"] = stat.std if stat else None
        for table, key in ((PAPER_TABLE1, "paper_cls"), (PAPER_TABLE2, "paper_loc")):
            ref = table.get(g.paper_name) if g.data == "ILSVRC" and not g.protocol else None
            row[f"{key}_top1"], row[f"{key}_top5"] = ref if ref else (None, None)
        notes = Notes()
        for metric in (*METRICS, "maxboxacc_v2_heldout"):
            g.cell(metric, metric, notes)
        row["undefined"] = " | ".join(notes.marks) or None
        row["runs_note"] = " | ".join(g.run_notes()) or None
        rows.append({**row, **g.provenance})
    columns = ["data", "model", "variant", "seeds", "n"]
    columns += [f"{m}_{s}" for m in METRICS for s in ("mean", "std")]
    columns += ["paper_cls_top1", "paper_cls_top5", "paper_loc_top1", "paper_loc_top5"]
    columns += ["maxboxacc_v2_heldout_mean", "maxboxacc_v2_heldout_std"]
    return to_csv(rows, [*columns, *PROVENANCE_COLUMNS, "checkpoints", "undefined", "runs_note"])


def threshold_table(
    groups: Sequence[Group],
    curves: Mapping[str, Sequence[float]],
    points: Sequence[float] = SWEEP_POINTS,
) -> str | None:
    """GT-known localization error of the paper's box rule at several CAM thresholds (the paper
    fixes 0.2), mean +- std over seeds; `curves`: each run folder's errors at `points`
    (runs.read_sweeps, from its sweep.csv). None if no run of `groups` has one."""
    header = ["model", *[f"{t:g}" for t in points]]
    lines = ["# GT-known localization error (%) vs the CAM threshold (paper's rule; 0.2 is the "
             "paper's)", ""]  # fmt: skip
    found = False
    for data, section in _sections(groups).items():
        body = []
        for g in section:
            runs = [curves[r["run"]] for r in g.rows if r["run"] in curves]
            if runs:
                body.append(
                    [g.name] + [Stat([c[i] for c in runs]).text() for i in range(len(points))]
                )
        if body:
            found = True
            lines += [f"## {data}", "", *markdown_table(header, body), ""]
    return "\n".join(lines) if found else None
