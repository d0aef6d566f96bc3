"""The training loop: one process, or one of many under torchrun (DDP).

A run writes into its run dir: config.yaml, train.log, metrics.json, checkpoints/last.pt and
checkpoints/best.pt, and TensorBoard events under tb/. Only rank 0 writes.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from PIL import Image
from torch import Tensor, nn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from cam_repro.data import check_images, model_input, read_split
from cam_repro.data.dataset import SkipLog, Skipped
from cam_repro.data.loaders import (
    eval_loader,
    extra_inputs,
    steps_per_epoch,
    to_device,
    train_loader,
)
from cam_repro.localize.boxes import scale_boxes
from cam_repro.localize.cam import predict_with_cams
from cam_repro.localize.layers import class_scores
from cam_repro.localize.overlay import draw_boxes, normalize_cam, overlay
from cam_repro.models import CAMNet, build_model, paper_name, variant_name
from cam_repro.models.checkpoint import load_checkpoint, save_checkpoint
from cam_repro.models.config import config_differences
from cam_repro.models.vqa import build_vqa_model
from cam_repro.models.weights import weights_record
from cam_repro.runtime import distributed as D
from cam_repro.runtime.context import run_context
from cam_repro.runtime.errors import (
    CamReproError,
    ConfigError,
    InputFileError,
    RunInterruptedError,
)
from cam_repro.runtime.files import atomic_write, write_json, write_text_atomic
from cam_repro.runtime.precision import autocast
from cam_repro.runtime.rng import rng_state, set_rng_state
from cam_repro.train.config import TrainConfig, train_config
from cam_repro.train.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)

StepHook = Callable[["Trainer"], None]


class TrainingDivergedError(CamReproError, FloatingPointError):
    """The loss (or a weight) became NaN or infinite."""


def _input(images: Tensor, spec: TrainConfig) -> Tensor:
    return model_input(images, spec.data.mean, spec.data.std, spec.runtime.channels_last)


@torch.no_grad()
def validate(
    model: nn.Module,
    loader,
    spec: TrainConfig,
    env: D.Dist,
    desc: str = "val",
    skips: SkipLog | None = None,
) -> dict[str, float]:
    """Classification loss, top-1 and top-5 error (%) over the loader, summed over processes;
    images left out as unreadable go into `skips` (this process's; merge them for counts)."""
    net = D.unwrap(model)
    was_training = net.training
    net.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=env.device)  # loss, top-1, top-5, images
    show = spec.runtime.progress and env.is_main
    for batch in tqdm(loader, desc=desc, leave=False, disable=not show):
        if skips is not None:
            skips.add(batch[3])
        if batch[0] is None:
            continue
        images, labels, index = to_device(batch, env)
        extra = extra_inputs(loader.dataset.data, index, env.device)
        with autocast(env.device, spec.runtime.amp):
            logits = class_scores(net(_input(images, spec), *extra), net)
        logits = logits.float()
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices  # (B, 5)
        hit = top == labels[:, None]
        sums += torch.stack(
            [
                F.cross_entropy(logits, labels, reduction="sum").double(),
                hit[:, 0].sum().double(),
                hit.any(dim=1).sum().double(),
                torch.tensor(float(len(labels)), dtype=torch.float64, device=env.device),
            ]
        )
    net.train(was_training)
    loss, top1, top5, n = D.all_reduce_sum(sums, env).tolist()
    n = max(n, 1.0)
    return {
        "loss": loss / n,
        "top1_err": 100.0 * (1 - top1 / n),
        "top5_err": 100.0 * (1 - top5 / n),
        "images": int(n),
    }


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer's bytes: equal digests, bit-identical weights."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class Trainer:
    """Builds data, model, optimizer and scheduler from the config, then `fit()`s."""

    def __init__(self, spec: TrainConfig, run_dir: Path, env: D.Dist) -> None:
        self.spec, self.run_dir, self.env = spec, run_dir, env
        self.ckpt_dir = run_dir / "checkpoints"
        self.last_path, self.best_path = self.ckpt_dir / "last.pt", self.ckpt_dir / "best.pt"
        t, rt = spec.trainer, spec.runtime
        if rt.amp == "fp16" and env.device.type != "cuda":
            raise ConfigError(
                "runtime.amp=fp16 needs a GPU for training; use runtime.amp=bf16 on CPU"
            )
        if t.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        elif env.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

        self.train_data = read_split(spec.data, "train")
        self.val_data = read_split(spec.data, "val", like=self.train_data)
        self.train_skips, self.val_skips = SkipLog(self.train_data), SkipLog(self.val_data)
        if env.is_main:
            self._check_val_headers()
        self.classes = self.train_data.classes
        if self.val_data.classes != self.classes:
            raise ConfigError(f"{spec.data.root}: the train and val splits have different classes")
        questions = self.train_data.questions
        # VQA: the train split's question words (val was read with them), kept in checkpoints
        self.question_vocab = questions.vocab if questions is not None else None

        torch.manual_seed(spec.seed)  # the same initial weights in every process
        if self.question_vocab is not None:
            model = build_vqa_model(spec.model, len(self.classes), len(self.question_vocab))
        else:
            model = build_model(spec.model, len(self.classes))
        self.weights_load = weights_record(
            model
        )  # before any wrapping; None: built without a weights file
        reused = getattr(model, "reused_keys", None)
        if t.sync_bn and env.distributed:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model.to(env.device)
        if rt.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model  # the plain module: state dicts, evaluation, CAMs
        self.optimizer = build_optimizer(model, spec.optim, reused)
        self.train_loader = train_loader(self.train_data, spec.data, env, spec.seed)
        self.val_loader = eval_loader(self.val_data, spec.data, env)
        self.steps = steps_per_epoch(self.train_loader)
        self.scheduler = build_scheduler(self.optimizer, spec.optim, t.epochs, self.steps)
        self.scaler = torch.amp.GradScaler(env.device.type, enabled=rt.amp == "fp16")
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.partial = torch.zeros(3, dtype=torch.float64)  # train loss, correct, images so far
        self.resumed_from: str | None = None
        self.saved_at: tuple[int, int] | None = None  # (epochs done, batches) in last.pt
        self.rank_digests: list[object] = []
        self._resume()

        net: nn.Module = model
        if env.distributed:
            ids = [env.device.index] if env.device.type == "cuda" else None
            net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        self.net = torch.compile(net) if t.compile else net  # what the training step calls
        self.writer = None
        if env.is_main and t.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = self.global_step if self.resumed_from else None
            self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=purge)
        self.cam_indices = self._pick_cam_images()

    # -- checkpoints -------------------------------------------------------------------------

    def _resume(self) -> None:
        resume = self.spec.trainer.resume
        if resume is None:
            if self.last_path.exists():
                raise ConfigError(
                    f"{self.run_dir} already holds a run ({self.last_path}); continue it with "
                    "trainer.resume=auto, or choose another hydra.run.dir"
                )
            return
        if resume == "auto":
            if not self.last_path.exists():
                log.info("trainer.resume=auto: no %s yet, starting from scratch", self.last_path)
                return
            path = self.last_path
        else:
            path = Path(resume).expanduser()
        state = load_checkpoint(path)
        self._check_compatible(state, path)
        self.model.load_state_dict(state["model"])
        for key, obj in (
            ("optimizer", self.optimizer),
            ("scheduler", self.scheduler),
            ("scaler", self.scaler),
        ):
            if key not in state:
                raise ConfigError(f"{path}: holds no {key} state; it cannot resume a run")
            obj.load_state_dict(state[key])
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        self.global_step = state["global_step"]
        self.history, self.best = list(state["history"]), state["best"]
        skipped = state.get("skipped") or {}
        self.train_skips.merge([skipped.get("train", {})])
        self.val_skips.merge([skipped.get("val", {})])
        rngs = state["rng"]
        same_world = len(rngs) == self.env.world_size
        set_rng_state(rngs[self.env.rank] if same_world else rngs[0])
        partials = state["partial"]
        self.partial = (
            partials[self.env.rank].clone() if same_world else torch.zeros(3, dtype=torch.float64)
        )
        if not same_world and self.step_in_epoch:
            log.warning("resuming mid-epoch with another number of processes: not bit-exact")
        self.resumed_from = str(path)
        if path == self.last_path:
            self.saved_at = (self.epoch, self.step_in_epoch)
        log.info(
            "resumed from %s: epoch %d, batch %d (step %d)",
            path,
            self.epoch + 1,
            self.step_in_epoch,
            self.global_step,
        )

    def _check_compatible(self, state: dict[str, Any], path: Path) -> None:
        differ = config_differences(self.spec.model, state["config"].get("model", {}))
        if differ:
            raise ConfigError(
                f"{path}: was trained with another model config ({'; '.join(differ)}); "
                "resume with the same model.* settings"
            )
        if list(state["classes"]) != self.classes:
            raise ConfigError(f"{path}: was trained on other classes than {self.spec.data.root}")
        if state.get("question_vocab") != self.question_vocab:
            raise ConfigError(
                f"{path}: was trained with other question words than {self.spec.data.root}'s"
            )
        before = state["config"].get("trainer", {}).get("epochs")
        if self.spec.optim.schedule == "onecycle" and before != self.spec.trainer.epochs:
            raise ConfigError(
                f"{path}: a one-cycle schedule is laid out over its {before} epochs; resume it "
                f"with trainer.epochs={before} (or fine-tune from it: model.weights_path={path})"
            )
        if state.get("steps_per_epoch") not in (None, self.steps):
            raise ConfigError(
                f"{path}: was trained with {state['steps_per_epoch']} batches per epoch, this run "
                f"has {self.steps}; resume with the same data and data.batch_size"
            )

    def _state(self) -> dict[str, Any]:
        """Everything a resume needs; call on every process (it gathers RNG states)."""
        rngs = D.gather_objects(rng_state(), self.env)
        partials = D.gather_objects(self.partial.cpu(), self.env)
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "steps_per_epoch": self.steps,
            "rng": rngs,
            "partial": partials,
            "history": self.history,
            "skipped": {"train": self.train_skips.at_load, "val": self.val_skips.at_load},
            "best": self.best,
            "config": OmegaConf.to_container(OmegaConf.structured(self.spec)),
            "classes": self.classes,
            "class_names": self.train_data.class_names,
            **({"question_vocab": self.question_vocab} if self.question_vocab else {}),
            "variant": variant_name(self.spec.model),
            "paper_name": paper_name(self.spec.model),
            "world_size": self.env.world_size,
        }

    def _save(self, best: bool = False) -> None:
        self._check_weights_finite()
        state = self._state()
        if self.env.is_main:
            save_checkpoint(self.last_path, state)
            if best:
                atomic_write(self.best_path, lambda tmp: shutil.copyfile(self.last_path, tmp))
        self.saved_at = (self.epoch, self.step_in_epoch)
        D.barrier(self.env)

    def interrupted(self) -> RunInterruptedError:
        """The error for Ctrl-C: where the last checkpoint is and how to resume from it."""
        where = f"epoch {self.epoch + 1}, batch {self.step_in_epoch}"
        if self.saved_at is None:
            self._write_metrics(status=f"interrupted at {where}, no checkpoint")
            return RunInterruptedError(
                f"interrupted at {where}, before the first checkpoint: nothing to resume from"
            )
        epochs, batches = self.saved_at
        at = f"after epoch {epochs}" if not batches else f"at epoch {epochs + 1}, batch {batches}"
        self._write_metrics(status=f"interrupted at {where}; last checkpoint {at}")
        return RunInterruptedError(
            f"interrupted at {where}; the last checkpoint ({at}) is {self.last_path}",
            resume=["trainer.resume=auto", f"hydra.run.dir={self.run_dir}"],
        )

    # -- unreadable images ------------------------------------------------------------------

    def _check_val_headers(self) -> None:
        """Open every val image's header now (cheap), so that a corrupt val image stops the run
        before the first epoch, not after it; with data.bad_images=skip, count it as skipped."""
        spec = self.spec.data
        found = check_images(
            self.val_data,
            decode=False,
            workers=spec.num_workers,
            progress=self.spec.runtime.progress,
            max_pixels=spec.max_image_pixels,
        )
        index = {s.path: i for i, s in enumerate(self.val_data.samples)}
        bad = [(p, why) for p, why in found.bad if p in index]  # not those the reader left out
        if not bad:
            return
        if spec.bad_images != "skip":
            path, why = bad[0]
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise InputFileError(
                f"{path}: {why}{more}; check the whole dataset with cam-data data.root="
                f"{spec.root}, or leave unreadable images out with data.bad_images=skip"
            )
        self.val_skips.add((index[p], why) for p, why in bad)

    def _merge_skips(self) -> None:
        """Every process's unreadable images (torchrun), so that each file counts once."""
        if not self.env.distributed:
            return
        for skips in (self.train_skips, self.val_skips):
            skips.merge(D.gather_objects(dict(skips.at_load), self.env))

    def _skip_counts(self) -> dict[str, Any]:
        return {
            "num_train": self.train_skips.used,
            "num_val": self.val_skips.used,
            "num_train_skipped": self.train_skips.count,
            "num_val_skipped": self.val_skips.count,
        }

    # -- divergence --------------------------------------------------------------------------

    def _diverged(self, what: str) -> TrainingDivergedError:
        if self.last_path.exists():
            kept = f"the last good checkpoint is kept: {self.last_path}"
        else:
            kept = "no checkpoint had been written yet"
        where = f"epoch {self.epoch + 1}, batch {self.step_in_epoch}"
        self._write_metrics(status=f"diverged: {what} at {where}")
        return TrainingDivergedError(
            f"{what} at {where} (step {self.global_step}); training stopped, {kept}. "
            "Lower optim.lr, or use warm-up (optim.warmup_epochs) or gradient-safe AMP settings"
        )

    def _check_weights_finite(self) -> None:
        bad = torch.zeros(1, device=self.env.device)
        for p in self.model.parameters():
            bad += (~torch.isfinite(p)).any()
        if D.all_reduce_sum(bad, self.env).item():
            raise self._diverged("a weight became NaN or infinite")

    # -- the loop ----------------------------------------------------------------------------

    def fit(self, on_step: StepHook | None = None) -> dict[str, Any]:
        """Train the remaining epochs; returns the metrics (rank 0; {} elsewhere)."""
        bars = self.spec.runtime.progress and self.env.is_main
        with logging_redirect_tqdm() if bars else nullcontext():  # log lines above the bars
            return self._fit(on_step)

    def _fit(self, on_step: StepHook | None) -> dict[str, Any]:
        t = self.spec.trainer
        if self.env.is_main:
            self._log_start()
        start = time.perf_counter()
        epochs = tqdm(
            range(self.epoch, t.epochs),
            desc="epochs",
            initial=self.epoch,
            total=t.epochs,
            disable=not (self.spec.runtime.progress and self.env.is_main),
        )
        for epoch in epochs:
            self.epoch = epoch
            train_stats = self._train_epoch(on_step)
            entry: dict[str, Any] = {"epoch": epoch + 1, **train_stats}
            last = epoch + 1 == t.epochs
            improved = False
            if (epoch + 1) % t.eval_every == 0 or last:
                D.broadcast_buffers(self.model, self.env)  # evaluate and save rank 0's model
                val = validate(
                    self.model, self.val_loader, self.spec, self.env, skips=self.val_skips
                )
                entry.update({f"val_{k}": v for k, v in val.items() if k != "images"})
                improved = self.best is None or val["top1_err"] < self.best["val_top1_err"]
                if improved:
                    self.best = dict(entry)
            self.history.append(entry)
            self._merge_skips()
            self.epoch, self.step_in_epoch = epoch + 1, 0
            self.partial = torch.zeros(3, dtype=torch.float64)
            self._save(best=improved)
            if self.env.is_main:
                self._log_epoch(entry)
                self._write_metrics(status="running")  # "finished" once the loop is done
        digests = D.gather_objects(weights_digest(self.model), self.env)
        if len(set(digests)) > 1:
            log.warning("the processes ended with different weights: %s", digests)
        if self.env.is_main:
            self.rank_digests = digests
            elapsed = time.perf_counter() - start
            log.info("done in %.1f s; best val top-1 error %s", elapsed, self._best_text())
            counts = self._skip_counts()
            if counts["num_train_skipped"] or counts["num_val_skipped"]:
                log.warning(
                    "trained on %d images, validated on %d; left out as unreadable: %d train, "
                    "%d val (data.bad_images=skip)",
                    counts["num_train"], counts["num_val"], counts["num_train_skipped"],
                    counts["num_val_skipped"],
                )  # fmt: skip
            metrics = self._write_metrics(status="finished")
        else:
            metrics = {}
        if self.writer:
            self.writer.close()
        return metrics

    def _train_epoch(self, on_step: StepHook | None) -> dict[str, float]:
        t, env = self.spec.trainer, self.env
        self.train_loader.sampler.set_position(
            self.epoch, self.step_in_epoch * self.spec.data.batch_size
        )
        self.net.train()
        stats = self.partial.to(env.device)  # loss sum, correct, images in this epoch
        window = torch.zeros(2, dtype=torch.float64, device=env.device)  # loss sum, images
        tick = time.perf_counter()
        resumed_images = stats[2].item()  # trained before a mid-epoch resume: not timed here
        lr = self.optimizer.param_groups[0]["lr"]
        batches = tqdm(
            self.train_loader,
            desc=f"epoch {self.epoch + 1}/{t.epochs}",
            leave=False,
            initial=self.step_in_epoch,
            total=self.steps,
            disable=not (self.spec.runtime.progress and env.is_main),
        )
        for batch in batches:
            self.step_in_epoch += 1
            self.train_skips.add(batch[3])
            if batch[0] is None:
                continue
            images, labels, index = to_device(batch, env)
            extra = extra_inputs(self.train_data, index, env.device)
            with autocast(env.device, self.spec.runtime.amp):
                logits = class_scores(self.net(_input(images, self.spec), *extra), self.model)
            loss = F.cross_entropy(logits.float(), labels)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            lr = self.optimizer.param_groups[0]["lr"]  # the lr this batch used
            self.scheduler.step()
            self.global_step += 1
            n = len(labels)
            step_loss = loss.detach().double() * n
            stats += torch.stack(
                [step_loss, (logits.argmax(1) == labels).sum().double(), step_loss.new_tensor(n)]
            )
            window += torch.stack([step_loss, step_loss.new_tensor(n)])
            if self.step_in_epoch % t.log_every == 0 or self.step_in_epoch == self.steps:
                mean_loss = self._log_window(window)
                batches.set_postfix(loss=f"{mean_loss:.4f}", refresh=False)
                window.zero_()
            # (The epoch's end saves anyway.)
            if (
                t.checkpoint_every
                and self.global_step % t.checkpoint_every == 0
                and self.step_in_epoch < self.steps
            ):
                self.partial = stats.cpu()
                self._save()
            if on_step is not None:
                on_step(self)
        elapsed = time.perf_counter() - tick
        timed = (stats[2] - resumed_images).view(1)  # images trained in this session
        totals = D.all_reduce_sum(torch.cat([stats, timed]), env)
        loss_sum, correct, count, seen_all = totals.tolist()
        if not math.isfinite(loss_sum):
            raise self._diverged(f"the training loss became {loss_sum}")
        count = max(count, 1.0)
        return {
            "train_loss": loss_sum / count,
            "train_top1_err": 100.0 * (1 - correct / count),
            "lr": lr,
            "images_per_s": seen_all / max(elapsed, 1e-9),
            "epoch_time_s": elapsed,
        }

    def _log_window(self, window: Tensor) -> float:
        """Reduce the last batches' loss over processes, stop on NaN/inf, log to TensorBoard."""
        loss_sum, count = D.all_reduce_sum(window.clone(), self.env).tolist()
        mean = loss_sum / max(count, 1.0)
        if not math.isfinite(mean):
            raise self._diverged(f"the training loss became {mean}")
        if self.writer:
            self.writer.add_scalar("train/loss", mean, self.global_step)
            self.writer.add_scalar(
                "train/lr", self.optimizer.param_groups[0]["lr"], self.global_step
            )
        return mean

    # -- reporting ---------------------------------------------------------------------------

    def _log_start(self) -> None:
        s = self.spec
        params = sum(p.numel() for p in self.model.parameters())
        log.info(
            "%s (%s): %s parameters, %d classes; train %d images, val %d; %d batches of %d per "
            "epoch x %d process(es), %d epochs on %s%s",
            variant_name(s.model),
            paper_name(s.model),
            f"{params:,}",
            len(self.classes),
            len(self.train_data),
            len(self.val_data),
            self.steps,
            s.data.batch_size,
            self.env.world_size,
            s.trainer.epochs,
            self.env.device,
            f"; resumed from {self.resumed_from}" if self.resumed_from else "",
        )
        log.info("run dir: %s", self.run_dir)

    def _log_epoch(self, e: dict[str, Any]) -> None:
        val = ""
        if "val_top1_err" in e:
            val = (
                f" | val loss {e['val_loss']:.4f}, top-1 err {e['val_top1_err']:.2f}%, "
                f"top-5 err {e['val_top5_err']:.2f}%"
            )
        log.info(
            "epoch %d/%d: train loss %.4f, top-1 err %.2f%%%s | lr %.3g, %.0f img/s, %.1f s",
            e["epoch"],
            self.spec.trainer.epochs,
            e["train_loss"],
            e["train_top1_err"],
            val,
            e["lr"],
            e["images_per_s"],
            e["epoch_time_s"],
        )
        if self.writer:
            step = self.global_step
            for key, value in e.items():
                if key != "epoch":
                    self.writer.add_scalar(f"epoch/{key}", value, step)
            if "val_top1_err" in e:
                self._log_cams(step)
            self.writer.flush()

    def _best_text(self) -> str:
        if not self.best:
            return "n/a"
        return f"{self.best['val_top1_err']:.2f}% (epoch {self.best['epoch']})"

    def _write_metrics(self, status: str) -> dict[str, Any]:
        if not self.env.is_main:
            return {}
        final = self.history[-1] if self.history else None
        metrics = {
            "status": status,
            "variant": variant_name(self.spec.model),
            "paper_name": paper_name(self.spec.model),
            "seed": self.spec.seed,
            "num_classes": len(self.classes),
            **self._skip_counts(),
            "world_size": self.env.world_size,
            "epochs_done": len(self.history),
            "global_step": self.global_step,
            "best": self.best,
            "final": final,
            "epochs": self.history,
            "checkpoints": {"last": "checkpoints/last.pt", "best": "checkpoints/best.pt"},
            # the weights it started from: which file, and what was not loaded (the one exception,
            # a classifier of another size) or is new (a CAM head)
            "weights_load": self.weights_load,
        }
        if self.rank_digests:  # one per process: equal when DDP kept them in step
            metrics["rank_weight_digests"] = self.rank_digests
        write_json(self.run_dir / "metrics.json", metrics)
        return metrics

    def _pick_cam_images(self) -> list[int]:
        n = min(self.spec.trainer.cam_images, len(self.val_data))
        if not (self.writer and n and isinstance(self.model, CAMNet)):
            return []
        return np.linspace(0, len(self.val_data) - 1, n).round().astype(int).tolist()

    @torch.no_grad()
    def _log_cams(self, step: int) -> None:
        """The top-1 CAM of a few fixed val images, over the image, with the GT boxes (green)."""
        if not self.cam_indices:
            return
        dataset = self.val_loader.dataset
        items = [dataset[i] for i in self.cam_indices]
        items = [it for it in items if not isinstance(it, Skipped)]
        if not items:
            return
        images = torch.stack([it[0] for it in items]).to(self.env.device)  # uint8 (N, 3, S, S)
        net = D.unwrap(self.model)
        net.eval()
        out = predict_with_cams(net, _input(images, self.spec).float(), topk=1)
        net.train()
        size = images.shape[-1]
        show = max(size, 128)  # small benchmark images are drawn larger
        pictures = []
        for (image, _, index), cam in zip(items, out.cams[:, 0].float().cpu(), strict=True):
            pixels = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
            pixels = np.asarray(Image.fromarray(pixels).resize((show, show), Image.NEAREST))
            picture = overlay(pixels, normalize_cam(cam.numpy(), "max"))
            sample = self.val_data.samples[index]
            if sample.size is not None and len(sample.boxes):
                picture = draw_boxes(picture, scale_boxes(sample.boxes, sample.size, (show, show)))
            pictures.append(torch.from_numpy(picture).permute(2, 0, 1))
        self.writer.add_images("val/cam_top1", torch.stack(pictures), step, dataformats="NCHW")


def train(
    cfg: TrainConfig | Any, run_dir: str | Path, on_step: StepHook | None = None
) -> dict[str, Any]:
    """Train as `cfg` says, writing into `run_dir`; returns the metrics (rank 0; {} elsewhere).

    `on_step(trainer)` is called after every optimizer step (`trainer.global_step`,
    `trainer.model`): a hook for tests and notebooks.
    """
    spec = train_config(cfg)
    with run_context(spec.runtime, run_dir, "train.log") as run:
        trainer = Trainer(spec, Path(run_dir), run.env)  # refuses a run dir holding another run
        if run.is_main:
            config_text = OmegaConf.to_yaml(OmegaConf.structured(spec))
            write_text_atomic(Path(run_dir) / "config.yaml", config_text)
        try:
            return trainer.fit(on_step)
        except KeyboardInterrupt:
            raise trainer.interrupted() from None
