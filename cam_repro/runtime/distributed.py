"""torchrun / DDP plumbing: the process group, the device, reductions, rank-0-only work.

Launched by `torchrun --nproc_per_node=N`, every process reads RANK, WORLD_SIZE and LOCAL_RANK
from the environment; without them the run is a single process and nothing here communicates.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn

from cam_repro.runtime.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dist:
    """This process's place in the run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _pick_device(device: str, local_rank: int) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("runtime.device=cuda but PyTorch sees no CUDA GPU on this machine")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup(device: str = "auto", backend: str = "auto") -> Dist:
    """Join the torchrun process group if launched by torchrun; pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _pick_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if backend == "auto":
            backend = "nccl" if dev.type == "cuda" else "gloo"
        if backend == "nccl" and dev.type != "cuda":
            raise ConfigError("runtime.dist_backend=nccl needs GPUs; use gloo on CPU")
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))
        log.info("process group: %s, rank %d of %d on %s", backend, rank, world_size, dev)
    return Dist(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: Tensor, env: Dist) -> Tensor:
    """The element-wise sum of `t` over all processes (in place, returned)."""
    if env.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_buffers(model: nn.Module, env: Dist) -> None:
    """Give every process rank 0's buffers (batch-norm running statistics).

    DDP keeps the parameters equal, but each process updates its own running statistics from its
    own batches; evaluating and saving must use one set: rank 0's, which the checkpoint holds.
    """
    if env.distributed:
        for buf in model.buffers():
            dist.broadcast(buf, src=0)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def barrier(env: Dist) -> None:
    if env.distributed:
        dist.barrier()


def gather_objects(obj: object, env: Dist) -> list[object]:
    """[obj of rank 0, obj of rank 1, ...] on every process."""
    if not env.distributed:
        return [obj]
    out: list[object] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out
