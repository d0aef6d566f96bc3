"""table_methods.md / .csv: the WSOL methods beside CAM, mean +- std over seeds, each method minus
CAM paired by seed with its t interval, and Choe et al.'s published numbers (present/paper.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import read_csv
from metrics_records import eval_json, write_record

from cam_repro.present.paper import WSOL_CITATION, WSOL_PUBLISHED, wsol_published
from cam_repro.present.report import write_report
from cam_repro.present.runs import collect_runs
from cam_repro.present.stats import t_quantile
from cam_repro.present.table_methods import (
    method_rows,
    method_sections,
    methods_markdown,
    network_name,
)

HELDOUT = "held-out val (parts)"  # the held-out split's name: its label in the tables
PROTOCOL = f"threshold from {HELDOUT}"


def _thresholds() -> dict:
    """metrics.json's thresholds as cam-eval threshold_from writes them, from HELDOUT."""
    record = eval_json(heldout=True)["thresholds"]
    for entry in (record["paper_rule"], *record["maxboxacc"].values()):
        entry["data"] = HELDOUT
    return record


def method_run(root: Path, name: str, method: str, seed: int, values: dict[str, float], *,
               digest: str, variant: str = "tiny_gap", paper: str = "Tiny-GAP",
               data: dict | None = None, pool: str = "gap") -> Path:  # fmt: skip
    """A cam-eval run folder of a checkpoint trained with `method` (its SHA-256 `digest`)."""
    title = {"cam": paper, "has": f"{paper} (HaS)", "acol": f"{paper} (ACoL)"}[method]
    write_record(
        root / name, "eval", method=method, seed=seed, variant=variant, paper_name=title,
        pool=pool, checkpoint=f"/ckpt/{name}.pt", checkpoint_sha256=digest * 64,
        thresholds=_thresholds(), undefined={}, cls_top5_err=1.0,
        protocol={"threshold": 0.25, "threshold_from": "/runs/heldout"},
        data={"name": "synthetic (parts)", **(data or {})}, **values,
    )  # fmt: skip
    return root / name


def _values(cls: float, loc: float, gtk: float, box: float, held: float, pxap: float) -> dict:
    values = {"cls_top1_err": cls, "loc_top1_err": loc, "gt_known_loc_err": gtk,
              "maxboxacc_v2": box, "maxboxacc_v2_heldout": held, "pxap": pxap}  # fmt: skip
    return {key: float(value) for key, value in values.items()}  # as cam-eval writes them


CAM = [_values(10, 30, 20, 70, 65, 60), _values(12, 34, 24, 66, 61, 58),
       _values(14, 32, 22, 68, 63, 59)]  # fmt: skip
HAS = [_values(11, 28, 19, 72, 66, 61), _values(12, 30, 22, 70, 64, 61),
       _values(16, 30, 20, 70, 66, 60)]  # fmt: skip


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """CAM and HaS on Tiny-GAP, 3 seeds each, and HaS's seed 0 checkpoint evaluated twice."""
    root = tmp_path / "runs"
    for seed in range(3):
        method_run(root, f"cam{seed}", "cam", seed, CAM[seed], digest=f"c{seed}")
        method_run(root, f"has{seed}", "has", seed, HAS[seed], digest=f"h{seed}")
    # the same checkpoint again (other numbers): one seed, not a fourth
    method_run(root, "has0b", "has", 0, _values(50, 50, 50, 10, 10, 10), digest="h0")
    return root


def test_means_paired_differences_and_one_seed_per_checkpoint(runs: Path) -> None:
    (section,) = method_sections(method_rows(collect_runs([runs])))
    assert (section.network, section.protocol) == ("Tiny-GAP", PROTOCOL)
    assert list(section.groups) == ["cam", "has"]
    cam, has = section.groups["cam"], section.groups["has"]
    assert cam.seeds == has.seeds == [0, 1, 2]  # has0b folded into has0: same checkpoint
    assert [r["run"].rsplit("/", 1)[1] for r in has.rows] == ["has0", "has1", "has2"]
    # HaS cls: 11, 12, 16 -> mean 13, sample sd sqrt(((-2)^2 + (-1)^2 + 3^2) / 2) = sqrt(7)
    stat = has.stat("cls_top1_err")
    assert stat.mean == pytest.approx(13.0, abs=1e-12)
    assert stat.std == pytest.approx(7**0.5, abs=1e-12)
    assert has.stat("maxboxacc_v2_heldout").mean == pytest.approx(196 / 3, abs=1e-12)
    diff = section.diff("has")
    assert diff.seeds == [0, 1, 2] and not diff.ambiguous
    # held-out MaxBoxAccV2, HaS - CAM per seed: 1, 3, 3: mean 7/3, sd sqrt(4/3), half-width
    # t_{0.975,2} * sd / sqrt(3) = 4.3027 * 0.6667 = 2.8684
    assert diff.diffs["maxboxacc_v2_heldout"] == [1.0, 3.0, 3.0]
    held = diff.stat("maxboxacc_v2_heldout")
    half = t_quantile(0.975, 2) * (4 / 3) ** 0.5 / 3**0.5
    assert half == pytest.approx(2.8684, abs=1e-4)
    assert held.mean == pytest.approx(7 / 3, abs=1e-12)
    assert (held.ci_low, held.ci_high) == pytest.approx((7 / 3 - half, 7 / 3 + half), abs=1e-9)
    assert held.text() == "+2.33 [-0.54, +5.20], 3/3 > 0"
    # top-1 loc: 28-30, 30-34, 30-32 = -2, -4, -2: mean -8/3, the same sd
    assert diff.stat("loc_top1_err").text() == "-2.67 [-5.54, +0.20], 3/3 < 0"
    assert diff.stat("pxap").text() == "+1.67 [-1.20, +4.54], 3/3 > 0"  # 1, 3, 1
    text = methods_markdown([section])
    assert f"## synthetic (parts): Tiny-GAP, {PROTOCOL}" in text
    row = next(line for line in text.splitlines() if line.startswith("| HaS |"))
    # seeds 3 marked with the fold's note; cls 13 +- 2.65; held-out 65.33 +- 1.15
    assert row.startswith("| HaS | 3 [") and "| 13.00 +- 2.65 |" in row
    assert "| 65.33 +- 1.15 | 70.67 +- 1.15 | 60.67 +- 0.58 |" in row
    assert f"checkpoint {'h0' * 6} evaluated 2 times" in text
    assert "they differ in cls_top1_err, loc_top1_err" in text  # has0's numbers shown
    assert "| HaS - CAM | 0 1 2 | " in text and "+2.33 [-0.54, +5.20], 3/3 > 0" in text
    assert f"each the best GT-known accuracy on {HELDOUT} (held out)" in text  # provenance
    assert "Published: none for this network and data" in text  # a synthetic network


def test_the_report_writes_the_methods_table_and_keeps_gap_gmp_among_cams(
    runs: Path, tmp_path: Path
) -> None:
    for seed in range(3):
        method_run(runs, f"gmp{seed}", "cam", seed, CAM[seed], digest=f"g{seed}",
                   variant="tiny_gmp", paper="Tiny-GMP", pool="gmp")  # fmt: skip
    done = write_report([runs], tmp_path / "out")
    assert done["methods"] == 1 and done["comparisons"] == 1  # Tiny-GAP - Tiny-GMP only
    pairs = read_csv(tmp_path / "out" / "comparisons.csv")
    assert [(p["a"], p["b"]) for p in pairs] == [
        (f"Tiny-GAP ({PROTOCOL})", f"Tiny-GMP ({PROTOCOL})")
    ]
    rows = {r["method"]: r for r in read_csv(tmp_path / "out" / "table_methods.csv")}
    assert list(rows) == ["cam", "has"]  # no GMP section: it has CAM only
    has = rows["has"]
    assert (has["seeds"], has["n"], has["minus_cam_seeds"]) == ("0 1 2", "3", "0 1 2")
    assert has["maxboxacc_v2_heldout_minus_cam_mean"] == "2.3333"
    assert has["maxboxacc_v2_heldout_minus_cam_ci_low"] == "-0.5351"
    assert has["maxboxacc_v2_heldout_minus_cam_n_positive"] == "3"
    assert has["maxboxacc_v2_heldout_mean"] == "65.3333"
    assert "evaluated 2 times" in has["runs_note"]
    assert has["maxboxacc_threshold_from"] == HELDOUT and has["threshold_chosen"] == "heldout"
    assert rows["cam"]["maxboxacc_v2_heldout_minus_cam_mean"] == ""  # CAM is the baseline
    assert has["published"] == ""  # nothing published for Tiny-GAP


def test_published_cells_and_their_citation(tmp_path: Path) -> None:
    """VGGnet-GAP on CUB stands beside Choe et al.'s VGG on CUB; every published cell as printed,
    CAM absolute, the others their differences; one citation."""
    root = tmp_path / "cub"
    cub = {"kind": "cub", "name": "CUB-200-2011", "evidence": None}
    for method, digest in (("cam", "a"), ("has", "b"), ("acol", "d")):
        method_run(root, method, method, 0, CAM[0], digest=digest, variant="vgg16_gap",
                   paper="VGGnet-GAP", data=cub)  # fmt: skip
    (section,) = method_sections(method_rows(collect_runs([root])))
    assert section.data == "CUB" and section.backbone == "VGG"
    assert [section.published(m) for m in ("cam", "has", "acol")] == ["63.7", "+0.0", "-6.3"]
    text = methods_markdown([section])
    assert "| published MaxBoxAccV2 | protocol |" in text
    assert next(line for line in text.splitlines() if line.startswith("| ACoL |")).endswith(
        "| -6.3 | [3] |"
    )
    assert text.count(WSOL_CITATION) == 1 and "arXiv 2001.07437" in WSOL_CITATION
    assert "| ACoL | -2.6 | +0.3 | -1.4 | -6.3 | -0.5 | +3.5 | -4.0 | -6.0 | -1.2 |" in text
    assert "| CAM | 60.0 | 63.4 | 63.7 | 63.7 | 56.7 | 63.0 | 58.3 | 63.2 | 58.5 |" in text
    assert WSOL_PUBLISHED[("CUB", "MaxBoxAccV2")]["spg"] == (-7.4, -0.8, -2.6)
    assert wsol_published("ImageNet", "MaxBoxAccV2", "adl", "ResNet") == "+0.0"
    assert wsol_published("CUB", "MaxBoxAccV2", "has", "Tiny") is None  # not published
    assert wsol_published("SUN397", "MaxBoxAccV2", "cam", "VGG") is None


def test_network_names_drop_the_methods_title() -> None:
    assert network_name("VGGnet-GAP (ACoL)", "acol") == "VGGnet-GAP"
    assert network_name("Tiny-GAP", "cam") == "Tiny-GAP"
    assert network_name("Tiny-GAP (HaS)", "cam") == "Tiny-GAP (HaS)"  # not CAM's title to drop
