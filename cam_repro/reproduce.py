"""`cam-reproduce`: the embedded reproduction end to end, from nothing to tables and figures.

For every evidence design: write the synthetic set (cam-synth), train every model for every seed
with the same recipe (cam-train, `jobs` processes at once), evaluate the last checkpoints
(cam-eval), then draw the figures (cam-visualize) and write the tables (cam-report):

OUT/table1.md, table2.md, comparisons.md, summary.csv, tables.csv, comparisons.csv  (cam-report)
OUT/figures/<design>/compare.png, cam_<image>.png, units_*.png, sweep.png     (cam-visualize)
OUT/figures/resolution_sweep.png                                          (with `ablation`)
OUT/command.txt   the exact command, the versions, and how long each stage took
WORK/data/<design>, WORK/train/<design>/<model>/seed<S>, WORK/eval/...   the runs themselves

Each training and evaluation is the real command in its own process (as a user would run it),
so a stage can be re-run by hand from the logged command line.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from cam_repro.data.synth_writer import generate
from cam_repro.data.synthetic import EVIDENCE, SynthConfig
from cam_repro.engine.checkpoint import write_text_atomic
from cam_repro.engine.config import AMP, check_choice
from cam_repro.errors import CamReproError, ConfigError
from cam_repro.figures import visualize_run
from cam_repro.report import write_report
from cam_repro.typed_config import to_schema

log = logging.getLogger(__name__)


@dataclass
class SynthSize:
    """The synthetic set's size (DESIGN.md's measured set by default; smaller only for tests)."""

    num_classes: int = 10
    train_per_class: int = 300
    val_per_class: int = 50
    seed: int = 0  # the dataset's seed (the same data for every model seed)


@dataclass
class ReproduceConfig:
    """`cam-reproduce`: generate, train GAP and GMP alike, evaluate, draw, tabulate."""

    out: str | None = None  # tables, figures, command.txt; null: the run dir
    work: str | None = None  # datasets, train and eval runs; null: OUT/runs
    designs: list[str] = field(default_factory=lambda: ["parts"])  # parts | uniform
    models: list[str] = field(default_factory=lambda: ["tiny_gap", "tiny_gmp"])
    seeds: list[int] = field(default_factory=lambda: [0])
    ablation: list[str] = field(default_factory=list)  # more models, on the first design only
    synth: SynthSize = field(default_factory=SynthSize)
    epochs: int = 8  # the measured recipe; fewer leaves GMP near chance (DESIGN.md)
    checkpoint: str = "last"  # last (the fixed budget) | best (picked on the evaluated val set)
    jobs: int = 2  # trainings/evaluations at once; the CPU threads are split between them
    amp: str = "none"  # none | bf16 (same for every model)
    device: str = "auto"
    figure_images: int = 6
    reuse: bool = True  # keep datasets and finished runs of the same settings (resume a reproduce)


def reproduce_config(cfg: Any) -> ReproduceConfig:
    spec = to_schema(ReproduceConfig, cfg)
    for design in spec.designs:
        check_choice(design, "designs", EVIDENCE)
    check_choice(spec.checkpoint, "checkpoint", ("last", "best"))
    check_choice(spec.amp, "amp", AMP)
    if not spec.designs or not spec.models or not spec.seeds:
        raise ConfigError("designs, models and seeds must each name at least one")
    if spec.jobs < 1 or spec.epochs < 1:
        raise ConfigError("jobs and epochs must be >= 1")
    return spec


@dataclass
class Job:
    """One training (and its evaluation) of the plan."""

    design: str
    model: str
    seed: int

    @property
    def tag(self) -> str:
        return f"{self.design}/{self.model}/seed{self.seed}"


def plan(spec: ReproduceConfig) -> list[Job]:
    """Every (design, model, seed) to train: models on every design, ablation on the first."""
    jobs = [Job(d, m, s) for d in spec.designs for m in spec.models for s in spec.seeds]
    jobs += [Job(spec.designs[0], m, s) for m in spec.ablation for s in spec.seeds]
    seen: dict[str, Job] = {}
    for job in jobs:
        seen.setdefault(job.tag, job)
    return list(seen.values())


def _threads(spec: ReproduceConfig) -> int:
    return max(1, (os.cpu_count() or 1) // spec.jobs)


def _command(app: str, overrides: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", f"cam_repro_cli.{app}", *overrides]


def _run(cmd: list[str], log_path: Path) -> None:
    """Run one stage's command, its output to log_path; a failure names the command and log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as f:
        f.write("$ " + shlex.join(cmd) + "\n")
        f.flush()
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log_path.read_text().strip().splitlines()[-3:]
        raise CamReproError(
            f"{shlex.join(cmd[2:])} failed (exit {done.returncode}); log: {log_path}: "
            + " | ".join(tail)
        )


def _data(spec: ReproduceConfig, work: Path, design: str) -> Path:
    """The design's dataset, written unless the same one is already there."""
    root = work / "data" / design
    synth = SynthConfig(out=str(root), evidence=design, overwrite=True, **asdict(spec.synth))
    info = root / "synth.json"
    if spec.reuse and info.is_file():
        have = json.loads(info.read_text()).get("config", {})
        want = {k: v for k, v in asdict(synth).items() if k not in ("out", "workers", "overwrite")}
        if json.loads(json.dumps(want)) == have:
            log.info("data %s: reusing %s", design, root)
            return root
    summary = generate(synth)
    log.info("data %s: %s (%.1f s)", design, root, summary.seconds)
    return root


def _train_and_eval(spec: ReproduceConfig, work: Path, data: Path, job: Job) -> Path:
    """Train one job (unless done) and evaluate its checkpoint; returns the eval run folder."""
    threads = _threads(spec)
    train_dir = work / "train" / job.tag
    eval_dir = work / "eval" / job.tag
    checkpoint = train_dir / "checkpoints" / f"{spec.checkpoint}.pt"
    done = train_dir / "metrics.json"
    if not (spec.reuse and done.is_file() and checkpoint.is_file()):
        _run(
            _command("train", [
                f"model={job.model}", f"seed={job.seed}", f"data.root={data}",
                f"trainer.epochs={spec.epochs}", f"trainer.amp={spec.amp}",
                f"trainer.device={spec.device}", f"trainer.threads={threads}",
                "trainer.progress=false", "trainer.resume=auto", f"hydra.run.dir={train_dir}",
            ]),
            work / "logs" / f"train-{job.tag.replace('/', '-')}.log",
        )  # fmt: skip
    _run(
        _command("eval", [
            f"checkpoint={checkpoint}", f"trainer.amp={spec.amp}", f"trainer.device={spec.device}",
            f"trainer.threads={threads}", "trainer.progress=false", f"hydra.run.dir={eval_dir}",
        ]),
        work / "logs" / f"eval-{job.tag.replace('/', '-')}.log",
    )  # fmt: skip
    return eval_dir


def _figures(spec: ReproduceConfig, work: Path, out: Path, jobs: list[Job]) -> None:
    """Per design: the models side by side on the same images (first seed), the per-image
    figures and class units of the first model, the threshold sweeps of every run."""
    seed = spec.seeds[0]
    for design in spec.designs:
        models = [m for m in spec.models] + (spec.ablation if design == spec.designs[0] else [])
        checkpoints = [
            str(work / "train" / Job(design, m, seed).tag / "checkpoints" / f"{spec.checkpoint}.pt")
            for m in dict.fromkeys(models)
        ]
        sweeps = [
            str(work / "eval" / j.tag)
            for j in jobs
            if j.design == design and j.model in spec.models
        ]
        visualize_run(
            {
                "checkpoint": checkpoints[0], "compare": checkpoints[1:], "sweeps": sweeps,
                "num_images": spec.figure_images, "per_image": True, "units": 4,
                "trainer": {"device": spec.device, "threads": os.cpu_count()},
            },
            out / "figures" / design,
        )  # fmt: skip
    if spec.ablation:
        design = spec.designs[0]
        sweeps = [
            str(work / "eval" / j.tag)
            for j in jobs
            if j.design == design and j.model in spec.models
        ]
        visualize_run({"sweeps": sweeps}, out / "figures" / "resolution")


def reproduce(cfg: Any, run_dir: str | Path) -> dict[str, Any]:
    """Run the whole reproduction as `cfg` says; returns the stage timings."""
    spec = reproduce_config(cfg)
    out = Path(spec.out or run_dir)
    work = Path(spec.work) if spec.work else out / "runs"
    out.mkdir(parents=True, exist_ok=True)
    jobs = plan(spec)
    times: dict[str, float] = {}
    start = time.perf_counter()
    log.info(
        "%d trainings (%s x %s x seeds %s%s), %d at a time, %d thread(s) each",
        len(jobs), "+".join(spec.designs), "+".join(spec.models), spec.seeds,
        f", ablation {'+'.join(spec.ablation)} on {spec.designs[0]}" if spec.ablation else "",
        spec.jobs, _threads(spec),
    )  # fmt: skip
    data = {design: _data(spec, work, design) for design in spec.designs}
    times["data"] = time.perf_counter() - start

    tick = time.perf_counter()
    finished = 0
    with ThreadPoolExecutor(max_workers=spec.jobs) as pool:
        futures = {pool.submit(_train_and_eval, spec, work, data[j.design], j): j for j in jobs}
        try:
            for future, job in futures.items():
                future.result()
                finished += 1
                log.info("[%d/%d] %s trained and evaluated", finished, len(jobs), job.tag)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # let running jobs end, start no more
            raise
    times["train_and_eval"] = time.perf_counter() - tick

    tick = time.perf_counter()
    _figures(spec, work, out, jobs)
    times["figures"] = time.perf_counter() - tick
    tick = time.perf_counter()
    report = write_report([work / "eval"], out, paper="auto")
    times["report"] = time.perf_counter() - tick
    times["total"] = time.perf_counter() - start
    _write_command(out, spec, times)
    log.info(
        "done in %.0f s (data %.0f, train+eval %.0f, figures %.0f): %s",
        times["total"], times["data"], times["train_and_eval"], times["figures"], report["out"],
    )  # fmt: skip
    return times


def _write_command(out: Path, spec: ReproduceConfig, times: dict[str, float]) -> None:
    argv = ["cam-reproduce", *sys.argv[1:]] if sys.argv else ["cam-reproduce"]
    lines = [
        "# How these results were made (written by cam-reproduce)",
        "",
        "$ " + shlex.join(argv),
        "",
        f"settings: {json.dumps(asdict(spec), sort_keys=True)}",
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} CPU(s)",
        "seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()),
        "",
    ]
    write_text_atomic(out / "command.txt", "\n".join(lines))
