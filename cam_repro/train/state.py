"""The run's state: where training is (`RunState`), what a checkpoint holds, and resuming from
one (which checkpoint, whether it fits this run, restoring it).

A checkpoint is written by `models.checkpoint.save_checkpoint`; this module decides its
contents. Every process gathers into it (RNG states, partial epoch sums), so that a resume on
the same number of processes is bit-exact, mid-epoch included.
"""

from __future__ import annotations

import logging
import shlex
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import ListConfig, OmegaConf
from torch import Tensor, nn

from cam_repro.data.dataset import SkipLog
from cam_repro.models import paper_name, variant_name
from cam_repro.models.checkpoint import save_checkpoint
from cam_repro.models.config import ModelConfig, config_differences
from cam_repro.models.method_config import MethodConfig, method_title
from cam_repro.runtime import distributed as D
from cam_repro.runtime.errors import ConfigError
from cam_repro.runtime.files import atomic_write, write_text_atomic
from cam_repro.runtime.rng import rng_state, set_rng_state
from cam_repro.train.config import TrainConfig
from cam_repro.train.optim import Optimization

# train.log names cam-train's lines by this logger, as it did when one module held the loop
LOG_NAME = "cam_repro.train.trainer"
log = logging.getLogger(LOG_NAME)

# In the run folder, beside config.yaml: the command-line overrides of the cam-train command that
# last ran the run (a YAML list, as Hydra's .hydra/overrides.yaml), so that a refused resume can
# print the command that continues it, whatever settings it was started with.
OVERRIDES_FILE = "overrides.yaml"


def _no_partial() -> Tensor:
    return torch.zeros(3, dtype=torch.float64)


@dataclass
class RunState:
    """Where the run is, beside the weights and the optimization: what a resume restores."""

    epoch: int = 0  # epochs done (the one running, 0-based, during an epoch)
    step_in_epoch: int = 0  # batches done in the running epoch
    global_step: int = 0  # optimizer steps over the run
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per epoch done
    best: dict[str, Any] | None = None  # the history entry with the lowest val top-1 error
    partial: Tensor = field(default_factory=_no_partial)  # train loss, correct, images so far
    resumed_from: str | None = None
    saved_at: tuple[int, int] | None = None  # (epochs done, batches) in last.pt

    def end_epoch(self) -> None:
        """Move to the next epoch's start."""
        self.epoch, self.step_in_epoch = self.epoch + 1, 0
        self.partial = _no_partial()

    def where(self) -> str:
        return f"epoch {self.epoch + 1}, batch {self.step_in_epoch}"


def run_identity(
    spec: TrainConfig, classes: list[str], class_names: Any, question_vocab: list[str] | None
) -> dict[str, Any]:
    """What a checkpoint says the run is: its config (the method's beside the model's), classes
    (and VQA's question words), names (the paper's, with the method unless it is CAM)."""
    return {
        "config": OmegaConf.to_container(OmegaConf.structured(spec)),
        "classes": classes,
        "class_names": class_names,
        **({"question_vocab": question_vocab} if question_vocab else {}),
        "variant": variant_name(spec.model),
        "paper_name": method_title(paper_name(spec.model), spec.method.name),
    }


def checkpoint_state(
    model: nn.Module,
    optimization: Optimization,
    run: RunState,
    env: D.Dist,
    *,
    steps: int,
    skips: tuple[SkipLog, SkipLog],
    identity: dict[str, Any],
) -> dict[str, Any]:
    """Everything a resume needs; call on every process (it gathers RNG states and partial sums).
    `skips`: the train and val splits' unreadable images; `identity`: `run_identity`."""
    rngs = D.gather_objects(rng_state(), env)
    partials = D.gather_objects(run.partial.cpu(), env)
    return {
        "model": model.state_dict(),
        **{key: obj.state_dict() for key, obj in optimization.parts()},
        "epoch": run.epoch,
        "step_in_epoch": run.step_in_epoch,
        "global_step": run.global_step,
        "steps_per_epoch": steps,
        "rng": rngs,
        "partial": partials,
        "history": run.history,
        "skipped": {"train": skips[0].at_load, "val": skips[1].at_load},
        "best": run.best,
        **identity,
        "world_size": env.world_size,
    }


def save_run(state: dict[str, Any], last: Path, best: Path | None, env: D.Dist) -> None:
    """Write `last` on rank 0 (and copy it to `best` if given), then wait for every process."""
    if env.is_main:
        save_checkpoint(last, state)
        if best is not None:
            atomic_write(best, lambda tmp: shutil.copyfile(last, tmp))
    D.barrier(env)


def record_overrides(run_dir: Path, overrides: list[str]) -> None:
    """Write the run's OVERRIDES_FILE: `overrides` (Hydra's task overrides), but trainer.resume,
    which a resume command sets itself."""
    kept = [o for o in overrides if _key(o) != "trainer.resume"]
    write_text_atomic(run_dir / OVERRIDES_FILE, OmegaConf.to_yaml(OmegaConf.create(kept)))


def _key(override: str) -> str:
    """An override's key: `+trainer.resume=auto` -> trainer.resume."""
    return override.split("=", 1)[0].lstrip("+~")


def recorded_overrides(run_dir: Path) -> list[str] | None:
    """The overrides in the run folder's OVERRIDES_FILE; None without a readable one (a run
    started from Python, or by a version that did not record them)."""
    try:
        loaded = OmegaConf.load(run_dir / OVERRIDES_FILE)
    except Exception:  # missing, unreadable, not YAML (PyYAML's own errors): no record
        return None
    overrides = OmegaConf.to_container(loaded, resolve=False)  # ${...} stays as typed
    if not isinstance(loaded, ListConfig) or not all(isinstance(o, str) for o in overrides):
        return None
    return overrides  # type: ignore[return-value]


def resume_command(checkpoint: Path, run_dir: Path) -> str:
    """The command that continues from `checkpoint` into `run_dir`: cam-train with the overrides
    recorded in the checkpoint's run folder (RUN/checkpoints/last.pt -> RUN), trainer.resume
    (auto for run_dir's own last.pt) and hydra.run.dir."""
    own = checkpoint == run_dir / "checkpoints" / "last.pt"
    ending = [f"trainer.resume={'auto' if own else checkpoint}", f"hydra.run.dir={run_dir}"]
    folder = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else None
    overrides = recorded_overrides(folder) if folder is not None else None
    if overrides is None:
        return f"cam-train <the overrides it was started with> {shlex.join(ending)}"
    return shlex.join(["cam-train", *overrides, *ending])


def resume_path(resume: str | None, last: Path, run_dir: Path) -> Path | None:
    """The checkpoint that `trainer.resume` names (null, auto or a path), or None: start fresh.
    A fresh start in a run dir that already holds a run is refused, with the command that
    continues it."""
    if resume is None:
        if last.exists():
            raise ConfigError(
                f"{run_dir} already holds a run ({last}); continue it with: "
                f"{resume_command(last, run_dir)}; or choose another hydra.run.dir"
            )
        return None
    if resume == "auto":
        if not last.exists():
            log.info("trainer.resume=auto: no %s yet, starting from scratch", last)
            return None
        return last
    return Path(resume).expanduser()


def check_compatible(
    state: dict[str, Any],
    path: Path,
    *,
    model: ModelConfig,
    method: MethodConfig,
    classes: list[str],
    question_vocab: list[str] | None,
    data_root: str,
    schedule: str,
    epochs: int,
    steps: int,
    command: str,
) -> None:
    """Refuse a checkpoint that this run cannot continue: another model or method config, other
    classes or question words, a one-cycle schedule laid out over other epochs, other batches per
    epoch; each refusal ends with `command`, the one that resumes it (`resume_command`)."""
    resume = f"; the command that resumes it: {command}"
    differ = config_differences(model, state["config"].get("model", {}))
    if differ:
        raise ConfigError(
            f"{path}: was trained with another model config ({'; '.join(differ)}); "
            f"resume with the same model.* settings{resume}"
        )
    differ = method_differences(method, state["config"].get("method") or {})
    if differ:
        raise ConfigError(
            f"{path}: was trained with another method config ({'; '.join(differ)}); "
            f"resume with the same method.* settings{resume}"
        )
    if list(state["classes"]) != classes:
        raise ConfigError(f"{path}: was trained on other classes than {data_root}{resume}")
    if state.get("question_vocab") != question_vocab:
        raise ConfigError(
            f"{path}: was trained with other question words than {data_root}'s{resume}"
        )
    before = state["config"].get("trainer", {}).get("epochs")
    if schedule == "onecycle" and before != epochs:
        raise ConfigError(
            f"{path}: a one-cycle schedule is laid out over its {before} epochs; resume it "
            f"with trainer.epochs={before} (or fine-tune from it: model.weights_path={path})"
            f"{resume}"
        )
    if state.get("steps_per_epoch") not in (None, steps):
        raise ConfigError(
            f"{path}: was trained with {state['steps_per_epoch']} batches per epoch, this run "
            f"has {steps}; resume with the same data and data.batch_size{resume}"
        )


def method_differences(ours: MethodConfig, theirs: dict[str, Any]) -> list[str]:
    """'key theirs in the file, ours here' for every method key (but the citation, which is only
    shown) on which a checkpoint's method config and ours differ; a checkpoint without one (saved
    before the methods) was trained with plain CAM, every key at its default."""
    mine, default = asdict(ours), asdict(MethodConfig())
    saved = {**default, **theirs}
    return [
        f"{key} {saved[key]!r} in the file, {mine[key]!r} here"
        for key in mine
        if key != "citation" and saved[key] != mine[key]
    ]


def restore(
    state: dict[str, Any],
    path: Path,
    model: nn.Module,
    optimization: Optimization,
    env: D.Dist,
    *,
    skips: tuple[SkipLog, SkipLog],
    last: Path,
) -> RunState:
    """Load a checked checkpoint `state` (read from `path`) into the model, the optimization,
    the unreadable-image logs (train, val) and the RNGs; returns where the run is."""
    model.load_state_dict(state["model"])
    for key, obj in optimization.parts():
        if key not in state:
            raise ConfigError(f"{path}: holds no {key} state; it cannot resume a run")
        obj.load_state_dict(state[key])
    run = RunState(
        epoch=state["epoch"],
        step_in_epoch=state["step_in_epoch"],
        global_step=state["global_step"],
        history=list(state["history"]),
        best=state["best"],
    )
    skipped = state.get("skipped") or {}
    skips[0].merge([skipped.get("train", {})])
    skips[1].merge([skipped.get("val", {})])
    rngs = state["rng"]
    same_world = len(rngs) == env.world_size
    set_rng_state(rngs[env.rank] if same_world else rngs[0])
    if same_world:
        run.partial = state["partial"][env.rank].clone()
    if not same_world and run.step_in_epoch:
        log.warning("resuming mid-epoch with another number of processes: not bit-exact")
    run.resumed_from = str(path)
    if path == last:
        run.saved_at = (run.epoch, run.step_in_epoch)
    log.info(
        "resumed from %s: epoch %d, batch %d (step %d)",
        path,
        run.epoch + 1,
        run.step_in_epoch,
        run.global_step,
    )
    return run
