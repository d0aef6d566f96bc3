"""`reproduce`: cam-reproduce's stages in order (data, trainings and evaluations, cam-features
runs, figures, report, record check, command.txt), the jobs in one pool of worker processes."""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

from cam_repro.features.cache import tree_stamp
from cam_repro.present.report import write_report
from cam_repro.reproduce.config import ReproduceConfig, reproduce_config
from cam_repro.reproduce.datasets import write_data
from cam_repro.reproduce.figures import draw_figures
from cam_repro.reproduce.jobs import (
    features_job,
    features_outcome,
    posthoc_eval,
    runtime_overrides,
    threads_per_job,
    train_and_eval,
)
from cam_repro.reproduce.plan import (
    DISCOVERY_DATA,
    FEATURE_DATA,
    Job,
    PosthocJob,
    data_settings,
    feature_plan,
    heldout_name,
    heldout_set,
    plan,
    planned_datasets,
    posthoc_name,
    posthoc_plan,
    posthoc_sets,
)
from cam_repro.reproduce.provenance import write_command
from cam_repro.reproduce.record import find_record, record_check
from cam_repro.runtime.files import make_dir

log = logging.getLogger(__name__)


def reproduce(cfg: Any, run_dir: str | Path) -> dict[str, Any]:
    """Run the whole reproduction as `cfg` says; returns the stage timings."""
    spec = reproduce_config(cfg)
    out = Path(spec.out or run_dir)
    work = Path(spec.work) if spec.work else out / "runs"
    record = find_record(spec.record, out)  # before any work: a missing record fails at once
    make_dir(out)
    jobs = plan(spec)
    posthoc = posthoc_plan(spec)
    threads = threads_per_job(spec.runtime.threads, spec.jobs)
    runtime = runtime_overrides(spec.runtime, threads)
    times: dict[str, float] = {}
    start = time.perf_counter()
    methods = f", methods {'+'.join(spec.methods)} of {spec.models[0]}" if spec.methods else ""
    log.info(
        "%d trainings (%s x %s x seeds %s%s%s), %d at a time, %d thread(s) each",
        len(jobs), "+".join(spec.designs), "+".join(spec.models), spec.seeds,
        f", ablation {'+'.join(spec.ablation)} on {spec.designs[0]}" if spec.ablation else "",
        methods, spec.jobs, threads,
    )  # fmt: skip
    data = {d: write_data(d, work / "data" / d,
                          data_settings(spec.synth, d, spec.posthoc_per_class), spec.reuse)
            for d in planned_datasets(spec)}  # fmt: skip
    stamps = {design: tree_stamp(root) for design, root in data.items()}
    times["data"] = time.perf_counter() - start

    tick = time.perf_counter()
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked thread pools
    # one pool for every stage: each worker imports torch once
    with ProcessPoolExecutor(spec.jobs, mp_context=context, initializer=_worker_init) as pool:
        train = partial(train_and_eval, work=work, epochs=spec.epochs,
                        width_mult=spec.width_mult, runtime=runtime, reuse=spec.reuse)  # fmt: skip
        # the methods stage's held-out set: its root and its name in the tables
        heldout = heldout_set(spec.designs[0])
        held = (data[heldout], heldout_name(spec.synth, spec.designs[0])) if spec.methods else None
        reused = _train_stage(pool, train, jobs, data, stamps, work, held)
        times["train_and_eval"] = time.perf_counter() - tick
        features = feature_plan(spec)
        if features:
            tick = time.perf_counter()
            run = partial(features_job, work=work, trained_on=spec.designs[0],
                          width_mult=spec.width_mult, runtime=runtime)  # fmt: skip
            for i, metrics in _in_order(pool, run, [(j, data[j.dataset]) for j in features]):
                log.info("[%d/%d] features %s: %s", i + 1, len(features), features[i].tag,
                         features_outcome(metrics))  # fmt: skip
            times["features"] = time.perf_counter() - tick
        if posthoc:
            tick = time.perf_counter()
            _posthoc_stage(pool, spec, posthoc, data, work, runtime)
            times["posthoc"] = time.perf_counter() - tick

    tick = time.perf_counter()
    draw_figures(spec, work, out, [j for j in jobs if j.method == "cam"])  # CAM's networks
    times["figures"] = time.perf_counter() - tick
    tick = time.perf_counter()
    report = _report(work, out, jobs, spec.features, spec.discovery, posthoc)
    times["report"] = time.perf_counter() - tick
    times["total"] = time.perf_counter() - start
    if record is not None:
        log.info("%s", record_check(out, record, asdict(spec)))
    write_command(out, spec, times, f"{len(jobs) - len(reused)} trained, {len(reused)} reused",
                  reused)  # fmt: skip
    log.info(
        "done in %.0f s (data %.0f, train+eval %.0f, figures %.0f): %s",
        times["total"], times["data"], times["train_and_eval"], times["figures"], report["out"],
    )  # fmt: skip
    return times


def _worker_init() -> None:
    """A job process: INFO records reach the run folders' train.log / eval.log (only warnings
    reach the console)."""
    logging.getLogger().setLevel(logging.INFO)


def _train_stage(
    pool: ProcessPoolExecutor, train: Callable[..., bool], jobs: list[Job],
    data: dict[str, Path], stamps: dict[str, str], work: Path,
    heldout: tuple[Path, str] | None,
) -> list[str]:  # fmt: skip
    """Every job trained (or its finished training reused) and evaluated, in the pool (the
    methods stage's also at the thresholds of `heldout`, the held-out set's root and name);
    returns the reused trainings' tags (named in the log and command.txt)."""
    reused: list[str] = []
    calls = [(j, data[j.design], stamps[j.design], heldout if j.heldout else None) for j in jobs]
    for i, did_train in _in_order(pool, train, calls):
        job = jobs[i]
        if not did_train:
            reused.append(job.tag)
        how = "trained" if did_train else f"reused the finished training {job.train_dir(work)}"
        also = " (and at held-out thresholds)" if job.heldout else ""
        log.info("[%d/%d] %s: %s, evaluated%s", i + 1, len(jobs), job.tag, how, also)
    return reused


def _posthoc_stage(
    pool: ProcessPoolExecutor, spec: ReproduceConfig, jobs: list[PosthocJob],
    data: dict[str, Path], work: Path, runtime: dict[str, Any],
) -> None:  # fmt: skip
    """Every post-hoc job evaluated in the pool (its trainings are the main jobs', done)."""
    design = spec.designs[0]
    scored_set, held_set = posthoc_sets(design)
    n = spec.posthoc_per_class
    scored = (data[scored_set], posthoc_name(spec.synth, design, n, held=False))
    held = (data[held_set], posthoc_name(spec.synth, design, n, held=True))
    run = partial(posthoc_eval, work=work, runtime=runtime)
    for i, metrics in _in_order(pool, run, [(j, scored, held) for j in jobs]):
        log.info(
            "[%d/%d] post-hoc %s: MaxBoxAccV2 %s at held-out thresholds, %.0f s",
            i + 1, len(jobs), jobs[i].tag, _number(metrics.get("maxboxacc_v2_heldout")),
            metrics.get("seconds", float("nan")),
        )  # fmt: skip


def _number(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else "undefined"


def _report(
    work: Path, out: Path, jobs: list[Job], features: bool, discovery: bool,
    posthoc: list[PosthocJob],
) -> dict:  # fmt: skip
    """cam-report over this run's eval runs (its jobs', the methods stage's at held-out
    thresholds, the post-hoc stage's) and features runs into OUT, and with `discovery` over
    Section 4.2's into OUT/discovery; returns the main report's summary. Only this run's own
    eval folders are read: another run's in the same WORK (another stage, other models) are not
    tabulated as this one's."""
    main = [j for j in jobs if j.design not in DISCOVERY_DATA]
    runs = [j.eval_dir(work) for j in main] + [j.heldout_eval_dir(work) for j in main if j.heldout]
    runs += [j.eval_dir(work) for j in posthoc]
    runs += [work / "features" / d for d in FEATURE_DATA if features]
    report = write_report(runs, out, paper="auto")
    if discovery:  # Section 4.2: its own folder, tables and figures
        found = [work / "eval" / d for d in DISCOVERY_DATA] + [work / "features" / "text"]
        write_report(found, out / "discovery", paper="auto")
    return report


def _in_order(
    pool: ProcessPoolExecutor, fn: Callable[..., Any], calls: list[tuple]
) -> Iterator[tuple[int, Any]]:
    """Submit fn(*args) for every call, yield (i, result) in order. On any error, or Ctrl-C,
    the running jobs end and no more start (not the rest of the queue)."""
    futures = [pool.submit(fn, *args) for args in calls]
    try:
        for i, future in enumerate(futures):
            yield i, future.result()
    except BaseException:  # also GeneratorExit: the caller stopped on an error of its own
        pool.shutdown(wait=True, cancel_futures=True)
        raise
