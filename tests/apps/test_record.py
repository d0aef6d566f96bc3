"""cam-reproduce's record check (cam_repro/reproduce/record.py): the pure comparison of two
summary.csv tables on hand-built rows, the files around it, and how the record is found."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

import pytest

from cam_repro.reproduce.config import reproduce_config
from cam_repro.reproduce.record import (
    RECORD_METRICS,
    check_record,
    find_record,
    packaged_record,
    read_summary,
    record_check,
)
from cam_repro.runtime.errors import InputFileError, MissingFileError

DATA = "synthetic (parts)"
SETTINGS = asdict(reproduce_config({}))
NAMES = {"record": "rec/summary.csv", "shown": "rec/summary.csv", "page": "out/record_check.md"}


def row(variant: str, seed: int, loc: float, data: str = DATA) -> dict[str, str]:
    """A summary.csv row as csv.DictReader gives it: loc_top1_err `loc`, the others fixed."""
    metrics = {"cls_top1_err": 5.0, "loc_top1_err": loc, "loc_top5_err": 10.0,
               "gt_known_loc_err": 9.0, "maxboxacc_v2": 80.0}  # fmt: skip
    return {"variant": variant, "seed": str(seed), "data": data, "paper_name": variant,
            **{k: f"{v:.4f}" for k, v in metrics.items()}}  # fmt: skip


def check(ours: list[dict[str, str]], theirs: list[dict[str, str]], recorded=None):
    return check_record(ours, theirs, settings=SETTINGS, recorded=recorded, **NAMES)


def test_equal_tables_are_within_and_equal_at_every_value() -> None:
    record = [row("tiny_gap", s, 10.0 + 2 * s) for s in range(3)]
    result = check(record, record)
    n = 3 * len(RECORD_METRICS)
    assert result.verdict == (
        f"record check: {n}/{n} values within the record's mean +- 2 std over seeds ({n} equal "
        "to the record's row of the same seed); out/record_check.md"
    )
    assert result.text.startswith("# This run against the record (rec/summary.csv)\n")
    assert result.text.endswith(result.verdict.removeprefix("record check: ") + "\n")
    assert "NO |" not in result.text and "other settings" not in result.text


def test_a_value_outside_the_spread_is_marked_and_counted() -> None:
    # record: loc err 10, 12, 14 (mean 12, std 2: within [8, 16]); 16.5 is outside
    record = [row("tiny_gap", s, 10.0 + 2 * s) for s in range(3)]
    result = check([row("tiny_gap", 0, 16.5)], record)
    assert result.verdict.startswith("record check: 4/5 values within")
    assert "(4 equal to the record's row of the same seed)" in result.verdict
    line = (
        "| tiny_gap | synthetic (parts) | 0 | top-1 loc err | 16.50 | 10.00 | 12.00 +- 2.00 (3) |"
    )
    assert f"{line} NO |" in result.text.splitlines()


def test_one_recorded_seed_has_no_spread_and_a_new_seed_no_same_seed_value() -> None:
    result = check([row("tiny_gap", 7, 30.0), row("tiny_gap", 8, 30.5)], [row("tiny_gap", 0, 30.0)])
    # std 0: only the equal value is within; seeds 7 and 8 have no row of their own in the record
    assert result.verdict.startswith("record check: 9/10 values within")
    assert "(0 equal" in result.verdict
    line = (
        "| tiny_gap | synthetic (parts) | 8 | top-1 loc err | 30.50 |  | 30.00 +- 0.00 (1) | NO |"
    )
    assert line in result.text.splitlines()


def test_rows_without_a_counterpart_are_left_out() -> None:
    record = [row("tiny_gap", 0, 10.0)]
    mixed = check([row("tiny_gap", 0, 10.0), row("other", 0, 1.0), row("tiny_gap", 0, 1.0, "x")],
                  record)  # fmt: skip
    assert mixed.verdict.startswith("record check: 5/5 values within")  # tiny_gap on DATA only
    assert "| other |" not in mixed.text
    # a missing row in the record: nothing to compare, said so
    none = check([row("other", 0, 1.0)], record)
    assert none.verdict == "record check: no row of this run has a counterpart in rec/summary.csv"


def test_an_empty_value_is_not_compared() -> None:
    ours = [{**row("tiny_gap", 0, 10.0), "maxboxacc_v2": ""}]  # undefined in this run
    theirs = [row("tiny_gap", 0, 10.0), {**row("tiny_gap", 1, 10.0), "loc_top5_err": ""}]
    assert check(ours, theirs).verdict.startswith("record check: 3/3 values within")


def test_a_record_of_other_settings_is_said_to_be_one() -> None:
    record = [row("tiny_gap", 0, 10.0)]
    other = {**SETTINGS, "epochs": 4, "runtime": {**SETTINGS["runtime"], "amp": "none"}}
    text = check(record, record, recorded=other).text
    assert "The record was made with other settings (epochs, runtime.amp)" in text
    assert "other settings" not in check(record, record, recorded=SETTINGS).text
    # a record made before width_mult was a key: width 1
    old = {k: v for k, v in SETTINGS.items() if k != "width_mult"}
    assert "(width_mult)" in check(record, record, recorded=old).text


def _summary(folder: Path, rows: list[dict[str, str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "summary.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder / "summary.csv"


def test_record_check_reads_the_tables_and_command_txt_and_writes_its_page(tmp_path: Path) -> None:
    record = _summary(tmp_path / "record", [row("tiny_gap", s, 10.0 + 2 * s) for s in range(3)])
    _summary(tmp_path / "out", [row("tiny_gap", 0, 15.9)])
    verdict = record_check(tmp_path / "out", record, SETTINGS)
    assert verdict.endswith(f"; {tmp_path / 'out' / 'record_check.md'}")
    text = (tmp_path / "out" / "record_check.md").read_text()
    assert f"# This run against the record ({record})" in text and "other settings" not in text
    (tmp_path / "record" / "command.txt").write_text(
        f"$ cam-reproduce\nsettings: {json.dumps({**SETTINGS, 'epochs': 4})}\n"
    )
    record_check(tmp_path / "out", record, SETTINGS)
    text = (tmp_path / "out" / "record_check.md").read_text()
    assert "The record was made with other settings (epochs)" in text


def test_a_file_that_is_no_summary_csv_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "summary.csv").write_text("variant,seed\ntiny_gap,0\n")
    with pytest.raises(InputFileError, match=r"summary.csv: not a cam-report summary.csv \(no "):
        read_summary(tmp_path / "summary.csv")


def test_the_record_is_found_packaged_given_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # this checkout's (an editable install): the repository's results/synthetic
    packaged = packaged_record()
    assert packaged.parent.name == "synthetic" and packaged.name == "summary.csv"
    assert read_summary(packaged)  # the committed rows have the columns the check reads
    assert find_record("auto", tmp_path) == packaged
    assert find_record("auto", packaged.parent) is None  # regenerating the record itself
    assert find_record(str(tmp_path / "new" / "summary.csv"), tmp_path / "new") is None
    assert find_record("off", tmp_path) is None
    given = _summary(tmp_path / "mine", [row("tiny_gap", 0, 10.0)])
    assert find_record(str(given), tmp_path) == given
    with pytest.raises(MissingFileError, match=r"^record=nowhere.csv: no such summary.csv$"):
        find_record("nowhere.csv", tmp_path)
    # neither installed nor beside the package: an error, not a silent skip
    monkeypatch.setattr("cam_repro.reproduce.record.RECORD_PACKAGE", "cam_repro.no_record")
    monkeypatch.setattr("cam_repro.reproduce.record.__file__", str(tmp_path / "a" / "b" / "r.py"))
    with pytest.raises(MissingFileError, match=r"^record=auto: the packaged record .* record=off$"):
        find_record("auto", tmp_path)
