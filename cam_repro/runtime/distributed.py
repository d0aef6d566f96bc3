"""torchrun / DDP plumbing: the process group, the device, reductions, rank-0-only work.

Launched by `torchrun --nproc_per_node=N`, every process reads RANK, WORLD_SIZE and LOCAL_RANK
from the environment. Launched as one task of a submitit job with several tasks (Hydra's
`hydra/launcher=slurm|local`, tasks_per_node > 1), it reads its place from submitit's
JobEnvironment instead, and the tasks meet at the job's first host. Either way the process group
starts the same way (env:// init); without either the run is a single process and nothing here
communicates.
"""

from __future__ import annotations

import logging
import os
import zlib
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn

from cam_repro.runtime.errors import ConfigError

log = logging.getLogger(__name__)

# The ports a submitit job's tasks meet on (submitit's own TorchDistributedEnvironment's range):
# unprivileged, above the usual services; two jobs on one host clash once in 40,000 job ids.
PORTS = (20000, 60000)


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


def job_port(job_id: str) -> int:
    """The port of a submitit job's rendezvous: the same in every task, without asking anyone."""
    return PORTS[0] + zlib.crc32(job_id.encode()) % (PORTS[1] - PORTS[0])


def _launch_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) of this process: torchrun's environment, else a submitit
    job's with several tasks (setting MASTER_ADDR and MASTER_PORT for env:// unless given),
    else a single process."""
    if "RANK" in os.environ:  # torchrun sets all three and MASTER_ADDR/PORT
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        return int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0"))
    if "SUBMITIT_EXECUTOR" in os.environ:  # a submitit job (slurm or local): import it only here
        import submitit

        job = submitit.JobEnvironment()
        if job.num_tasks > 1:
            os.environ.setdefault("MASTER_ADDR", job.hostnames[0])
            os.environ.setdefault("MASTER_PORT", str(job_port(job.job_id)))
            return job.global_rank, job.num_tasks, job.local_rank
    return 0, 1, 0


def setup(device: str = "auto", backend: str = "auto") -> Dist:
    """Join the process group if launched by torchrun or as a submitit job of several tasks;
    pick this process's device."""
    rank, world_size, local_rank = _launch_env()
    dev = _pick_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if backend == "auto":
            backend = "nccl" if dev.type == "cuda" else "gloo"
        if backend == "nccl" and dev.type != "cuda":
            raise ConfigError("runtime.dist_backend=nccl needs GPUs; use gloo on CPU")
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(
            backend=backend, rank=rank, world_size=world_size, timeout=timedelta(minutes=30)
        )  # env:// (MASTER_ADDR, MASTER_PORT)
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
