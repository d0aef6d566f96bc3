"""runtime/distributed.py: where a process's place comes from (torchrun's environment, else a
submitit job's, else a single process)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from cam_repro.runtime import distributed as D

LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(autouse=True)
def _no_launcher(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No torchrun or submitit variables, whatever ran these tests; and none left behind: the
    MASTER_ADDR / MASTER_PORT that `_launch_env` sets would send later tests' DDP jobs to a fake
    host (monkeypatch restores only the variables it saw)."""
    before = dict(os.environ)
    for name in [*LAUNCH_VARS, *(n for n in os.environ if n.startswith("SUBMITIT_"))]:
        monkeypatch.delenv(name, raising=False)
    yield
    for name in LAUNCH_VARS:
        if name in before:
            os.environ[name] = before[name]
        else:
            os.environ.pop(name, None)


def fake_submitit(monkeypatch: pytest.MonkeyPatch, **job: object) -> None:
    """`import submitit` gives a module whose JobEnvironment() is `job`; SUBMITIT_EXECUTOR set,
    as in a Slurm job's batch script."""
    job_env = SimpleNamespace(**job)
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    monkeypatch.setitem(sys.modules, "submitit", SimpleNamespace(JobEnvironment=lambda: job_env))


def test_a_plain_run_is_one_process_and_imports_no_submitit(monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, "submitit", raising=False)
    assert D._launch_env() == (0, 1, 0)
    assert "submitit" not in sys.modules
    assert "MASTER_ADDR" not in os.environ


def test_torchrun_environment(monkeypatch) -> None:
    for name, value in {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)
    assert D._launch_env() == (5, 8, 1)


def test_torchrun_inside_a_submitit_job_wins(monkeypatch) -> None:
    """torchrun started in a one-task submitit job: its processes take torchrun's places."""
    fake_submitit(monkeypatch, num_tasks=1, global_rank=0, local_rank=0, job_id="7",
                  hostnames=["node1"])  # fmt: skip
    for name, value in {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "3"}.items():
        monkeypatch.setenv(name, value)
    assert D._launch_env() == (3, 4, 3)
    assert "MASTER_ADDR" not in os.environ


def test_submitit_job_of_many_tasks_meets_at_its_first_host(monkeypatch) -> None:
    """Task 9 of 16 on two nodes of 8 GPUs (Slurm array job 123, task 4)."""
    fake_submitit(monkeypatch, num_tasks=16, global_rank=9, local_rank=1, job_id="123_4",
                  hostnames=["gpu017", "gpu018"])  # fmt: skip
    assert D._launch_env() == (9, 16, 1)
    assert os.environ["MASTER_ADDR"] == "gpu017"
    # 20000 + crc32(b"123_4") % 40000 = 20000 + 989575398 % 40000
    assert os.environ["MASTER_PORT"] == "35398"


def test_submitit_port_is_the_job_ids_and_given_values_stay(monkeypatch) -> None:
    assert D.job_port("123_4") == 35398 and D.job_port("123_5") == 55632  # array tasks differ
    assert all(20000 <= D.job_port(str(j)) < 60000 for j in range(1000))
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    fake_submitit(monkeypatch, num_tasks=2, global_rank=0, local_rank=0, job_id="123_4",
                  hostnames=["gpu017"])  # fmt: skip
    assert D._launch_env() == (0, 2, 0)
    assert (os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]) == ("10.0.0.1", "29500")


def test_a_one_task_submitit_job_is_a_single_process(monkeypatch) -> None:
    fake_submitit(monkeypatch, num_tasks=1, global_rank=0, local_rank=0, job_id="99",
                  hostnames=["gpu017"])  # fmt: skip
    assert D._launch_env() == (0, 1, 0)
    assert "MASTER_ADDR" not in os.environ and "MASTER_PORT" not in os.environ


def test_real_submitit_local_job_environment(monkeypatch) -> None:
    """submitit's own JobEnvironment, from the variables its local executor gives a task."""
    pytest.importorskip("submitit")
    job = {"EXECUTOR": "local", "LOCAL_JOB_ID": "4242", "LOCAL_NTASKS": "2",
           "LOCAL_JOB_NUM_NODES": "1", "LOCAL_NODEID": "0", "LOCAL_GLOBALID": "1",
           "LOCAL_LOCALID": "1"}  # fmt: skip
    for name, value in job.items():
        monkeypatch.setenv(f"SUBMITIT_{name}", value)
    assert D._launch_env() == (1, 2, 1)
    assert os.environ["MASTER_ADDR"] == socket.gethostname()
    assert os.environ["MASTER_PORT"] == "32835"  # 20000 + crc32(b"4242") % 40000


def test_setup_of_a_single_process_joins_no_group() -> None:
    env = D.setup("cpu")
    assert (env.rank, env.world_size, env.local_rank, env.device.type) == (0, 1, 0, "cpu")
    assert not env.distributed and env.is_main
