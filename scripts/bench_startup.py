"""Start-up cost of the commands: wall time and peak memory of `cam-<app> --help`, and what it
imports, for this checkout against another one (e.g. an older commit in a git worktree).

    .venv/bin/python scripts/bench_startup.py [--baseline DIR] [--rounds 7] [--apps models ...]

Each round runs the baseline's and this tree's command alternately (A, B, A, B, ...), one thread
per process, in fresh interpreters with PYTHONPATH set to the tree (its cli/ folder is imported
as cam_repro_cli through a link the script makes in a temporary folder). Reported: the median
ratio this/baseline of wall time with its range, the median peak RSS, and the number of modules
imported (from `python -X importtime`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("models", "synth", "report", "train", "eval", "visualize")


def _env(tree: Path, links: Path) -> dict[str, str]:
    """PYTHONPATH: the tree (cam_repro) and a folder linking cam_repro_cli to the tree's cli/."""
    link = links / tree.name / "cam_repro_cli"
    if not link.exists():
        link.parent.mkdir(parents=True)
        link.symlink_to(tree / "cli")
    threads = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}
    return {**os.environ, **threads, "PYTHONPATH": f"{tree}{os.pathsep}{link.parent}"}


def _command(app: str, importtime: bool = False) -> list[str]:
    code = (
        f"import sys; sys.argv = ['cam-{app}', '--help']; "
        f"from cam_repro_cli.{app} import main; main()"
    )
    return [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", code]


def run_once(app: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one `cam-<app> --help`."""
    tick = time.perf_counter()
    proc = subprocess.Popen(
        _command(app), env=env, stdout=subprocess.DEVNULL, cwd=tempfile.gettempdir()
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - tick
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"cam-{app} --help failed with PYTHONPATH={env['PYTHONPATH']}")
    return wall, usage.ru_maxrss / 1024


def imported(app: str, env: dict[str, str]) -> tuple[int, list[str]]:
    """How many modules `cam-<app> --help` imports, and which of the heavy ones."""
    err = subprocess.run(
        _command(app, True), env=env, capture_output=True, text=True, cwd=tempfile.gettempdir()
    ).stderr
    names = [
        line.split("|")[-1].strip() for line in err.splitlines() if line.startswith("import time:")
    ]
    heavy = ("torch", "torchvision", "numba", "scipy", "matplotlib", "tensorboard",
             "cam_repro.train", "cam_repro.evaluate.loop", "cam_repro.visualize")  # fmt: skip
    top = sorted({h for h in heavy for n in names if n == h or n.startswith(h + ".")})
    return len(names), top


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="another checkout (default: none)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--apps", nargs="+", default=["models", "synth", "report"], choices=APPS)
    args = parser.parse_args()
    trees = {"this": ROOT}
    if args.baseline:
        trees = {"baseline": args.baseline.resolve(), **trees}
    with tempfile.TemporaryDirectory() as tmp:
        envs = {name: _env(tree, Path(tmp)) for name, tree in trees.items()}
        for app in args.apps:
            walls: dict[str, list[float]] = {name: [] for name in trees}
            rss: dict[str, list[float]] = {name: [] for name in trees}
            for env in envs.values():
                run_once(app, env)  # warm the file cache
            for _ in range(args.rounds):
                for name, env in envs.items():
                    wall, peak = run_once(app, env)
                    walls[name].append(wall)
                    rss[name].append(peak)
            for name, env in envs.items():
                count, heavy = imported(app, env)
                print(
                    f"cam-{app} --help, {name:8s}: {statistics.median(walls[name]):.2f} s "
                    f"({min(walls[name]):.2f}-{max(walls[name]):.2f}), peak RSS "
                    f"{statistics.median(rss[name]):.0f} MB, {count} modules imported; heavy: "
                    f"{', '.join(heavy) or 'none'}"
                )
            if "baseline" in trees:
                ratios = [t / b for t, b in zip(walls["this"], walls["baseline"], strict=True)]
                print(
                    f"cam-{app} --help: this / baseline wall time {statistics.median(ratios):.2f} "
                    f"(range {min(ratios):.2f}-{max(ratios):.2f}, {args.rounds} alternating rounds)"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
