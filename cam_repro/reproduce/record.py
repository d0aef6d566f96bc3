"""The committed record (results/synthetic, installed as `cam_repro.record`): found, and this
run's summary.csv checked against it (OUT/record_check.md).

`check_record` is the check itself, a pure function over the two tables' rows; `record_check`
reads the files, calls it and writes its page.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.resources
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cam_repro.present.stats import Stat
from cam_repro.runtime.errors import InputFileError, MissingFileError
from cam_repro.runtime.files import write_text_atomic

# The repository's results/synthetic, mapped into the package by pyproject.toml (package-data:
# the files the check reads, summary.csv and command.txt).
RECORD_PACKAGE = "cam_repro.record"
# What the check compares: summary.csv's metric columns.
RECORD_METRICS = {
    "cls_top1_err": "top-1 cls err",
    "loc_top1_err": "top-1 loc err",
    "loc_top5_err": "top-5 loc err",
    "gt_known_loc_err": "GT-known loc err",
    "maxboxacc_v2": "MaxBoxAccV2",
}


def packaged_record() -> Path:
    """The record's summary.csv: in the installed package (a wheel, `pip install .`) or, in an
    editable install (whose finder maps top-level packages only), the repository's
    results/synthetic beside this package, as `apps.CONFIG_DIR` finds the configs."""
    candidates = []
    with contextlib.suppress(ModuleNotFoundError):  # installed unzipped (as wheels are): a file
        candidates.append(Path(str(importlib.resources.files(RECORD_PACKAGE) / "summary.csv")))
    candidates.append(Path(__file__).resolve().parents[2] / "results" / "synthetic" / "summary.csv")
    for path in candidates:
        if path.is_file():
            return path
    raise MissingFileError(
        f"record=auto: the packaged record ({RECORD_PACKAGE}: results/synthetic/summary.csv) is "
        "not installed: reinstall the package (pip install . or pip install -e .), or pass "
        "record=off"
    )


def find_record(record: str, out: Path) -> Path | None:
    """The summary.csv that `record` (auto | off | a path) names; None for off, and when this
    run writes the record itself (OUT is its folder). Called before the run's work, so a record
    that is not there fails at once."""
    if record == "off":
        return None
    path = packaged_record() if record == "auto" else Path(record)
    if path.resolve() == (out / "summary.csv").resolve():  # regenerating the record itself
        return None
    if not path.is_file():
        raise MissingFileError(f"record={record}: no such summary.csv")
    return path


def read_summary(path: Path) -> list[dict[str, str]]:
    """A cam-report summary.csv's rows (an error if it lacks the columns the check needs)."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {"variant", "seed", "data", *RECORD_METRICS} - set(rows[0] if rows else {})
    if missing:
        raise InputFileError(f"{path}: not a cam-report summary.csv (no {', '.join(missing)})")
    return rows


def recorded_settings(command: Path) -> dict[str, Any] | None:
    """The settings line of a record's command.txt (None: no such file or line)."""
    if not command.is_file():
        return None
    for line in command.read_text().splitlines():
        if line.startswith("settings: "):
            return json.loads(line[len("settings: ") :])
    return None


def comparable(settings: dict[str, Any]) -> dict[str, Any]:
    """What a run must share with the record for its numbers to be comparable at all, from its
    settings (asdict(ReproduceConfig), as command.txt records them; width 1 before the key)."""
    return {"epochs": settings.get("epochs"), "width_mult": settings.get("width_mult", 1.0),
            "synth": settings.get("synth"),
            "runtime.amp": (settings.get("runtime") or {}).get("amp")}  # fmt: skip


@dataclass
class RecordCheck:
    """The check's outcome: record_check.md's text and the one-line verdict for the log."""

    text: str
    verdict: str


INTRO = (
    "Exact numbers depend on the CPU (bf16 kernels differ between CPUs), the precision and the "
    "thread count: the same settings on the same machine give identical numbers, other machines "
    "a seed's worth of noise. A value is within the record if it lies in the record's mean +- 2 "
    "std over its seeds (same data, same model)."
)


# What makes two summary.csv rows the same measurement: the network, its method (in the paper
# name: "Tiny-GAP (HaS)"), the data and how it was scored (a held-out threshold's row is not a
# fixed one's).
_KIND_COLUMNS = ("variant", "paper_name", "data", "protocol", "threshold_chosen",
                 "maxboxacc_threshold_chosen")  # fmt: skip


def _kind(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(row.get(key, "") for key in _KIND_COLUMNS)


def check_record(
    ours: list[dict[str, str]], theirs: list[dict[str, str]], *, settings: dict[str, Any],
    recorded: dict[str, Any] | None, record: str, shown: str, page: str,
) -> RecordCheck:  # fmt: skip
    """Compare this run's summary.csv rows (`ours`, made with `settings`) with the record's
    (`theirs`, made with `recorded`; None: unknown), row by row of the same data and model.

    Exact numbers depend on the CPU (bf16 kernels differ between CPUs), the precision and the
    thread count, so the test is the record's spread: a value is "within" if it lies in the
    record's mean +- 2 std over its seeds. Whether the record's row of the same seed is equal
    to this run's is reported beside it. `record` and `shown` name the record in the verdict and
    in the page's title, `page` where the page is written (the verdict names it).
    """
    lines = [f"# This run against the record ({shown})", "", INTRO, ""]
    mine = comparable(settings)
    if recorded is not None and comparable(recorded) != mine:
        differ = [k for k, v in comparable(recorded).items() if v != mine[k]]
        lines += [f"The record was made with other settings ({', '.join(differ)}): "
                  "its spread is not this run's.", ""]  # fmt: skip
    lines += [
        "| model | data | seed | metric | this run | record, same seed | record mean +- std "
        "(seeds) | within +- 2 std |",
        "|---|---|---|---|---|---|---|---|",
    ]
    within = compared = equal = 0
    for row in ours:
        same = [r for r in theirs if _kind(r) == _kind(row)]
        if not same:
            continue
        seed_row = next((r for r in same if r["seed"] == row["seed"]), None)
        for key, name in RECORD_METRICS.items():
            if not row[key] or not all(r[key] for r in same):
                continue
            spread = Stat([float(r[key]) for r in same])
            mean, std = spread.mean, spread.std or 0.0
            value = float(row[key])
            ok = abs(value - mean) <= 2 * std + 1e-9
            at_seed = seed_row[key] if seed_row is not None else ""
            compared += 1
            within += ok
            equal += at_seed == row[key]  # summary.csv's 4 decimals, as written
            lines.append(
                f"| {row['paper_name'] or row['variant']} | {row['data']} | {row['seed']} | "
                f"{name} | {value:.2f} | {f'{float(at_seed):.2f}' if at_seed else ''} | "
                f"{mean:.2f} +- {std:.2f} ({len(spread.values)}) | {'yes' if ok else 'NO'} |"
            )
    if not compared:
        verdict = f"record check: no row of this run has a counterpart in {record}"
    else:
        verdict = (
            f"record check: {within}/{compared} values within the record's mean +- 2 std over "
            f"seeds ({equal} equal to the record's row of the same seed); {page}"
        )
    lines += ["", verdict.replace("record check: ", "", 1), ""]
    return RecordCheck("\n".join(lines), verdict)


def _shown(path: Path) -> str:
    """A path as the user would write it: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def record_check(out: Path, record: Path, settings: dict[str, Any]) -> str:
    """Check OUT/summary.csv (made with `settings`) against the record's summary.csv (and the
    settings of the command.txt beside it), write OUT/record_check.md; returns the verdict."""
    page = out / "record_check.md"
    check = check_record(
        read_summary(out / "summary.csv"), read_summary(record), settings=settings,
        recorded=recorded_settings(record.parent / "command.txt"), record=str(record),
        shown=_shown(record), page=str(page),
    )  # fmt: skip
    write_text_atomic(page, check.text)
    return check.verdict
