"""One cam-reproduce job in a worker process: a training (unless a finished one of the same
settings, method and data is there) and its evaluation (the methods stage's: at held-out
thresholds too), or one cam-features run; each composed as its command line would be, and that
command line logged to WORK/logs/."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
from pathlib import Path
from typing import Any

from cam_repro.apps import CONFIG_DIR, compose
from cam_repro.reproduce.plan import FeatureJob, Job, PosthocJob
from cam_repro.runtime.config import RuntimeConfig
from cam_repro.runtime.errors import ConfigError
from cam_repro.runtime.files import make_dir, read_json, write_json
from cam_repro.runtime.metrics_file import OlderSchemaError, read_metrics

log = logging.getLogger(__name__)


def threads_per_job(threads: int | None, jobs: int) -> int:
    """Each job's CPU threads: `runtime.threads` if given, else the cores split between jobs."""
    return threads or max(1, (os.cpu_count() or 1) // jobs)


def runtime_overrides(rt: RuntimeConfig, threads: int) -> dict[str, Any]:
    """The runtime keys every job is given (cam-train's, cam-eval's and cam-features' alike)."""
    return {"runtime.amp": rt.amp, "runtime.device": rt.device,
            "runtime.channels_last": rt.channels_last, "runtime.threads": threads,
            "runtime.progress": rt.progress}  # fmt: skip


def _log_command(path: Path, app: str, overrides: list[str]) -> None:
    """Append the command line that re-runs this stage by hand to the job's log."""
    make_dir(path.parent)
    with path.open("a") as f:
        f.write(f"$ cam-{app} " + shlex.join(overrides) + "\n")


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
    # the method trained: a CAM run is never reused as another method's (trainings from before
    # methods have no method key: CAM's)
    have_method = OmegaConf.select(cfg, "method.name") or "cam"
    if have != want or have_model != job.model or have_method != job.method:
        raise ConfigError(
            f"{train_dir} holds a training of other settings ({have_model}, method "
            f"{have_method}, {have}; this run: {job.model}, method {job.method}, {want}): pass "
            "reuse=false to retrain, or another work=FOLDER"
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
    try:
        return read_metrics(metrics, "train").status == "finished"
    except OlderSchemaError as err:  # its numbers would not be read: trained again, or resumed
        log.warning("%s: not reused as finished", err)
        return False


def train_and_eval(
    job: Job, data: Path, stamp: str, heldout: tuple[Path, str] | None = None, *, work: Path,
    epochs: int, width_mult: float, runtime: dict[str, Any], reuse: bool,
) -> bool:  # fmt: skip
    """Train one job on `data` (unless it is done, on the same data: `stamp`) with `epochs` and
    `width_mult` and the `runtime` keys (`runtime_overrides`), and evaluate its last checkpoint,
    in this process (a worker of the pool: one import of torch for many jobs); returns whether it
    trained. Without `reuse`, an old training folder is removed first (no resume from it). A job
    of the methods stage (`job.heldout`) is evaluated at held-out thresholds too (`heldout`: the
    held-out set's root and name, `heldout_eval`)."""
    from cam_repro.evaluate.loop import evaluate_run
    from cam_repro.train.trainer import train

    train_dir, eval_dir = job.train_dir(work), job.eval_dir(work)
    job_log = work / "logs" / f"{job.tag.replace('/', '-')}.log"
    # what a finished training must have been trained with to be reused
    settings = {"seed": job.seed, "data.root": str(data), "trainer.epochs": epochs,
                "model.width_mult": width_mult, "runtime.amp": runtime["runtime.amp"],
                "runtime.threads": runtime["runtime.threads"]}  # fmt: skip
    if not reuse:
        shutil.rmtree(train_dir, ignore_errors=True)  # start over: no resume from an old run
    trains = not _finished(job, work, settings, stamp)
    if trains:
        _record_data(job, work, data, stamp)
        given = {"model": job.model, **settings, "trainer.eval_every": epochs, **runtime,
                 "trainer.resume": "auto"}  # fmt: skip
        overrides = [*job.task, *(f"{key}={value}" for key, value in given.items())]
        _log_command(job_log, "train", [*overrides, f"hydra.run.dir={train_dir}"])
        train(compose("train", overrides), train_dir, overrides=overrides)
    # the evaluation is always redone (it is cheap, and the training may be new)
    overrides = [f"checkpoint={job.checkpoint(work)}", "overwrite=true", "sweep=true"]
    overrides += [f"{key}={value}" for key, value in runtime.items()]
    _log_command(job_log, "eval", [*overrides, f"hydra.run.dir={eval_dir}"])
    evaluate_run(compose("eval", overrides), eval_dir)
    if job.heldout:
        if heldout is None:
            raise ConfigError(f"{job.tag}: a methods stage job needs its design's held-out set")
        heldout_eval(job, *heldout, work=work, runtime=runtime)
    return trains


def _sweep_then_score(
    job_log: Path, common: list[str], held: tuple[Path, str], source: Path, target: Path,
    scored: tuple[Path, str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A checkpoint's sweep on a held-out set (`held`: its root, and its name in the tables) into
    `source`, whose best thresholds (per IoU level for MaxBoxAccV2, GT-known accuracy for the
    paper rule) then score the `scored` set (None: the checkpoint's own val split) into `target`
    with cam-eval threshold_from, which checks that the images are disjoint. `common`: the
    overrides of both runs (the checkpoint, the localizer, the runtime keys). Returns the scored
    run's metrics.json."""
    from cam_repro.evaluate.loop import evaluate_run

    overrides = [*common, f"data.root={held[0]}", f"data.name='{held[1]}'", "split=val",
                 "sweep=true"]  # fmt: skip
    _log_command(job_log, "eval", [*overrides, f"hydra.run.dir={source}"])
    evaluate_run(compose("eval", overrides), source)
    data = [f"data.root={scored[0]}", f"data.name='{scored[1]}'"] if scored else []
    overrides = [*common, *data, f"threshold_from={source}"]
    _log_command(job_log, "eval", [*overrides, f"hydra.run.dir={target}"])
    return evaluate_run(compose("eval", overrides), target)


def heldout_eval(job: Job, root: Path, name: str, *, work: Path, runtime: dict[str, Any]) -> None:
    """The methods stage's evaluation of a job's last checkpoint at held-out thresholds: its
    sweep on the held-out set at `root` (other images of the same classes, named `name` in the
    tables), whose thresholds then score the job's own val split (`_sweep_then_score`). Every
    method's, CAM's included, is measured alike."""
    common = [f"checkpoint={job.checkpoint(work)}", "overwrite=true",
              *(f"{key}={value}" for key, value in runtime.items())]  # fmt: skip
    job_log = work / "logs" / f"{job.tag.replace('/', '-')}.log"
    _sweep_then_score(job_log, common, (root, name), job.threshold_dir(work),
                      job.heldout_eval_dir(work))  # fmt: skip


def posthoc_eval(
    job: PosthocJob, scored: tuple[Path, str], held: tuple[Path, str], *, work: Path,
    runtime: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The post-hoc stage's evaluation of one network localized one way (our CAM, or a torch-cam
    method): its sweep on the held-out set (`held`: root and name in the tables), whose best
    thresholds then score the scored set (`scored`), with topk=1 (the top-1 and true class's
    maps: the costly methods pay per map). Returns the scored run's metrics.json."""
    way = (["localizer=cam"] if job.localizer == "cam"
           else ["localizer=torchcam", f"torchcam.method={job.localizer}"])  # fmt: skip
    common = [f"checkpoint={job.trained.checkpoint(work)}", *way, "topk=1", "overwrite=true",
              *(f"{key}={value}" for key, value in runtime.items())]  # fmt: skip
    job_log = work / "logs" / f"posthoc-{job.tag.replace('/', '-')}.log"
    return _sweep_then_score(job_log, common, held, job.threshold_dir(work), job.eval_dir(work),
                             scored)  # fmt: skip


def _pool(model: str) -> str:
    """The model's global pooling (its config file's `pool`): its features kind."""
    from omegaconf import OmegaConf

    return str(OmegaConf.load(Path(CONFIG_DIR, "model", f"{model}.yaml")).get("pool", "gap"))


def features_job(
    job: FeatureJob, data: Path, *, work: Path, trained_on: str, width_mult: float,
    runtime: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """One cam-features run on `data` (in a worker of the pool): the network trained on the
    design `trained_on` (trained weights), on the job's own dataset (own), or a fresh one of
    `width_mult` (random); returns its metrics.json."""
    from cam_repro.features.run import features_run

    given: dict[str, Any] = {"data": "synthetic", "data.root": str(data)}
    if job.dataset == "fine":
        given["data.source"] = "cub"
    if job.weights == "random":
        given.update({"model": job.model, "model.width_mult": width_mult, "seed": job.seed})
    else:
        design = trained_on if job.weights == "trained" else job.dataset
        given["checkpoint"] = str(Job(design, job.model, job.seed).checkpoint(work))
    given.update({"features": _pool(job.model), "crop": job.crop, "overwrite": "true",
                  "cache_dir": str(job.cache(work)), **runtime})  # fmt: skip
    overrides = [f"{key}={value}" for key, value in given.items()]
    run_dir = job.run_dir(work)
    _log_command(work / "logs" / f"features-{job.tag.replace('/', '-')}.log", "features",
                 [*overrides, f"hydra.run.dir={run_dir}"])  # fmt: skip
    return features_run(compose("features", overrides), run_dir)


def features_outcome(metrics: dict[str, Any]) -> str:
    """A features run's log line ending: 'accuracy 91.2%; caches cam val reused, ...'."""
    return f"accuracy {_accuracy(metrics)}; caches {_caches(metrics)}"


def _accuracy(metrics: dict[str, Any]) -> str:
    """A features run's accuracy for the log ('undefined (reason)' when it has none)."""
    value = metrics["accuracy"]
    if value is None:
        return f"undefined ({metrics['undefined'].get('accuracy', 'no reason given')})"
    return f"{value:.1f}%"


def _caches(metrics: dict[str, Any]) -> str:
    """A features run's cache use for the log: 'cam val reused, full val made (absent), ...'."""
    return ", ".join(
        f"{c['part']} {c['split']} {c['status']}" + (f" ({c['reason']})" if c["reason"] else "")
        for c in metrics["caches"]
    )
