"""torch-cam's post-hoc maps beside CAM (table_posthoc.md, table_posthoc.csv): which map localizes
best, at what cost. For every dataset, network and protocol whose cam-eval runs include one with
localizer=torchcam (metrics.json protocol.localizer), one row per localizer: our CAM (the
baseline), our Grad-CAM, then each torch-cam method in POSTHOC_METHODS' order (a method's runs
with other options, metrics.json protocol.torchcam, are other rows, the options in their label);
mean +- std over seeds; each minus our CAM paired by seed with its 95% t interval
(table_comparisons.pair_by_seed); the whole runs' speed relative to our CAM's on the same
checkpoint; the network passes one map costs (metrics.json posthoc_cost).

The rows are table_cam's summary rows; each localizer's runs are a table_cam `Group` (one run per
checkpoint, its provenance note), so a cell here is measured and noted as in table2.md and
table_methods.md. The speed column is a ratio of whole cam-eval runs (metrics.json num_images /
seconds: loading, data and scoring included), context only: the controlled measurement of a
method's cost is scripts/bench_posthoc.py.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cam_repro.localize.posthoc_methods import POSTHOC_METHODS, localizer_title
from cam_repro.present.runs import PROVENANCE_COLUMNS, EvalRun, Run, posthoc_changes
from cam_repro.present.stats import group_by
from cam_repro.present.table_cam import Group, summary_rows
from cam_repro.present.table_comparisons import COMPARISON_STATS, SeedPairs, pair_by_seed
from cam_repro.present.table_methods import (
    METRIC_NAMES,
    measured_reasons,
    sort_sections,
    stat_columns,
)
from cam_repro.present.table_rows import Notes, markdown_table, seed_of, to_csv, undigested
from cam_repro.runtime.metrics_file import EvalMetrics

# The table's metrics in its column order, and those its second block takes minus our CAM.
POSTHOC_METRICS = ("loc_top1_err", "gt_known_loc_err", "maxboxacc_v2_heldout", "maxboxacc_v2",
                   "pxap")  # fmt: skip
DIFF_METRICS = ("gt_known_loc_err", "maxboxacc_v2_heldout", "pxap")
CAM_LABEL = "CAM (ours)"  # the baseline row: localizer=cam
GRADCAM_LABEL = "Grad-CAM (ours)"
SPEED_HEADER = "maps/s vs CAM (whole-run ratio)"
SPEED_STATS = ("median", "min", "max", "n")
_METHOD_RANK = {name: rank for rank, name in enumerate(POSTHOC_METHODS)}


def _prefix(record: EvalMetrics) -> str:
    """The localizer's title before the network's name (evaluate/summary.py), with " on "."""
    torchcam = record.protocol.torchcam
    title = localizer_title(record.protocol.localizer, torchcam.method if torchcam else None)
    return f"{title} on " if title else ""


def posthoc_network(record: EvalMetrics) -> str:
    """The network's paper name without the localizer's title ('Score-CAM on Tiny-GAP' ->
    'Tiny-GAP')."""
    prefix = _prefix(record)
    name = record.paper_name
    return name[len(prefix) :] if prefix and name.startswith(prefix) else name


def _localizer(record: EvalMetrics, protocol: str) -> tuple[tuple[int, int, int], str, str]:
    """A run's row in its section: (its rank, its label, its section's protocol). The settings
    that name a localizer's variant (Grad-CAM's layer; a torch-cam method's layer and options,
    runs.posthoc_changes) move from the run's protocol (runs.EvalRun.protocol) into its label,
    so that the variants stand in the section of the network's other localizers."""
    given = record.protocol
    if given.localizer == "cam":
        return (0, 0, 0), CAM_LABEL, protocol
    if given.localizer == "gradcam":
        title, rank = GRADCAM_LABEL, (1, 0)
        variant = [f"gradcam layer {given.gradcam_layer}"] if given.gradcam_layer else []
    else:
        method = given.torchcam.method
        title, rank = POSTHOC_METHODS[method].title, (2, _METHOD_RANK[method])
        variant = posthoc_changes(given.torchcam)
    parts = protocol.split(", ") if protocol else []
    rest = ", ".join(p for p in parts if p not in variant)
    shown = [p.removeprefix("gradcam ").removeprefix("torchcam ") for p in variant]
    label = title + (f" ({', '.join(shown)})" if shown else "")
    return (*rank, bool(variant)), label, rest


def posthoc_rows(runs: Iterable[Run]) -> list[dict[str, Any]]:
    """table_cam's summary rows of the eval runs by our CAM, our Grad-CAM and torch-cam's
    methods (Backprop's saliency is not a CAM: left out), with `localizer`, `label`, `rank`,
    `network`, `section_protocol`, `pxap`, `images_per_s` (num_images / seconds, the whole run),
    `passes` ((forward, backward) per map, torch-cam's only), `torchcam` and `cost` (metrics.json
    protocol.torchcam and posthoc_cost) and the reasons of the cells a run did not measure."""
    runs = list(runs)
    by_path = {str(run.path): run for run in runs if isinstance(run, EvalRun)}
    rows = []
    for row in summary_rows(runs):
        record = by_path[row["run"]].record
        if record.protocol.localizer not in ("cam", "gradcam", "torchcam"):
            continue
        if record.protocol.localizer == "torchcam" and record.protocol.torchcam is None:
            continue  # cannot be: cam-eval records the method of every torchcam run
        rank, label, protocol = _localizer(record, row["protocol"])
        reasons = measured_reasons(row, record)
        cost = record.posthoc_cost
        rate = record.num_images / record.seconds if record.seconds > 0 else None
        rows.append({**row, "localizer": record.protocol.localizer, "label": label,
                     "rank": rank, "network": posthoc_network(record),
                     "section_protocol": protocol, "pxap": record.pxap, "images_per_s": rate,
                     "torchcam": record.protocol.torchcam, "cost": cost,
                     "passes": None if cost is None else (cost.forward_passes_per_map,
                                                          cost.backward_passes_per_map),
                     "reasons": reasons})  # fmt: skip
    return rows


def passes_text(forward: int, backward: int) -> str:
    """A map's passes of the network beyond the evaluation's forward pass: '49 fwd', '1 bwd',
    '4 fwd + 4 bwd', '0'."""
    parts = [f"{forward} fwd"] * bool(forward) + [f"{backward} bwd"] * bool(backward)
    return " + ".join(parts) or "0"


@dataclass
class PosthocSection:
    """Our CAM, our Grad-CAM and torch-cam's methods on one network, dataset and protocol."""

    data: str
    network: str
    protocol: str
    groups: dict[str, Group]  # by row label: our CAM, our Grad-CAM, torch-cam's in their order

    @property
    def title(self) -> str:
        return f"{self.data}: {self.network}" + (f", {self.protocol}" if self.protocol else "")

    def diff(self, label: str) -> SeedPairs | None:
        """The row minus our CAM paired by seed; None for our CAM, or without its runs."""
        cam = self.groups.get(CAM_LABEL)
        if label == CAM_LABEL or cam is None:
            return None
        return pair_by_seed(self.groups[label], cam, DIFF_METRICS)

    def speed(self, label: str) -> list[float]:
        """The row's images/s over our CAM's, per seed paired with it (pair_by_seed: one network
        per seed in each): whole cam-eval runs of the same checkpoint; [] without pairs."""
        diff = self.diff(label)
        if diff is None:
            return []
        rows = {seed_of(r): r for r in self.groups[label].rows}
        cams = {seed_of(r): r for r in self.groups[CAM_LABEL].rows}
        ratios = [(rows[s]["images_per_s"], cams[s]["images_per_s"]) for s in diff.seeds]
        return [a / b for a, b in ratios if a is not None and b]

    def speed_cell(self, label: str) -> str:
        """'0.125 [0.1, 0.15]' (median [min, max] over the seeds), '0.125' with one, 'n/a'."""
        if label == CAM_LABEL:
            return "1 (baseline)"
        ratios = self.speed(label)
        if not ratios:
            return "n/a"
        median = f"{statistics.median(ratios):.3g}"
        return median if len(ratios) == 1 else f"{median} [{min(ratios):.3g}, {max(ratios):.3g}]"

    def speed_values(self, label: str) -> dict[str, Any]:
        """The speed ratios as the CSV's SPEED_STATS (None without any)."""
        ratios = self.speed(label)
        if not ratios:
            return dict.fromkeys(SPEED_STATS)
        return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios),
                "n": len(ratios)}  # fmt: skip


def _passes(group: Group) -> list[tuple[int, int]]:
    """The distinct (forward, backward) passes per map of the group's runs."""
    return list(dict.fromkeys(r["passes"] for r in group.rows if r["passes"] is not None))


def passes_cell(group: Group) -> str:
    """The passes-per-map cell: '—' for our CAM (its maps come with the forward pass), '1 bwd'
    for our Grad-CAM (one autograd.grad per map, localize/gradcam.py), torch-cam's from
    metrics.json posthoc_cost ('/' between runs that differ)."""
    kind = group.rows[0]["localizer"]
    if kind == "cam":
        return "—"
    if kind == "gradcam":
        return "1 bwd"
    return " / ".join(passes_text(*p) for p in _passes(group)) or "n/a"


def _torchcam_note(group: Group) -> str:
    """How a torch-cam row's maps were made, for its provenance note ('' for ours)."""
    first = group.rows[0]
    if first["localizer"] != "torchcam":
        return ""
    given = first["torchcam"]
    options = {k: v for k, v in vars(given).items() if k not in ("method", "layer")}
    shown = ", ".join(f"{k}={v}" for k, v in options.items() if v is not None)
    layers = " / ".join(dict.fromkeys(f"{r['cost'].layer} ({r['cost'].channels} channels)"
                                      for r in group.rows if r["cost"] is not None))  # fmt: skip
    asked = given.layer if given.layer is not None else "default"
    return (f"; torch-cam {given.method}, layer asked {asked}, hooked {layers or 'not recorded'}"
            + (f", {shown}" if shown else ""))  # fmt: skip


def posthoc_sections(rows: Sequence[dict[str, Any]]) -> list[PosthocSection]:
    """The sections of `rows` (posthoc_rows) with a torch-cam run: by dataset, network and
    protocol; sections with held-out thresholds first."""
    sections = []
    by_key = group_by(rows, lambda r: (r["data"], r["network"], r["section_protocol"]))
    for (data, network, protocol), members in by_key.items():
        if not any(r["localizer"] == "torchcam" for r in members):
            continue
        groups = {}
        by_label = group_by(members, lambda r: r["label"])
        for label in sorted(by_label, key=lambda k: (by_label[k][0]["rank"], k)):
            part = by_label[label]
            first = part[0]
            group = Group(data, label, first["paper_name"], first["variant"], first["pool"],
                          first["map_size"], first["evidence"], protocol, list(part))  # fmt: skip
            group.fold()  # one run per checkpoint: a second evaluation is not a second seed
            groups[label] = group
        sections.append(PosthocSection(data, network, protocol, groups))
    return sort_sections(sections)


POSTHOC_NOTE = (
    "Each row: one localizer's maps of the same trained networks, mean +- std over seeds (seeds: "
    "the networks counted; two evaluations of one checkpoint count once, noted): our CAM "
    "(cam-eval localizer=cam, the baseline), our Grad-CAM (localizer=gradcam), and torch-cam's "
    "methods (localizer=torchcam torchcam.method=<name>), a method's runs with other options "
    "(metrics.json protocol.torchcam: layer, num_samples, ...) in rows of their own, the options "
    "in the label. torch-cam's maps are torch-cam 0.5's own, unchanged (normalized=False), then "
    "scored as ours: upsampled, the paper's box rule at the protocol's threshold, MaxBoxAccV2 and "
    "PxAP. MaxBoxAccV2, held-out thr.: at each IoU level's threshold that was best on another "
    "cam-eval run of the same network and localizer (cam-eval threshold_from, its torch-cam "
    "method and options checked equal), on other images of the same classes (checked disjoint); "
    "oracle thr.: at the best thresholds on the scored images themselves, an upper bound. Lower "
    "error is better; higher MaxBoxAccV2 and PxAP are better. n/a: not defined or not measured, "
    "the reason in a note."
)
COST_NOTE = (
    f"{SPEED_HEADER}: the run's images per second (metrics.json num_images / seconds) over our "
    "CAM's run of the same checkpoint (paired by seed), median [min, max] over the seeds. It is "
    "a ratio of whole cam-eval runs (loading, data, scoring and the maps), measured on whatever "
    "machine and load each ran: context, noisy; the controlled measurement of a method's cost is "
    "scripts/bench_posthoc.py. passes per map: the network's forward (fwd) and backward (bwd) "
    "passes one map costs beyond the evaluation's own forward pass (torch-cam's: metrics.json "
    "posthoc_cost; our Grad-CAM's: one autograd.grad per map, localize/gradcam.py, not recorded; "
    "—: none, the map comes with that pass); up to topk + 1 maps per image."
)
DIFF_NOTE = (
    "Each localizer minus our CAM, paired by seed: the mean over the seeds both have, its 95% t "
    "interval over seeds [low, high] (mean +- t_{0.975, n-1} * sd / sqrt(n)) and how many seeds "
    "share the mean's sign; one seed: no interval (n=1). An interval that holds 0: these seeds do "
    "not show a difference. A negative error difference and positive MaxBoxAccV2 / PxAP "
    "differences favour the localizer."
)


def _citations(sections: Sequence[PosthocSection]) -> list[str]:
    """The cited papers of the torch-cam methods in `sections`, in POSTHOC_METHODS' order."""
    used = {r["torchcam"].method for s in sections for g in s.groups.values() for r in g.rows
            if r["torchcam"] is not None}  # fmt: skip
    lines = [f"- {m.title}: {m.citation}" for name, m in POSTHOC_METHODS.items() if name in used]
    return ["Methods (torch-cam 0.5's implementations, torchcam.methods; where one differs from "
            "its paper, said):", "", *lines, ""]  # fmt: skip


def posthoc_markdown(sections: Sequence[PosthocSection]) -> str:
    """table_posthoc.md: per section, the localizers' means, speed and passes per map, their
    differences from our CAM, then the methods' citations."""
    lines = ["# Post-hoc maps beside CAM: which localizes best, at what cost", "", POSTHOC_NOTE,
             "", COST_NOTE, "", DIFF_NOTE, ""]  # fmt: skip
    for section in sections:
        header = ["localizer", "seeds", *(METRIC_NAMES[m] for m in POSTHOC_METRICS),
                  SPEED_HEADER, "passes per map", "protocol"]  # fmt: skip
        body, notes = [], Notes()
        for label, g in section.groups.items():
            row = [label, g.seeds_cell(notes)]
            row += [g.cell(m, METRIC_NAMES[m], notes) for m in POSTHOC_METRICS]
            row += [section.speed_cell(label), passes_cell(g)]
            body.append([*row, notes.mark(g.note() + _torchcam_note(g))])
        lines += [f"## {section.title}", "", *markdown_table(header, body), ""]
        lines += notes.lines() + undigested(section.groups.values())
        if CAM_LABEL not in section.groups:
            lines += ["No runs of our CAM in this section: nothing to pair with.", ""]
            continue
        header = ["localizer - CAM (ours)", "seeds", *(METRIC_NAMES[m] for m in DIFF_METRICS)]
        diffs = [(label, section.diff(label)) for label in section.groups if label != CAM_LABEL]
        rows = [[f"{label} - CAM", d.seeds_text] + [d.cell(m) for m in DIFF_METRICS]
                for label, d in diffs if d is not None]  # fmt: skip
        lines += [*markdown_table(header, rows), ""]
    lines += _citations(sections)
    return "\n".join(lines)


def posthoc_csv(sections: Sequence[PosthocSection]) -> str:
    """One row per section and localizer: mean and std of every metric, the difference from our
    CAM (COMPARISON_STATS per metric; none for CAM), the speed ratio (SPEED_STATS), the passes
    per map, then the row's provenance (table_cam.Group.provenance), its undefined cells and its
    runs' notes."""
    rows = []
    for section in sections:
        for label, g in section.groups.items():
            first = g.rows[0]
            given = first["torchcam"]
            passes = _passes(g)
            row: dict[str, Any] = {
                "data": section.data, "network": section.network, "protocol": section.protocol,
                "localizer": first["localizer"], "label": label,
                "method": given.method if given else first["localizer"],
                "layer": given.layer if given else None, "variant": g.variant,
                "seeds": " ".join(map(str, g.seeds)), "n": len(g.rows),
                "forward_passes_per_map": " / ".join(str(f) for f, _ in passes) or None,
                "backward_passes_per_map": " / ".join(str(b) for _, b in passes) or None,
            }  # fmt: skip
            stat_columns(row, g, section.diff(label), POSTHOC_METRICS, DIFF_METRICS)
            for key, value in section.speed_values(label).items():
                row[f"speed_vs_cam_{key}"] = value
            notes = Notes()
            for metric in POSTHOC_METRICS:
                g.cell(metric, metric, notes)
            row["undefined"] = " | ".join(notes.marks) or None
            row["runs_note"] = " | ".join(g.run_notes()) or None
            rows.append({**row, **g.provenance})
    columns = ["data", "network", "protocol", "localizer", "label", "method", "layer", "variant",
               "seeds", "n"]  # fmt: skip
    columns += [f"{m}_{s}" for m in POSTHOC_METRICS for s in ("mean", "std")]
    columns += ["minus_cam_seeds"]
    columns += [f"{m}_minus_cam_{s}" for m in DIFF_METRICS for s in COMPARISON_STATS]
    columns += [f"speed_vs_cam_{s}" for s in SPEED_STATS]
    columns += ["forward_passes_per_map", "backward_passes_per_map", *PROVENANCE_COLUMNS,
                "checkpoints", "undefined", "runs_note"]  # fmt: skip
    return to_csv(rows, columns)
