"""How cam-reproduce's results were made: OUT/command.txt (the command, the settings, the versions,
the CPU, each stage's seconds, the reused trainings)."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from cam_repro.reproduce.config import ReproduceConfig
from cam_repro.runtime.files import write_text_atomic


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


def write_command(
    out: Path, spec: ReproduceConfig, times: dict[str, float], runs: str, reused: list[str]
) -> None:
    """OUT/command.txt: its `settings:` line (all of `spec`) is what the record check compares
    (record.recorded_settings)."""
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
