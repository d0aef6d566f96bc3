"""cam-eval's options do what they say, and scoring beside the forward pass changes nothing:
pxap from the command line, which sweeps run, the scoring threads, the background worker."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch
from helpers import CPU, eval_cfg, run_command, run_metrics

import cam_repro.localize.wsol as wsol
from cam_repro.evaluate.localizer import BatchMaps, RawMaps, check_batch
from cam_repro.evaluate.loop import evaluate_run
from cam_repro.runtime.background import Background
from cam_repro.runtime.errors import NonFiniteError


def test_pxap_false_true_auto_from_the_command_line(trained: Path, tmp_path: Path) -> None:
    """Hydra reads pxap=false and pxap=true as booleans: each works, in one multirun."""
    result = run_command(
        tmp_path, "cam-eval", "-m", f"checkpoint={trained}", "pxap=false,true,auto", *CPU,
        "hydra.sweep.dir=sweep",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert [j.name for j in jobs] == ["0_pxap-False", "1_pxap-True", "2_pxap-auto"]
    off, on, auto = (run_metrics(j)["pxap"] for j in jobs)
    assert off is None
    assert on is not None and on == auto and 0 < auto <= 100


def _count_sweeps(monkeypatch) -> dict[str, int]:
    """Count the sweep kernels' calls (from any thread) and the maps they sweep."""
    calls = {"sweeps": 0, "maps": 0}
    kernel = wsol.sweep_hits

    def counted(maps, *args):
        calls["sweeps"] += 1
        calls["maps"] += len(maps)
        return kernel(maps, *args)

    monkeypatch.setattr(wsol, "sweep_hits", counted)
    return calls


@pytest.mark.parametrize(
    ("options", "sweeps", "files"),
    [
        (["maxboxacc=false"], 0, False),  # the paper's errors only: no sweep at all
        ([], 1, False),  # MaxBoxAccV2's sweep; the paper rule's only when asked
        (["sweep=true"], 2, True),
        (["sweep=true", "maxboxacc=false"], 1, True),
    ],
    ids=["no-maxboxacc", "default", "sweep", "sweep-only"],
)
def test_only_the_sweeps_asked_for_run(
    trained: Path, tmp_path: Path, monkeypatch, options: list[str], sweeps: int, files: bool
) -> None:
    calls = _count_sweeps(monkeypatch)
    metrics = evaluate_run(eval_cfg(f"checkpoint={trained}", *options), tmp_path)
    assert calls["maps"] == sweeps * metrics["num_loc_images"]  # one sweep per map and kind
    assert (tmp_path / "sweep.csv").is_file() == files
    maxboxacc = "maxboxacc=false" not in options
    assert (metrics["maxboxacc_v2"] is not None) == maxboxacc
    assert (metrics["pxap"] is not None) == maxboxacc  # pxap=auto goes with MaxBoxAccV2
    assert metrics["protocol"]["sweep"] == files


def test_pxap_true_without_maxboxacc_scores_pxap_alone(
    trained: Path, tmp_path: Path, monkeypatch
) -> None:
    calls = _count_sweeps(monkeypatch)
    alone = evaluate_run(eval_cfg(f"checkpoint={trained}", "maxboxacc=false", "pxap=true"),
                         tmp_path / "alone")  # fmt: skip
    both = evaluate_run(eval_cfg(f"checkpoint={trained}"), tmp_path / "both")
    assert calls["maps"] == both["num_loc_images"]  # only the default run swept
    assert alone["maxboxacc_v2"] is None and alone["pxap"] == both["pxap"]


def _outputs(run_dir: Path) -> dict[str, object]:
    metrics = run_metrics(run_dir)
    metrics.pop("seconds")
    return {
        "metrics": metrics,
        **{n: (run_dir / n).read_text() for n in ("predictions.csv", "sweep.csv", "table.md")},
    }


def test_scoring_threads_change_nothing(trained: Path, tmp_path: Path) -> None:
    """Batches of 5 (uneven last batch) scored in the main thread, one worker, three workers:
    the same rows, sweeps and metrics to the last digit."""
    common = [f"checkpoint={trained}", "sweep=true", "data.batch_size=5", "all_boxes=true"]
    got = {}
    for threads in (0, 1, 3):
        run_dir = tmp_path / str(threads)
        evaluate_run(eval_cfg(*common, f"score_threads={threads}"), run_dir)
        got[threads] = _outputs(run_dir)
    assert got[1] == got[0] and got[3] == got[0]
    assert got[0]["metrics"]["num_images"] == 48 and got[0]["metrics"]["pxap"] is not None


def test_bad_score_threads_is_refused(trained: Path, tmp_path: Path) -> None:
    from cam_repro.runtime.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^score_threads must be >= 0, got -1$"):
        evaluate_run(eval_cfg(f"checkpoint={trained}", "score_threads=-1"), tmp_path)


def test_non_finite_maps_stop_before_upsampling() -> None:
    logits = torch.zeros(2, 3)
    raw = torch.ones(2, 4, 3, 3)
    raw[1, 2, 0, 0] = float("nan")
    out = RawMaps(logits, torch.zeros(2, 4, dtype=torch.long), raw, 12, True)
    with pytest.raises(NonFiniteError, match=r"^here: class activation maps \(1 of 72 values"):
        check_batch(out, "here", "none")
    up = out.upsampled()
    assert isinstance(up, BatchMaps) and up.maps.shape == (2, 4, 12, 12)
    assert up.wsol_maps.shape == (2, 12, 12)
    same, wait = up.to_host()  # on the CPU: nothing to copy
    wait()
    assert same is up


# --- the background worker -----------------------------------------------------------------------


def test_background_returns_values_in_submission_order() -> None:
    def slow(i: int) -> int:
        time.sleep(0.002 * ((7 * i) % 5))  # later calls often finish first
        return i

    for threads in (0, 1, 3):
        with Background(threads, depth=4) as pool:
            for i in range(20):
                pool.submit(slow, i)
            assert pool.results() == list(range(20))


def test_background_bounds_the_calls_in_flight() -> None:
    active, peak = 0, 0
    lock = threading.Lock()
    release = threading.Event()

    def hold(_: int) -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        release.wait(0.05)
        with lock:
            active -= 1

    with Background(2, depth=2) as pool:
        submitted = []
        for i in range(6):
            pool.submit(hold, i)
            submitted.append(len(pool._pending))
        pool.results()
    assert max(submitted) <= 2 and peak <= 2


def test_background_raises_the_first_error_and_drops_the_rest() -> None:
    ran = []

    def work(i: int) -> int:
        if i == 1:
            raise ValueError("batch 1 is bad")
        time.sleep(0.01)
        ran.append(i)
        return i

    with pytest.raises(ValueError, match="batch 1 is bad"), Background(1, depth=2) as pool:
        for i in range(50):
            pool.submit(work, i)
        pool.results()
    assert len(ran) < 10  # stopped within a few calls of the error, not after all 50
