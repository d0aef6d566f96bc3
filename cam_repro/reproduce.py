"""`cam-reproduce`: the embedded reproduction end to end, from nothing to tables and figures.

For every evidence design: write the synthetic set (cam-synth), train every model for every seed
with the same recipe (cam-train, `jobs` processes at once), evaluate the last checkpoints
(cam-eval), then draw the figures (cam-visualize) and write the tables (cam-report):

OUT/table1.md, table2.md, comparisons.md, summary.csv, tables.csv, comparisons.csv  (cam-report)
OUT/figures/<design>/compare.png, cam_<image>.png, units_*.png, sweep.png     (cam-visualize)
OUT/figures/ablation/sweep.png   the first design's sweeps with the ablation's models
OUT/command.txt   the exact command, the versions, how long each stage took, the reused trainings
WORK/data/<design>, WORK/train/<design>/<model>/seed<S>, WORK/eval/...   the runs themselves

With `features=true`, the paper's Section 4 too (cam-features; docs/features.md):
- transfer: a second family of classes (`family=1`: the same textures, new combinations); the
  networks trained on the first design -> linear SVM on their pooled features of the new classes,
  beside a randomly initialised network's features (the floor) and the same network trained on
  the new classes itself (the ceiling, trained and evaluated like the others); localization from
  the SVM's weights;
- fine: a fine-grained design (`evidence=fine`: one shared body, classes differ only in the
  small key part; CUB-200-2011 layout, 128 px, read at the networks' 64 px) -> SVM on the full
  image, the CAM box crop, the ground-truth crop and full + CAM crop;
OUT/table_finegrained.md, table_generic.md, features_summary.csv           (cam-report)
OUT/figures/features/<dataset>/linear_cams.png   CAMs from the SVM's weights (first seed)
WORK/features/<dataset>/<model>/seed<S>/<weights>-<crop>   the cam-features runs

With `discovery=true`, Section 4.2's pattern discovery with the first model (docs/discovery.md):
- text: `cam-synth task=text` (words in scenes with word-like clutter, and scenes without) ->
  a linear SVM on the GAP features of the network trained on the first design, localization of
  `text` from the SVM's weights; and the network trained on text / no text itself;
- vqa: `cam-synth task=vqa` -> cam-train task=vqa (GAP features + the question's bag of words,
  one linear layer) -> cam-eval: answer accuracy, where the answer's CAM points;
OUT/discovery/discovery.md, discovery.csv                                    (cam-report)
OUT/discovery/figures/text-svm/text_cams.png, text-trained/, vqa-trained/vqa_panels.png

Trainings and evaluations run in `jobs` worker processes, each composing the cam-train / cam-eval
config exactly as the command line would; WORK/logs/<job>.log has the command lines that re-run a
stage by hand.
"""

from __future__ import annotations

import csv
import json
import logging
import multiprocessing
import os
import platform
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from cam_repro.apps import CONFIG_DIR, compose, variants
from cam_repro.data.synth_writer import FORMAT_VERSION, dataset_settings, generate
from cam_repro.data.synthetic import EVIDENCE, synth_config
from cam_repro.features.cache import tree_stamp
from cam_repro.present.figures import visualize_run
from cam_repro.present.tables import Stat, write_report
from cam_repro.runtime.config import RuntimeConfig, check_choice, runtime_config, to_schema
from cam_repro.runtime.errors import ConfigError, InputFileError, MissingFileError
from cam_repro.runtime.files import make_dir, read_json, write_json, write_text_atomic

log = logging.getLogger(__name__)


@dataclass
class SynthSize:
    """The synthetic set's size (docs/design.md's measured set by default; smaller for tests)."""

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
    # the seeds of the ablation and of the Section 4 and 4.2 stages; null: `seeds` (the record:
    # 5 seeds for the main designs, 3 for these)
    study_seeds: list[int] | None = None
    synth: SynthSize = field(default_factory=SynthSize)
    epochs: int = 8  # the measured recipe; fewer leaves GMP near chance (docs/design.md)
    # every model's conv widths (model.width_mult), alike for all: 0.5 trains 2.3x faster than
    # the full Tiny width, which fits 5 seeds into the record's time (docs/reproduction.md);
    # fewer images or epochs instead leave GMP undertrained
    width_mult: float = 0.5
    jobs: int = 2  # trainings/evaluations at once; the CPU threads are split between them
    # Every job's runtime keys. amp: bf16 autocast for every model alike, 1.6x faster on CPUs
    # with native bf16 (AVX512-BF16, AMX; none: fp32, cam-train's default); threads: per job,
    # null: the cores / jobs; progress: the jobs draw no bars (they run side by side)
    runtime: RuntimeConfig = field(
        default_factory=lambda: RuntimeConfig(amp="bf16", progress=False)
    )
    figure_images: int = 6
    # the Section 4 stages (transfer to new classes, fine-grained crops): ~10 more minutes
    features: bool = False
    # Section 4.2's pattern discovery, with the first model: the text detector (a linear SVM on
    # the benchmark network's GAP features; the network trained on text / no text) and VQA
    discovery: bool = False
    # keep datasets and trainings of the same settings (and resume unfinished ones); false: redo
    reuse: bool = True
    # A record to compare this run's rows with (OUT/record_check.md): auto (the repository's
    # results/synthetic/summary.csv, when there is one) | off | a summary.csv
    record: str = "auto"


def reproduce_config(cfg: Any) -> ReproduceConfig:
    spec = to_schema(ReproduceConfig, cfg)
    for design in spec.designs:
        check_choice(design, "designs", EVIDENCE)
    spec.runtime = runtime_config(spec.runtime)
    if not spec.designs or not spec.models or not spec.seeds:
        raise ConfigError("designs, models and seeds must each name at least one")
    if spec.study_seeds is not None and not spec.study_seeds:
        raise ConfigError("study_seeds must name at least one seed (or be null: the seeds)")
    for key, seeds in (("seeds", spec.seeds), ("study_seeds", spec.study_seeds or [])):
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"{key} must not repeat a seed, got {seeds}")
    known = variants()
    for model in [*spec.models, *spec.ablation]:
        if model not in known:
            raise ConfigError(f"models/ablation: no model {model!r}; one of {', '.join(known)}")
    if spec.jobs < 1 or spec.epochs < 1:
        raise ConfigError("jobs and epochs must be >= 1")
    if not spec.width_mult > 0:
        raise ConfigError(f"width_mult must be > 0, got {spec.width_mult}")
    return spec


# The Section 4 datasets: synthetic settings beyond the size (docs/features.md says why these).
FEATURE_DATA: dict[str, dict[str, Any]] = {
    # new classes from the same textures: the networks never saw them
    "transfer": {"evidence": "parts", "family": 1},
    # one body for all, the class in the key part only; 128 px read at 64 px, objects 0.3-0.6 of
    # the side, so the key part is a few pixels in the full image and larger in a crop to the box
    "fine": {"evidence": "fine", "layout": "cub", "two_object_prob": 0.0, "image_size": 128,
             "object_side": [0.3, 0.6]},
}  # fmt: skip


# The pattern-discovery sets (Section 4.2; docs/discovery.md): as many train images as the
# benchmark (text: num_classes x train_per_class / 2 per class; VQA: a third as many images, with
# three questions each), val alike.
DISCOVERY_DATA = ("text", "vqa")


def _discovery_settings(spec: ReproduceConfig, name: str) -> dict[str, Any]:
    s = spec.synth
    if name == "text":
        return {"task": "text", "train_per_class": s.num_classes * s.train_per_class // 2,
                "val_per_class": s.num_classes * s.val_per_class // 2}  # fmt: skip
    return {"task": "vqa", "vqa": {"train_images": s.num_classes * s.train_per_class // 3,
                                   "val_images": s.num_classes * s.val_per_class // 3}}  # fmt: skip


@dataclass
class FeatureJob:
    """One cam-features run of the plan."""

    dataset: str  # transfer | fine
    model: str
    seed: int
    weights: str  # trained (on the first design) | random (the floor) | own (trained on dataset)
    crop: str

    @property
    def tag(self) -> str:
        return f"{self.dataset}/{self.model}/seed{self.seed}/{self.weights}-{self.crop}"

    def cache(self, work: Path) -> Path:
        """The feature caches of this network on this dataset (shared by its crops)."""
        return (
            work
            / "features"
            / "cache"
            / self.dataset
            / self.model
            / f"seed{self.seed}"
            / self.weights
        )


def feature_plan(spec: ReproduceConfig) -> list[FeatureJob]:
    """The transfer study (trained, random and own weights, full images) and the fine-grained
    one (trained weights, every crop), for every model and seed."""
    jobs = []
    for model in spec.models if spec.features else ():
        for seed in study_seeds(spec):
            jobs += [
                FeatureJob("transfer", model, seed, w, "full") for w in ("trained", "random", "own")
            ]
            jobs += [
                FeatureJob("fine", model, seed, "trained", c)
                for c in ("full", "cam", "gt", "full+cam")
            ]
    if spec.discovery:  # the text detector the paper's way: the trained network's features
        jobs += [
            FeatureJob("text", spec.models[0], seed, "trained", "full")
            for seed in study_seeds(spec)
        ]
    return jobs


@dataclass
class Job:
    """One training (and its evaluation) of the plan."""

    design: str  # an evidence design, a FEATURE_DATA set, or a DISCOVERY_DATA set
    model: str
    seed: int

    @property
    def task(self) -> list[str]:
        """cam-train's overrides for a VQA training (none for the others)."""
        return ["task=vqa", "data=synthetic_vqa"] if self.design == "vqa" else []

    @property
    def tag(self) -> str:
        return f"{self.design}/{self.model}/seed{self.seed}"

    def train_dir(self, work: Path) -> Path:
        return work / "train" / self.tag

    def checkpoint(self, work: Path) -> Path:
        """The evaluated checkpoint: the last one (the fixed budget)."""
        return self.train_dir(work) / "checkpoints" / "last.pt"

    def eval_dir(self, work: Path) -> Path:
        return work / "eval" / self.tag


def plan(spec: ReproduceConfig) -> list[Job]:
    """Every (design, model, seed) to train: models on every design, ablation on the first, and
    with `features` the models on the transfer classes (the ceiling of the transfer study)."""
    few = study_seeds(spec)
    jobs = [Job(d, m, s) for d in spec.designs for m in spec.models for s in spec.seeds]
    # the first design's models at the study seeds too: the trained features' networks
    if spec.features or spec.discovery:
        jobs += [Job(spec.designs[0], m, s) for m in spec.models for s in few]
    jobs += [Job(spec.designs[0], m, s) for m in spec.ablation for s in few]
    if spec.features:
        jobs += [Job("transfer", m, s) for m in spec.models for s in few]
    if spec.discovery:
        jobs += [Job(d, spec.models[0], s) for d in DISCOVERY_DATA for s in few]
    seen: dict[str, Job] = {}
    for job in jobs:
        seen.setdefault(job.tag, job)
    return list(seen.values())


def study_seeds(spec: ReproduceConfig) -> list[int]:
    """The seeds of the ablation and of the Section 4 and 4.2 stages."""
    return list(spec.seeds if spec.study_seeds is None else spec.study_seeds)


def _threads(spec: ReproduceConfig) -> int:
    return spec.runtime.threads or max(1, (os.cpu_count() or 1) // spec.jobs)


def _worker_init() -> None:
    """A job process: INFO records reach the run folders' train.log / eval.log (only warnings
    reach the console)."""
    logging.getLogger().setLevel(logging.INFO)


def _log_command(path: Path, app: str, overrides: list[str]) -> None:
    """Append the command line that re-runs this stage by hand to the job's log."""
    make_dir(path.parent)
    with path.open("a") as f:
        f.write(f"$ cam-{app} " + shlex.join(overrides) + "\n")


def _data(spec: ReproduceConfig, work: Path, design: str) -> Path:
    """The design's dataset (an evidence design, or a FEATURE_DATA set), written unless the same
    one is already there."""
    root = work / "data" / design
    if design in DISCOVERY_DATA:
        settings = {**asdict(spec.synth), **_discovery_settings(spec, design)}
    else:
        settings = {**asdict(spec.synth), **FEATURE_DATA.get(design, {"evidence": design})}
    synth = synth_config({"out": str(root), "overwrite": True, **settings})
    info = root / "synth.json"
    why = "absent" if spec.reuse else "reuse=false"
    if spec.reuse and info.is_file():
        written = json.loads(info.read_text())
        same = json.loads(json.dumps(dataset_settings(synth))) == written.get("config", {})
        # the generator's format too: the same settings draw other images after it changed
        if same and written.get("format_version") == FORMAT_VERSION:
            log.info("data %s: reusing %s (written with the same settings and generator)",
                     design, root)  # fmt: skip
            return root
        why = "other settings" if not same else "written by another version of the generator"
    summary = generate(synth)
    log.info("data %s: %s (%.1f s; made: %s)", design, root, summary.seconds, why)
    return root


# In a training's folder: the data it was (or is being) trained on, by content (`tree_stamp`).
TRAINED_ON = "trained_on.json"


def _record_data(job: Job, work: Path, data: Path, stamp: str) -> None:
    """Note in the job's training folder which data it is trained on, before it starts."""
    write_json(make_dir(job.train_dir(work)) / TRAINED_ON, {"data": str(data), "files": stamp})


def _finished(job: Job, work: Path, want: dict[str, Any], stamp: str) -> bool:
    """Whether WORK holds this job's finished training, trained with the `want` settings on data
    whose files are `stamp` (`tree_stamp`: every file's path, size and modification time). A
    run of other settings or on other data (the folder regenerated in place since) is an error
    (retraining over it would mix them); an unfinished one is resumed by the caller."""
    from omegaconf import OmegaConf

    from cam_repro.models.config import model_config, variant_name

    train_dir = job.train_dir(work)
    config = train_dir / "config.yaml"
    if not config.is_file():
        return False
    cfg = OmegaConf.load(config)
    have = {key: OmegaConf.select(cfg, key) for key in want}
    have_model = variant_name(model_config(cfg.model))
    if have != want or have_model != job.model:
        raise ConfigError(
            f"{train_dir} holds a training of other settings ({have_model}, {have}; this run: "
            f"{job.model}, {want}): pass reuse=false to retrain, or another work=FOLDER"
        )
    record = train_dir / TRAINED_ON
    had = read_json(record).get("files") if record.is_file() else None
    if had != stamp:
        why = "its files changed since" if had else f"it has no {TRAINED_ON}"
        raise ConfigError(
            f"{train_dir} holds a training on other data than {want['data.root']} holds now "
            f"({why}): pass reuse=false to retrain, or another work=FOLDER"
        )
    metrics = train_dir / "metrics.json"
    if not (metrics.is_file() and job.checkpoint(work).is_file()):
        return False
    return json.loads(metrics.read_text()).get("status") == "finished"


def _train_and_eval(spec: ReproduceConfig, work: Path, data: Path, stamp: str, job: Job) -> bool:
    """Train one job (unless it is done, on the same data: `stamp`) and evaluate its last
    checkpoint, in this process (a worker of the pool: one import of torch for many jobs);
    returns whether it trained."""
    from cam_repro.evaluate.loop import evaluate_run
    from cam_repro.train.trainer import train

    train_dir, eval_dir = job.train_dir(work), job.eval_dir(work)
    job_log = work / "logs" / f"{job.tag.replace('/', '-')}.log"
    rt = spec.runtime
    runtime = _runtime_overrides(spec)
    # what a finished training must have been trained with to be reused
    settings = {"seed": job.seed, "data.root": str(data), "trainer.epochs": spec.epochs,
                "model.width_mult": spec.width_mult,
                "runtime.amp": rt.amp, "runtime.threads": runtime["runtime.threads"]}  # fmt: skip
    if not spec.reuse:
        shutil.rmtree(train_dir, ignore_errors=True)  # start over: no resume from an old run
    trains = not _finished(job, work, settings, stamp)
    if trains:
        _record_data(job, work, data, stamp)
        given = {"model": job.model, **settings, "trainer.eval_every": spec.epochs, **runtime,
                 "trainer.resume": "auto"}  # fmt: skip
        overrides = [*job.task, *(f"{key}={value}" for key, value in given.items())]
        _log_command(job_log, "train", [*overrides, f"hydra.run.dir={train_dir}"])
        train(compose("train", overrides), train_dir)
    # the evaluation is always redone (it is cheap, and the training may be new)
    overrides = [f"checkpoint={job.checkpoint(work)}", "overwrite=true", "sweep=true"]
    overrides += [f"{key}={value}" for key, value in runtime.items()]
    _log_command(job_log, "eval", [*overrides, f"hydra.run.dir={eval_dir}"])
    evaluate_run(compose("eval", overrides), eval_dir)
    return trains


def _runtime_overrides(spec: ReproduceConfig) -> dict[str, Any]:
    rt = spec.runtime
    return {"runtime.amp": rt.amp, "runtime.device": rt.device,
            "runtime.channels_last": rt.channels_last, "runtime.threads": _threads(spec),
            "runtime.progress": rt.progress}  # fmt: skip


def _pool(model: str) -> str:
    """The model's global pooling (its config file's `pool`): its features kind."""
    from omegaconf import OmegaConf

    return str(OmegaConf.load(Path(CONFIG_DIR, "model", f"{model}.yaml")).get("pool", "gap"))


def _features_job(spec: ReproduceConfig, work: Path, data: Path, job: FeatureJob) -> dict[str, Any]:
    """One cam-features run (in a worker of the pool); returns its metrics.json."""
    from cam_repro.features.run import features_run

    given: dict[str, Any] = {"data": "synthetic", "data.root": str(data)}
    if job.dataset == "fine":
        given["data.source"] = "cub"
    if job.weights == "random":
        given.update({"model": job.model, "model.width_mult": spec.width_mult, "seed": job.seed})
    else:
        design = spec.designs[0] if job.weights == "trained" else job.dataset
        given["checkpoint"] = str(Job(design, job.model, job.seed).checkpoint(work))
    given.update({"features": _pool(job.model), "crop": job.crop, "overwrite": "true",
                  "cache_dir": str(job.cache(work)), **_runtime_overrides(spec)})  # fmt: skip
    overrides = [f"{key}={value}" for key, value in given.items()]
    run_dir = work / "features" / job.tag
    _log_command(work / "logs" / f"features-{job.tag.replace('/', '-')}.log", "features",
                 [*overrides, f"hydra.run.dir={run_dir}"])  # fmt: skip
    return features_run(compose("features", overrides), run_dir)


def _accuracy(metrics: dict[str, Any]) -> str:
    """A features run's accuracy for the log ('undefined (reason)' when it has none)."""
    value = metrics["accuracy"]
    if value is None:
        return f"undefined ({metrics.get('undefined', {}).get('accuracy', 'no reason given')})"
    return f"{value:.1f}%"


def _caches(metrics: dict[str, Any]) -> str:
    """A features run's cache use for the log: 'cam val reused, full val made (absent), ...'."""
    return ", ".join(
        f"{c['part']} {c['split']} {c['status']}" + (f" ({c['reason']})" if c["reason"] else "")
        for c in metrics["caches"]
    )


def _figures(spec: ReproduceConfig, work: Path, out: Path, jobs: list[Job]) -> None:
    """Per design: the models side by side on the same images (first seed), the per-image
    figures and class units of the first model, the threshold sweeps of every run."""
    seed = spec.seeds[0]
    for design in spec.designs:
        models = list(spec.models) + (spec.ablation if design == spec.designs[0] else [])
        planned = {j.tag for j in jobs}
        checkpoints = [str(Job(design, m, seed).checkpoint(work)) for m in dict.fromkeys(models)
                       if Job(design, m, seed).tag in planned]  # fmt: skip
        main = [j for j in jobs if j.design == design and j.model in spec.models]
        sweeps = [str(j.eval_dir(work)) for j in main]
        visualize_run(
            {
                "checkpoint": checkpoints[0], "compare": checkpoints[1:], "sweeps": sweeps,
                "num_images": spec.figure_images, "per_image": True, "units": 4,
                "runtime": {"device": spec.runtime.device, "threads": os.cpu_count(),
                            "channels_last": spec.runtime.channels_last},
            },
            out / "figures" / design,
        )  # fmt: skip
    if spec.ablation:  # every model of the first design, the ablation's included
        sweeps = [str(j.eval_dir(work)) for j in jobs if j.design == spec.designs[0]]
        visualize_run({"sweeps": sweeps}, out / "figures" / "ablation")
    if spec.discovery:  # text: the SVM's CAMs and the trained network's; VQA: answer CAMs
        rt = {"device": spec.runtime.device, "threads": os.cpu_count()}
        model, first = spec.models[0], study_seeds(spec)[0]
        text = FeatureJob("text", model, first, "trained", "full")
        figures = out / "discovery" / "figures"
        visualize_run(
            {
                "features_run": str(work / "features" / text.tag),
                "num_images": spec.figure_images,
                "runtime": rt,
            },
            figures / "text-svm",
        )
        for design in DISCOVERY_DATA:
            visualize_run({"checkpoint": str(Job(design, model, first).checkpoint(work)),
                           "num_images": spec.figure_images, "runtime": rt},
                          figures / f"{design}-trained")  # fmt: skip
    if spec.features:  # CAMs from the SVM's weights: the first model's transferred features
        for dataset, crop in (("transfer", "full"), ("fine", "cam")):
            job = FeatureJob(dataset, spec.models[0], study_seeds(spec)[0], "trained", crop)
            visualize_run(
                {"features_run": str(work / "features" / job.tag),
                 "num_images": spec.figure_images,
                 "runtime": {"device": spec.runtime.device, "threads": os.cpu_count()}},
                out / "figures" / "features" / dataset,
            )  # fmt: skip


def reproduce(cfg: Any, run_dir: str | Path) -> dict[str, Any]:
    """Run the whole reproduction as `cfg` says; returns the stage timings."""
    spec = reproduce_config(cfg)
    out = Path(spec.out or run_dir)
    work = Path(spec.work) if spec.work else out / "runs"
    make_dir(out)
    jobs = plan(spec)
    times: dict[str, float] = {}
    start = time.perf_counter()
    log.info(
        "%d trainings (%s x %s x seeds %s%s), %d at a time, %d thread(s) each",
        len(jobs), "+".join(spec.designs), "+".join(spec.models), spec.seeds,
        f", ablation {'+'.join(spec.ablation)} on {spec.designs[0]}" if spec.ablation else "",
        spec.jobs, _threads(spec),
    )  # fmt: skip
    datasets = [*spec.designs, *(FEATURE_DATA if spec.features else ()),
                *(DISCOVERY_DATA if spec.discovery else ())]  # fmt: skip
    data = {design: _data(spec, work, design) for design in datasets}
    stamps = {design: tree_stamp(root) for design, root in data.items()}
    times["data"] = time.perf_counter() - start

    tick = time.perf_counter()
    reused: list[str] = []  # the finished trainings kept (named in the log and command.txt)
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked thread pools
    # one pool for every stage: each worker imports torch once
    with ProcessPoolExecutor(spec.jobs, mp_context=context, initializer=_worker_init) as pool:
        calls = [(spec, work, data[j.design], stamps[j.design], j) for j in jobs]
        for i, did_train in _in_order(pool, _train_and_eval, calls):
            job = jobs[i]
            if not did_train:
                reused.append(job.tag)
            how = "trained" if did_train else f"reused the finished training {job.train_dir(work)}"
            log.info("[%d/%d] %s: %s, evaluated", i + 1, len(jobs), job.tag, how)
        times["train_and_eval"] = time.perf_counter() - tick
        features = feature_plan(spec)
        if features:
            tick = time.perf_counter()
            calls = [(spec, work, data[j.dataset], j) for j in features]
            for i, metrics in _in_order(pool, _features_job, calls):
                log.info("[%d/%d] features %s: accuracy %s; caches %s", i + 1, len(features),
                         features[i].tag, _accuracy(metrics), _caches(metrics))  # fmt: skip
            times["features"] = time.perf_counter() - tick

    tick = time.perf_counter()
    _figures(spec, work, out, jobs)
    times["figures"] = time.perf_counter() - tick
    tick = time.perf_counter()
    runs = [work / "eval" / d for d in dict.fromkeys(j.design for j in jobs)
            if d not in DISCOVERY_DATA]  # fmt: skip
    runs += [work / "features" / d for d in FEATURE_DATA if spec.features]
    report = write_report(runs, out, paper="auto")
    if spec.discovery:  # Section 4.2: its own folder, tables and figures
        found = [work / "eval" / d for d in DISCOVERY_DATA] + [work / "features" / "text"]
        write_report(found, out / "discovery", paper="auto")
    times["report"] = time.perf_counter() - tick
    times["total"] = time.perf_counter() - start
    record = _record_path(spec, out)
    if record is not None:
        log.info("%s", record_check(out, record, spec))
    _write_command(out, spec, times, f"{len(jobs) - len(reused)} trained, {len(reused)} reused",
                   reused)  # fmt: skip
    log.info(
        "done in %.0f s (data %.0f, train+eval %.0f, figures %.0f): %s",
        times["total"], times["data"], times["train_and_eval"], times["figures"], report["out"],
    )  # fmt: skip
    return times


# The record: the repository's committed results (absent from an installed wheel).
RECORD = Path(__file__).resolve().parents[1] / "results" / "synthetic" / "summary.csv"
# What record_check compares: summary.csv's metric columns.
RECORD_METRICS = {
    "cls_top1_err": "top-1 cls err",
    "loc_top1_err": "top-1 loc err",
    "loc_top5_err": "top-5 loc err",
    "gt_known_loc_err": "GT-known loc err",
    "maxboxacc_v2": "MaxBoxAccV2",
}


def _comparable(settings: dict[str, Any]) -> dict[str, Any]:
    """What a run must share with the record for its numbers to be comparable at all, from its
    settings (asdict(ReproduceConfig), as command.txt records them; width 1 before the key)."""
    return {"epochs": settings.get("epochs"), "width_mult": settings.get("width_mult", 1.0),
            "synth": settings.get("synth"),
            "runtime.amp": (settings.get("runtime") or {}).get("amp")}  # fmt: skip


def _record_path(spec: ReproduceConfig, out: Path) -> Path | None:
    if spec.record == "off":
        return None
    record = RECORD if spec.record == "auto" else Path(spec.record)
    if not record.is_file():
        if spec.record != "auto":
            raise MissingFileError(f"record={spec.record}: no such summary.csv")
        return None
    if record.resolve() == (out / "summary.csv").resolve():  # regenerating the record itself
        return None
    return record


def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {"variant", "seed", "data", *RECORD_METRICS} - set(rows[0] if rows else {})
    if missing:
        raise InputFileError(f"{path}: not a cam-report summary.csv (no {', '.join(missing)})")
    return rows


def _recorded_settings(record: Path) -> dict[str, Any] | None:
    """The settings line of the record's command.txt (None: no such file or line)."""
    command = record.parent / "command.txt"
    if not command.is_file():
        return None
    for line in command.read_text().splitlines():
        if line.startswith("settings: "):
            return json.loads(line[len("settings: ") :])
    return None


def _shown(path: Path) -> str:
    """A path as the user would write it: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def record_check(out: Path, record: Path, spec: ReproduceConfig) -> str:
    """Compare OUT/summary.csv's rows with the record's (same data and model), write
    OUT/record_check.md, and return a one-line verdict.

    Exact numbers depend on the CPU (bf16 kernels differ between CPUs), the precision and the
    thread count, so the test is the record's spread: a value is "within" if it lies in the
    record's mean +- 2 std over its seeds. Whether the record's row of the same seed is equal
    to this run's is reported beside it.
    """
    ours, theirs = _read_rows(out / "summary.csv"), _read_rows(record)
    lines = [
        f"# This run against the record ({_shown(record)})",
        "",
        "Exact numbers depend on the CPU (bf16 kernels differ between CPUs), the precision and "
        "the thread count: the same settings on the same machine give identical numbers, other "
        "machines a seed's worth of noise. A value is within the record if it lies in the "
        "record's mean +- 2 std over its seeds (same data, same model).",
        "",
    ]
    mine, recorded = _comparable(asdict(spec)), _recorded_settings(record)
    if recorded is not None and _comparable(recorded) != mine:
        differ = [k for k, v in _comparable(recorded).items() if v != mine[k]]
        lines += [f"The record was made with other settings ({', '.join(differ)}): "
                  "its spread is not this run's.", ""]  # fmt: skip
    lines += [
        "| model | data | seed | metric | this run | record, same seed | record mean +- std "
        "(seeds) | within +- 2 std |",
        "|---|---|---|---|---|---|---|---|",
    ]
    within = compared = equal = 0
    for row in ours:
        same = [r for r in theirs if r["variant"] == row["variant"] and r["data"] == row["data"]]
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
            f"seeds ({equal} equal to the record's row of the same seed); {out / 'record_check.md'}"
        )
    lines += ["", verdict.replace("record check: ", "", 1), ""]
    write_text_atomic(out / "record_check.md", "\n".join(lines))
    return verdict


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


def cpu_name() -> str:
    """The CPU's model name and its bf16 instructions (bf16 kernels, so the record's exact
    numbers, differ between CPUs): from /proc/cpuinfo where there is one."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    fields = dict(
        (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in info.splitlines())
    )
    flags = set(fields.get("flags", "").split())
    bf16 = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return f"{fields.get('model name', 'unknown CPU')} ({', '.join(bf16) or 'no native bf16'})"


def _write_command(
    out: Path, spec: ReproduceConfig, times: dict[str, float], runs: str, reused: list[str]
) -> None:
    argv = ["cam-reproduce", *sys.argv[1:]] if sys.argv else ["cam-reproduce"]
    lines = [
        "# How these results were made (written by cam-reproduce)",
        "",
        "$ " + shlex.join(argv),
        "",
        f"settings: {json.dumps(asdict(spec), sort_keys=True)}",
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} CPU(s): {cpu_name()}",
        f"runs: {runs}; seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()),
        "reused trainings (finished before, same settings and data): "
        + (", ".join(reused) or "none"),
        "",
    ]
    write_text_atomic(out / "command.txt", "\n".join(lines))
