"""The WSOL methods beside CAM (table_methods.md, table_methods.csv): for every dataset, network
and protocol whose cam-eval runs (localizer=cam) include a method other than CAM (metrics.json's
`method`), one row per method, mean +- std over seeds; each method minus CAM paired by seed with
its 95% t interval (present/stats.py); and Choe et al.'s published numbers (present/paper.py).

The rows are table_cam's summary rows with the method, the network without the method's title
and PxAP; each method's runs are a table_cam `Group` (one run per checkpoint, its provenance note),
so a cell here is measured and noted as in table2.md. Pairs are taken as in
table_comparisons.py: over the seeds that name one network in both the method's runs and CAM's; a
seed claimed by two networks in either is left out, and said.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cam_repro.models.method_config import METHOD_TITLES, METHODS
from cam_repro.present.paper import (
    WSOL_BACKBONE_OF,
    WSOL_BACKBONES,
    WSOL_CITATION,
    WSOL_PUBLISHED,
    wsol_published,
)
from cam_repro.present.runs import PROVENANCE_COLUMNS, EvalRun, Run
from cam_repro.present.stats import group_by
from cam_repro.present.table_cam import Group, summary_rows
from cam_repro.present.table_comparisons import COMPARISON_STATS, SeedPairs, pair_by_seed
from cam_repro.present.table_rows import Notes, markdown_table, to_csv, undigested

# The table's metrics, in its column order, and their names in its header and notes.
METHOD_METRICS = ("cls_top1_err", "loc_top1_err", "gt_known_loc_err", "maxboxacc_v2_heldout",
                  "maxboxacc_v2", "pxap")  # fmt: skip
METRIC_NAMES = {
    "cls_top1_err": "top-1 cls err", "loc_top1_err": "top-1 loc err",
    "gt_known_loc_err": "GT-known loc err", "maxboxacc_v2_heldout": "MaxBoxAccV2, held-out thr.",
    "maxboxacc_v2": "MaxBoxAccV2, oracle thr.", "pxap": "PxAP",
}  # fmt: skip
# The data a run's numbers are on, as Choe et al.'s table names it (metrics.json data.kind, or
# wsolevaluation's data.wsol_dataset); other data has no published numbers.
_PUBLISHED_DATA = {"ilsvrc": "ImageNet", "cub": "CUB", "ILSVRC": "ImageNet", "OpenImages":
                   "OpenImages"}  # fmt: skip
# Why a cell is n/a when metrics.json gives no reason: the run did not measure it.
_NOT_MEASURED = {
    "maxboxacc_v2_heldout": "no held-out thresholds: evaluated without cam-eval threshold_from",
    "pxap": "not computed: cam-eval pxap=false (or maxboxacc=false)",
}


def network_name(paper_name: str, method: str) -> str:
    """The network's paper name without the method's title that method_title adds
    ('Tiny-GAP (HaS)' -> 'Tiny-GAP')."""
    suffix = f" ({METHOD_TITLES.get(method, method)})"
    return (
        paper_name[: -len(suffix)]
        if method != "cam" and paper_name.endswith(suffix)
        else paper_name
    )


def _published_data(run: EvalRun) -> str | None:
    data = run.record.data
    key = data.wsol_dataset if data.kind == "wsol" else data.kind
    return _PUBLISHED_DATA.get(str(key)) if key else None


def method_rows(runs: Iterable[Run]) -> list[dict[str, Any]]:
    """table_cam's summary rows of the CAM-localizer eval runs (Grad-CAM and Backprop are other
    localizers, not methods), with `method`, `network` (the paper name without the method),
    `pxap`, `published_data` and the reasons of the cells a run did not measure."""
    runs = list(runs)
    by_path = {str(run.path): run for run in runs if isinstance(run, EvalRun)}
    rows = []
    for row in summary_rows(runs):
        run = by_path[row["run"]]
        record = run.record
        if record.protocol.localizer != "cam":
            continue
        reasons = measured_reasons(row, record)
        rows.append({**row, "method": run.method, "network": network_name(row["paper_name"],
                     run.method), "pxap": record.pxap, "published_data": _published_data(run),
                     "reasons": reasons})  # fmt: skip
    return rows


def measured_reasons(row: dict[str, Any], record: Any) -> dict[str, str]:
    """A summary row's reasons for its empty cells, with PxAP's (metrics.json's `undefined`) and,
    for a held-out MaxBoxAccV2 or a PxAP the run did not measure, why (`_NOT_MEASURED`)."""
    reasons = dict(row["reasons"])
    if "pxap" in record.undefined:
        reasons["pxap"] = record.undefined["pxap"]
    for key, why in _NOT_MEASURED.items():
        value = record.pxap if key == "pxap" else row[key]
        if value is None and key not in reasons:
            reasons[key] = why
    return reasons


@dataclass
class MethodSection:
    """The methods trained on one network, evaluated on one dataset under one protocol."""

    data: str
    network: str
    protocol: str
    variant: str
    published_data: str | None  # Choe et al.'s name of the data (ImageNet | CUB | OpenImages)
    groups: dict[str, Group]  # by method, in METHODS' order

    @property
    def title(self) -> str:
        return f"{self.data}: {self.network}" + (f", {self.protocol}" if self.protocol else "")

    @property
    def backbone(self) -> str | None:
        """Choe et al.'s backbone that this network is shown beside (None: none)."""
        return WSOL_BACKBONE_OF.get(self.variant)

    @property
    def published_metric(self) -> str:
        return "PxAP" if self.published_data == "OpenImages" else "MaxBoxAccV2"

    def published(self, method: str) -> str | None:
        """Choe et al.'s cell for `method` on this data and backbone; None where unpublished."""
        if self.published_data is None or self.backbone is None:
            return None
        return wsol_published(self.published_data, self.published_metric, method, self.backbone)

    def diff(self, method: str) -> SeedPairs | None:
        """`method` minus CAM paired by seed; None for CAM, or without CAM's runs."""
        cam = self.groups.get("cam")
        if method == "cam" or cam is None:
            return None
        return pair_by_seed(self.groups[method], cam, METHOD_METRICS)


def _method_rank(method: str) -> int:
    return METHODS.index(method) if method in METHODS else len(METHODS)


def method_sections(rows: Sequence[dict[str, Any]]) -> list[MethodSection]:
    """The sections of `rows` (method_rows) with a method other than CAM: by dataset, network and
    protocol; sections with held-out thresholds first."""
    sections = []
    by_key = group_by(rows, lambda r: (r["data"], r["network"], r["protocol"]))
    for (data, network, protocol), members in by_key.items():
        if all(r["method"] == "cam" for r in members):
            continue
        groups = {}
        by_method = group_by(members, lambda r: r["method"])
        for method in sorted(by_method, key=lambda m: (_method_rank(m), m)):
            part = by_method[method]
            first = part[0]
            group = Group(data, METHOD_TITLES.get(method, method), first["paper_name"],
                          first["variant"], first["pool"], first["map_size"], first["evidence"],
                          protocol, list(part))  # fmt: skip
            group.fold()  # one run per checkpoint: a second evaluation is not a second seed
            groups[method] = group
        first = members[0]
        sections.append(MethodSection(data, network, protocol, first["variant"],
                                      first["published_data"], groups))  # fmt: skip
    return sort_sections(sections)


def stat_columns(
    row: dict[str, Any], g: Group, diff: SeedPairs | None, metrics: Sequence[str],
    diff_metrics: Sequence[str],
) -> None:  # fmt: skip
    """Add a CSV row's statistics: each metric's mean and std over the group's seeds, the seeds
    paired with CAM, and each of `diff_metrics` minus CAM (COMPARISON_STATS; None without a
    pair)."""
    for metric in metrics:
        stat = g.stat(metric)
        row[f"{metric}_mean"] = stat.mean if stat else None
        row[f"{metric}_std"] = stat.std if stat else None
    row["minus_cam_seeds"] = " ".join(map(str, diff.seeds)) if diff else None
    for metric in diff_metrics:
        values = diff.csv_values(metric) if diff else dict.fromkeys(COMPARISON_STATS)
        for key, value in values.items():
            row[f"{metric}_minus_cam_{key}"] = value


def sort_sections(sections: list[Any]) -> list[Any]:
    """Sections (of this table or table_posthoc's) by data and network, those with held-out
    MaxBoxAccV2 first, then by protocol."""
    heldout = {id(s): any(g.stat("maxboxacc_v2_heldout") for g in s.groups.values())
               for s in sections}  # fmt: skip
    return sorted(sections, key=lambda s: (s.data, s.network, not heldout[id(s)], s.protocol))


METHODS_NOTE = (
    "Each row: the runs of one WSOL method (cam-train method=<name>, configs/method/; "
    "metrics.json's `method`) on one network, dataset and protocol, mean +- std over seeds "
    "(seeds: the networks counted; two evaluations of one checkpoint count once, noted). "
    "MaxBoxAccV2, held-out thr.: at each IoU level's threshold that was best on another cam-eval "
    "run of the same network (cam-eval threshold_from), on images disjoint from those scored "
    "(checked): the split is named in the section's title and the row's protocol note; "
    "MaxBoxAccV2, oracle thr.: at the best thresholds on the scored images themselves, an upper "
    "bound. top-1 loc and GT-known loc err: the paper's box rule at the protocol's CAM threshold "
    "(chosen on that held-out split too when the protocol says 'threshold from'). PxAP: on the "
    "foreground masks. n/a: not defined or not measured, the reason in a note. Lower error is "
    "better; higher MaxBoxAccV2 and PxAP are better."
)
DIFF_NOTE = (
    "Each method minus CAM, paired by seed: the mean over the seeds both have, its 95% t interval "
    "over seeds [low, high] (mean +- t_{0.975, n-1} * sd / sqrt(n)) and how many seeds share the "
    "mean's sign; one seed: no interval (n=1). An interval that holds 0: these seeds do not show "
    "a difference. Negative error differences and positive MaxBoxAccV2 / PxAP differences favour "
    "the method."
)


def _published_note(section: MethodSection) -> str:
    """The line under a section on the published numbers beside it (or why there are none)."""
    if section.published("cam") is None:
        return (
            "Published: none for this network and data (Choe et al. report VGG16, InceptionV3 "
            "and ResNet50 on ImageNet, CUB and OpenImages; all their numbers are in the last "
            "table)."
        )
    return (
        f"published: Choe et al.'s {section.published_metric} of their {section.backbone} on "
        f"{section.published_data} (test split; CAM absolute, the other methods their published "
        "difference from CAM), beside ours, not a measurement of our network (see the last table "
        "for the citation)."
    )


def methods_markdown(sections: Sequence[MethodSection]) -> str:
    """table_methods.md: per section, the methods' means, their differences from CAM, and the
    published numbers at the end with their citation."""
    lines = ["# WSOL methods beside CAM: one recipe, one protocol", "", METHODS_NOTE, "",
             DIFF_NOTE, ""]  # fmt: skip
    for section in sections:
        show = section.published("cam") is not None
        header = ["method", "seeds", *(METRIC_NAMES[m] for m in METHOD_METRICS)]
        header += [f"published {section.published_metric}"] * show + ["protocol"]
        body, notes = [], Notes()
        for method, g in section.groups.items():
            row = [g.name, g.seeds_cell(notes)]
            row += [g.cell(m, METRIC_NAMES[m], notes) for m in METHOD_METRICS]
            row += [section.published(method) or ""] * show
            body.append([*row, notes.mark(g.note())])
        lines += [f"## {section.title}", "", *markdown_table(header, body), ""]
        lines += notes.lines() + undigested(section.groups.values())
        diffs = [(m, section.diff(m)) for m in section.groups if m != "cam"]
        if "cam" not in section.groups:
            lines += ["No CAM runs in this section: no method can be paired with CAM.", ""]
        else:
            header = ["method - CAM", "seeds", *(METRIC_NAMES[m] for m in METHOD_METRICS)]
            rows = [[f"{METHOD_TITLES.get(m, m)} - CAM", d.seeds_text]
                    + [d.cell(metric) for metric in METHOD_METRICS]
                    for m, d in diffs if d is not None]  # fmt: skip
            lines += [*markdown_table(header, rows), ""]
        lines += [_published_note(section), ""]
    lines += published_markdown()
    return "\n".join(lines)


def published_markdown() -> list[str]:
    """Choe et al.'s table as published, every cell from paper.WSOL_PUBLISHED, with its
    citation."""
    header = ["method"] + [f"{data} {metric} {backbone}" for (data, metric) in WSOL_PUBLISHED
                           for backbone in WSOL_BACKBONES]  # fmt: skip
    body = [[METHOD_TITLES[method]] + [wsol_published(data, metric, method, backbone) or ""
                                       for (data, metric) in WSOL_PUBLISHED
                                       for backbone in WSOL_BACKBONES]
            for method in METHODS]  # fmt: skip
    return [
        "## Published: Choe et al. under their protocol",
        "",
        f"{WSOL_CITATION}. CAM's values are absolute, the other methods' their published "
        "differences from CAM (%); on their datasets and backbones, not ours.",
        "",
        *markdown_table(header, body),
        "",
    ]


def methods_csv(sections: Sequence[MethodSection]) -> str:
    """One row per section and method: mean and std of every metric, the difference from CAM
    (COMPARISON_STATS per metric; none for CAM), the published cell, then the row's provenance
    (table_cam.Group.provenance), its undefined cells and its runs' notes."""
    rows = []
    for section in sections:
        for method, g in section.groups.items():
            row: dict[str, Any] = {"data": section.data, "network": section.network,
                                   "protocol": section.protocol, "method": method,
                                   "variant": g.variant, "seeds": " ".join(map(str, g.seeds)),
                                   "n": len(g.rows)}  # fmt: skip
            stat_columns(row, g, section.diff(method), METHOD_METRICS, METHOD_METRICS)
            cell = section.published(method)
            row.update({
                "published": cell,
                "published_of": (f"{section.published_metric}, {section.backbone}, "
                                 f"{section.published_data}") if cell else None,
                "published_kind": None if cell is None else
                "absolute" if method == "cam" else "difference from CAM",
            })  # fmt: skip
            notes = Notes()
            for metric in METHOD_METRICS:
                g.cell(metric, metric, notes)
            row["undefined"] = " | ".join(notes.marks) or None
            row["runs_note"] = " | ".join(g.run_notes()) or None
            rows.append({**row, **g.provenance})
    columns = ["data", "network", "protocol", "method", "variant", "seeds", "n"]
    columns += [f"{m}_{s}" for m in METHOD_METRICS for s in ("mean", "std")]
    columns += ["minus_cam_seeds"]
    columns += [f"{m}_minus_cam_{s}" for m in METHOD_METRICS for s in COMPARISON_STATS]
    columns += ["published", "published_of", "published_kind", *PROVENANCE_COLUMNS, "checkpoints",
                "undefined", "runs_note"]  # fmt: skip
    return to_csv(rows, columns)
