"""Labels that lie (issue 33, class 4): cam-report counts networks, not evaluations, as seeds
(repeated evaluations of one checkpoint fold into one run, noted; one seed number claimed by two
networks is noted, not merged); a threshold is "held out" only when cam-eval checked that its
images are disjoint from the scored ones (`config.check_held_out`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from test_tables import eval_run

from cam_repro.evaluate.config import check_held_out
from cam_repro.evaluate.outputs import HeldOut, image_key
from cam_repro.present.runs import collect_runs
from cam_repro.present.table_cam import aggregate, summary_rows, table1, table2
from cam_repro.present.table_comparisons import comparisons, comparisons_markdown
from cam_repro.runtime.errors import ConfigError

A, B, C = "a" * 64, "b" * 64, "c" * 64


def _groups(root: Path):
    return aggregate(summary_rows(collect_runs([root])))


def test_repeated_evaluations_of_one_checkpoint_count_once(tmp_path: Path) -> None:
    """Three evaluations of checkpoint A (seed 0) and one of B (seed 1): two seeds, not four;
    the spread is A's and B's, with a note naming the folded folders."""
    for name in ("a1", "a2", "a3"):
        eval_run(tmp_path, name, "Tiny-GAP", 0, 10.0, 20.0, checkpoint_sha256=A)
    eval_run(tmp_path, "b", "Tiny-GAP", 1, 14.0, 20.0, checkpoint_sha256=B)
    (group,) = _groups(tmp_path)
    assert group.seeds == [0, 1] and [len(f) for f in group.folded] == [3]
    text = table1([group])
    # cls top-1 over A and B: mean 12, sd sqrt(8) = 2.83 (not 11.00 +- 2.00 over four "seeds")
    assert "| Tiny-GAP | 12.00 +- 2.83 | 3.00 +- 0.71 | 2 [1] |" in text
    folders = ", ".join(str(tmp_path / n) for n in ("a1", "a2", "a3"))
    assert (f"- [1] checkpoint aaaaaaaaaaaa evaluated 3 times ({folders}): counted once, the "
            "first folder's numbers shown (the same numbers)") in text  # fmt: skip


def test_one_checkpoint_evaluated_twice_has_no_spread(tmp_path: Path) -> None:
    """Two evaluations of one checkpoint that differ (e.g. another device): one run, no +-, and
    the note says in what they differ."""
    eval_run(tmp_path, "x", "Tiny-GAP", 0, 10.0, 20.0, checkpoint_sha256=A)
    eval_run(tmp_path, "y", "Tiny-GAP", 0, 10.5, 20.0, checkpoint_sha256=A)
    text = table2(_groups(tmp_path))
    row = next(line for line in text.splitlines() if line.startswith("| Tiny-GAP |"))
    assert "+-" not in row and "| 10.00 | 1 [1] |" in row
    assert "they differ in cls_top1_err, cls_top5_err)" in text


def test_one_seed_number_claimed_by_two_networks_is_noted_not_merged(tmp_path: Path) -> None:
    """GAP seed 0 is two different checkpoints: both count, the note says so, and the paired
    comparison with GMP leaves seed 0 out instead of pairing one of them silently."""
    eval_run(tmp_path, "gap0a", "Tiny-GAP", 0, 10.0, 20.0, checkpoint_sha256=A)
    eval_run(tmp_path, "gap0b", "Tiny-GAP", 0, 12.0, 22.0, checkpoint_sha256=B)
    eval_run(tmp_path, "gap1", "Tiny-GAP", 1, 11.0, 21.0, checkpoint_sha256=C)
    for seed in (0, 1):
        eval_run(tmp_path, f"gmp{seed}", "Tiny-GMP", seed, 10.0, 30.0, pool="gmp",
                 checkpoint_sha256=str(seed + 1) * 64)  # fmt: skip
    groups = _groups(tmp_path)
    assert groups[0].seeds == [0, 0, 1]
    text = table1(groups)
    assert "| Tiny-GAP | 11.00 +- 1.00 | 2.75 +- 0.25 | 3 [1] |" in text
    assert ("- [1] seed 0 is claimed by 2 different networks (checkpoints aaaaaaaaaaaa, "
            "bbbbbbbbbbbb): each counted as a run") in text  # fmt: skip
    (pair,) = comparisons(groups)
    assert pair.seeds == [1] and pair.ambiguous == [0]
    assert pair.diffs["loc_top1_err"] == [21.0 - 30.0]  # seed 1 only
    assert "| 1 (left out: 0, claimed by several networks) |" in comparisons_markdown([pair])


def test_a_metric_undefined_in_some_seeds_says_over_how_many(tmp_path: Path) -> None:
    why = "no image counts for localization (none has a box of its class, or all are blacklisted)"
    eval_run(tmp_path, "s0", "Tiny-GAP", 0, 10.0, 20.0, checkpoint_sha256=A)
    eval_run(tmp_path, "s1", "Tiny-GAP", 1, 12.0, 24.0, checkpoint_sha256=B)
    eval_run(tmp_path, "s2", "Tiny-GAP", 2, 14.0, 30.0, checkpoint_sha256=C, maxboxacc_v2=None,
             undefined={"maxboxacc_v2": why})  # fmt: skip
    text = table2(_groups(tmp_path))
    row = next(line for line in text.splitlines() if line.startswith("| Tiny-GAP |"))
    # MaxBoxAccV2 over s0 and s1 only (80, 76), the other metrics over all three
    assert "| 78.00 +- 2.83 (2 of 3 runs) [1] | 12.00 +- 2.00 | 3 |" in row
    assert f"- [1] MaxBoxAccV2 undefined in 1 of 3 runs: {why} ({tmp_path / 's2'})" in text
    # undefined in every run: n/a, never a number
    (alone,) = _groups(tmp_path / "s2")
    assert "| n/a [1] |" in table2([alone])


def _data(root: str, *images: tuple[str, list[list[int]]]) -> SimpleNamespace:
    """A DataSplit stand-in: the root and each sample's id and GT boxes."""
    samples = [SimpleNamespace(image_id=i, boxes=np.array(b)) for i, b in images]
    return SimpleNamespace(root=root, samples=samples)


def _heldout(*images: tuple[str, list[list[int]]]) -> HeldOut:
    keys = frozenset(image_key(i, np.array(b)) for i, b in images)
    return HeldOut(Path("/runs/val"), "val", "CUB", "/data/cub", {}, np.arange(2) / 2, 0.5, 90.0,
                   None, None, images=keys)  # fmt: skip


def test_threshold_from_a_run_on_shared_images_is_refused() -> None:
    """Same images (same ids and boxes), at the same or another root: refused in one line;
    another dataset reusing the file names with other boxes: held out, marked checked."""
    val = _heldout(("img_1", [[0, 0, 9, 9]]), ("img_2", [[1, 1, 5, 5]]))
    test = _data("/copy/of/cub", ("img_2", [[1, 1, 5, 5]]), ("img_3", [[0, 0, 3, 3]]))
    with pytest.raises(ConfigError) as err:
        check_held_out(val, test)
    assert str(err.value) == (
        "threshold_from: /runs/val chose its thresholds on 1 of the 2 images scored here "
        "(/copy/of/cub, e.g. img_2), so they are not held out: give a cam-eval run of a disjoint "
        "split (e.g. val when scoring test), or drop threshold_from (this split's best thresholds "
        "are metrics.json's oracle values)"
    )
    other = _data("/synthetic/b", ("img_1", [[2, 2, 9, 9]]), ("img_2", [[0, 0, 1, 1]]))
    assert check_held_out(val, other) == dataclasses.replace(val, checked=True)
