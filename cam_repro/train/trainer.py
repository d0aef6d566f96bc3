"""`cam-train`'s run: `Trainer` wires the data, network, optimization, state, guards and logs
together and runs the epochs; `train` runs it inside the run context. One process, or one of
many under torchrun (DDP).

A run writes into its run dir: config.yaml, train.log, metrics.json, checkpoints/last.pt and
checkpoints/best.pt, and TensorBoard events under tb/. Only rank 0 writes. The pieces:
`train.epoch` (one pass over the data), `train.state` (checkpoints and resume), `train.guards`
(unreadable images, NaN/inf), `train.logs` (train.log, metrics.json, TensorBoard).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import Tensor, nn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from cam_repro.data import read_split
from cam_repro.data.dataset import SkipLog
from cam_repro.data.loaders import eval_loader, steps_per_epoch, train_loader
from cam_repro.models import build_model, variant_name
from cam_repro.models.checkpoint import load_checkpoint
from cam_repro.models.vqa import build_vqa_model
from cam_repro.models.weights import weights_record
from cam_repro.runtime import distributed as D
from cam_repro.runtime.context import run_context
from cam_repro.runtime.errors import ConfigError, RunInterruptedError
from cam_repro.runtime.files import write_text_atomic
from cam_repro.train import guards, logs, state
from cam_repro.train.config import TrainConfig, train_config
from cam_repro.train.epoch import batch_inputs, train_one_epoch, validate
from cam_repro.train.guards import TrainingDivergedError
from cam_repro.train.methods import MethodLoss
from cam_repro.train.optim import Optimization, build_optimizer, build_scheduler

log = logging.getLogger(__name__)

StepHook = Callable[["Trainer"], None]


def set_determinism(deterministic: bool, device: torch.device) -> None:
    """Deterministic kernels (bit-exact reruns and resume), or cuDNN's autotuner on a GPU."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


class Trainer:
    """Builds data, model, optimization and state from the config, then `fit()`s."""

    def __init__(self, spec: TrainConfig, run_dir: Path, env: D.Dist) -> None:
        self.spec, self.run_dir, self.env = spec, run_dir, env
        self.last_path = run_dir / "checkpoints" / "last.pt"
        self.best_path = run_dir / "checkpoints" / "best.pt"
        t, rt = spec.trainer, spec.runtime
        if rt.amp == "fp16" and env.device.type != "cuda":
            raise ConfigError(
                "runtime.amp=fp16 needs a GPU for training; use runtime.amp=bf16 on CPU"
            )
        set_determinism(t.deterministic, env.device)
        self._read_data()
        self.model, reused = self._build_model()  # the plain module: state dicts, eval, CAMs
        self.inputs = batch_inputs(spec)
        self.method_loss = MethodLoss(spec.method)  # the training step's inputs and loss
        optimizer = build_optimizer(self.model, spec.optim, reused)
        self.train_loader = train_loader(self.train_data, spec.data, env, spec.seed)
        self.val_loader = eval_loader(self.val_data, spec.data, env)
        self.steps = steps_per_epoch(self.train_loader)
        self.optimization = Optimization(
            optimizer,
            build_scheduler(optimizer, spec.optim, t.epochs, self.steps),
            torch.amp.GradScaler(env.device.type, enabled=rt.amp == "fp16"),
        )
        self.identity = state.run_identity(
            spec, self.classes, self.train_data.class_names, self.question_vocab
        )
        self.label = logs.RunLabel(
            variant_name(spec.model),
            self.identity["paper_name"],
            spec.method.name,
            spec.seed,
            len(self.classes),
            env.world_size,
            self.weights_load,
        )
        self.run = self._resume()
        self.rank_digests: list[object] = []
        self.net = self._training_net()  # what the training step calls
        self.board: logs.Board | None = None
        self.cam_indices: list[int] = []
        if env.is_main and t.tensorboard:
            purge = self.run.global_step if self.run.resumed_from else None
            self.board = logs.Board(run_dir / "tb", purge)
            self.cam_indices = logs.cam_images(t.cam_images, len(self.val_data), self.model)

    @property
    def global_step(self) -> int:
        """Optimizer steps so far (for `on_step` hooks)."""
        return self.run.global_step

    def _read_data(self) -> None:
        data = self.spec.data
        self.train_data = read_split(data, "train")
        self.val_data = read_split(data, "val", like=self.train_data)
        self.skips = (SkipLog(self.train_data), SkipLog(self.val_data))  # train, val
        if self.env.is_main:
            guards.check_val_headers(
                self.val_data,
                self.skips[1],
                bad_images=data.bad_images,
                root=data.root,
                workers=data.num_workers,
                max_pixels=data.max_image_pixels,
                progress=self.spec.runtime.progress,
            )
        self.classes = self.train_data.classes
        if self.val_data.classes != self.classes:
            raise ConfigError(f"{data.root}: the train and val splits have different classes")
        questions = self.train_data.questions
        # VQA: the train split's question words (val was read with them), kept in checkpoints
        self.question_vocab = questions.vocab if questions is not None else None

    def _build_model(self) -> tuple[nn.Module, Collection[str] | None]:
        """The network on the device, with the same initial weights in every process, and the
        names of the parameters its weights file loaded (None: no weights file)."""
        spec, env = self.spec, self.env
        torch.manual_seed(spec.seed)
        if self.question_vocab is not None:
            model = build_vqa_model(spec.model, len(self.classes), len(self.question_vocab))
        else:
            model = build_model(spec.model, len(self.classes), method=spec.method)
        self.weights_load = weights_record(model)  # before any wrapping
        reused = getattr(model, "reused_keys", None)
        if spec.trainer.sync_bn and env.distributed:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model.to(env.device)
        if spec.runtime.channels_last:
            model.to(memory_format=torch.channels_last)
        return model, reused

    def _training_net(self) -> nn.Module:
        """The model as the training step runs it: DDP-wrapped under torchrun, compiled if asked."""
        net: nn.Module = self.model
        if self.env.distributed:
            device = self.env.device
            ids = [device.index] if device.type == "cuda" else None
            net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        return torch.compile(net) if self.spec.trainer.compile else net

    # -- checkpoints -------------------------------------------------------------------------

    def _resume(self) -> state.RunState:
        s = self.spec
        path = state.resume_path(s.trainer.resume, self.last_path, self.run_dir)
        if path is None:
            return state.RunState()
        saved = load_checkpoint(path)
        state.check_compatible(
            saved,
            path,
            model=s.model,
            method=s.method,
            classes=self.classes,
            question_vocab=self.question_vocab,
            data_root=s.data.root,
            schedule=s.optim.schedule,
            epochs=s.trainer.epochs,
            steps=self.steps,
            command=state.resume_command(path, self.run_dir),
        )
        return state.restore(
            saved, path, self.model, self.optimization, self.env, skips=self.skips,
            last=self.last_path,
        )  # fmt: skip

    def _save(self, best: bool = False) -> None:
        if not guards.weights_finite(self.model, self.env):
            raise self._diverged("a weight became NaN or infinite")
        saved = state.checkpoint_state(
            self.model, self.optimization, self.run, self.env, steps=self.steps,
            skips=self.skips, identity=self.identity,
        )  # fmt: skip
        state.save_run(saved, self.last_path, self.best_path if best else None, self.env)
        self.run.saved_at = (self.run.epoch, self.run.step_in_epoch)

    def interrupted(self) -> RunInterruptedError:
        """The error for Ctrl-C: where the last checkpoint is and how to resume from it."""
        where = self.run.where()
        if self.run.saved_at is None:
            self._write_metrics(status=f"interrupted at {where}, no checkpoint")
            return RunInterruptedError(
                f"interrupted at {where}, before the first checkpoint: nothing to resume from"
            )
        epochs, batches = self.run.saved_at
        at = f"after epoch {epochs}" if not batches else f"at epoch {epochs + 1}, batch {batches}"
        self._write_metrics(status=f"interrupted at {where}; last checkpoint {at}")
        return RunInterruptedError(
            f"interrupted at {where}; the last checkpoint ({at}) is {self.last_path}",
            resume=["trainer.resume=auto", f"hydra.run.dir={self.run_dir}"],
        )

    def _diverged(self, what: str) -> TrainingDivergedError:
        error = guards.diverged_error(what, self.run, self.last_path)
        self._write_metrics(status=f"diverged: {what} at {self.run.where()}")
        return error

    def _write_metrics(self, status: str) -> dict[str, Any]:
        if not self.env.is_main:
            return {}
        counts = guards.skip_counts(*self.skips)
        path = self.run_dir / "metrics.json"
        return logs.write_metrics(path, status, self.label, self.run, counts, self.rank_digests)

    # -- the loop ----------------------------------------------------------------------------

    def fit(self, on_step: StepHook | None = None) -> dict[str, Any]:
        """Train the remaining epochs; returns the metrics (rank 0; {} elsewhere)."""
        bars = self.spec.runtime.progress and self.env.is_main
        with logging_redirect_tqdm() if bars else nullcontext():  # log lines above the bars
            return self._fit(on_step)

    def _fit(self, on_step: StepHook | None) -> dict[str, Any]:
        t, run, env = self.spec.trainer, self.run, self.env
        if env.is_main:
            logs.log_start(
                self.label, self.model, sizes=(len(self.train_data), len(self.val_data)),
                steps=self.steps, batch_size=self.spec.data.batch_size, epochs=t.epochs,
                device=env.device, resumed_from=run.resumed_from, run_dir=self.run_dir,
            )  # fmt: skip
        start = time.perf_counter()
        epochs = tqdm(
            range(run.epoch, t.epochs),
            desc="epochs",
            initial=run.epoch,
            total=t.epochs,
            disable=not (self.spec.runtime.progress and env.is_main),
        )
        for epoch in epochs:
            run.epoch = epoch
            entry: dict[str, Any] = {"epoch": epoch + 1, **self._train_epoch(on_step)}
            improved = False
            if (epoch + 1) % t.eval_every == 0 or epoch + 1 == t.epochs:
                val = self._validate()
                entry.update({f"val_{k}": v for k, v in val.items() if k != "images"})
                improved = run.best is None or val["top1_err"] < run.best["val_top1_err"]
                if improved:
                    run.best = dict(entry)
            run.history.append(entry)
            guards.merge_skips(self.skips, env)
            run.end_epoch()
            self._save(best=improved)
            if env.is_main:
                self._report_epoch(entry)
                self._write_metrics(status="running")  # "finished" once the loop is done
        return self._finish(start)

    def _finish(self, start: float) -> dict[str, Any]:
        digests = D.gather_objects(guards.weights_digest(self.model), self.env)
        if len(set(digests)) > 1:
            log.warning("the processes ended with different weights: %s", digests)
        metrics: dict[str, Any] = {}
        if self.env.is_main:
            self.rank_digests = digests
            counts = guards.skip_counts(*self.skips)
            logs.log_done(time.perf_counter() - start, self.run.best, counts)
            metrics = self._write_metrics(status="finished")
        if self.board:
            self.board.close()
        return metrics

    def _train_epoch(self, on_step: StepHook | None) -> dict[str, float]:
        t, run = self.spec.trainer, self.run
        self.train_loader.sampler.set_position(
            run.epoch, run.step_in_epoch * self.spec.data.batch_size
        )

        def on_window(loss: float) -> None:
            if self.board:
                self.board.train_window(loss, self.optimization.lr, run.global_step)

        def after_step(stats: Tensor) -> None:
            # (The epoch's end saves anyway.)
            every = t.checkpoint_every
            if every and run.global_step % every == 0 and run.step_in_epoch < self.steps:
                run.partial = stats.cpu()
                self._save()
            if on_step is not None:
                on_step(self)

        return train_one_epoch(
            self.net, self.model, self.train_loader, self.optimization, self.inputs, self.env,
            run, self.skips[0], method_loss=self.method_loss,
            desc=f"epoch {run.epoch + 1}/{t.epochs}", log_every=t.log_every,
            progress=self.spec.runtime.progress, on_window=on_window, after_step=after_step,
            diverged=self._diverged,
        )  # fmt: skip

    def _validate(self) -> dict[str, float]:
        D.broadcast_buffers(self.model, self.env)  # evaluate and save rank 0's model
        return validate(
            self.model, self.val_loader, self.inputs, self.env, skips=self.skips[1],
            progress=self.spec.runtime.progress,
        )  # fmt: skip

    def _report_epoch(self, entry: dict[str, Any]) -> None:
        logs.log_epoch(entry, self.spec.trainer.epochs)
        if self.board:
            cams = None
            if "val_top1_err" in entry and self.cam_indices:
                cams = logs.cam_pictures(
                    self.model, self.val_loader.dataset, self.cam_indices, self.val_data,
                    self.inputs, self.env.device,
                )  # fmt: skip
            self.board.epoch(entry, self.run.global_step, cams)


def train(
    cfg: TrainConfig | Any,
    run_dir: str | Path,
    on_step: StepHook | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Train as `cfg` says, writing into `run_dir`; returns the metrics (rank 0; {} elsewhere).

    `on_step(trainer)` is called after every optimizer step (`trainer.global_step`,
    `trainer.model`): a hook for tests and notebooks. `overrides`: the command line's (Hydra's
    task overrides), recorded in the run folder for the command that resumes it.
    """
    spec = train_config(cfg)
    with run_context(spec.runtime, run_dir, "train.log") as run:
        trainer = Trainer(spec, Path(run_dir), run.env)  # refuses a run dir holding another run
        if run.is_main:
            config_text = OmegaConf.to_yaml(OmegaConf.structured(spec))
            write_text_atomic(Path(run_dir) / "config.yaml", config_text)
            if overrides is not None:
                state.record_overrides(Path(run_dir), overrides)
        try:
            return trainer.fit(on_step)
        except KeyboardInterrupt:
            raise trainer.interrupted() from None
