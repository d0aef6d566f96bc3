"""What cam-eval's full protocol costs over a bare forward loop on the same images and network
(issue 23: at most 10% in one process, at most 20% for the whole command), for this checkout and
optionally another one (e.g. an older commit in a git worktree), side by side.

    .venv/bin/python scripts/bench_eval_protocol.py [--baseline DIR] [--work DIR] [--rounds 7]
        [--images 400] [--variants full pxap-off maxboxacc-off] [--parts inprocess command]

Set-up, cached in --work (default: a temporary folder): the synthetic set (cam-synth's) at --size
px with --images val images (8 classes), a checkpoint of --model at --width (random weights, in
cam-train's format), the list of the val images and the bare loop as a script, bare_loop.py.
The bare loop is what a torchvision-style classification eval does: PIL open + convert RGB,
resize to S x S (antialiased), to a float tensor, normalise, `torch.no_grad()` forward of the
checkpoint's network (channels_last, like cam-eval's runtime.channels_last=true), batch --batch.
Every process runs one thread (torch.set_num_threads(1); OMP, MKL and NUMBA threads 1), on the
CPU, data.num_workers=0.

inprocess  one worker process per tree (PYTHONPATH set to it) runs a round when told: the bare
           loop (loading the network from the checkpoint included), then `evaluate_run(cfg,
           run_dir)` of each variant (cam-eval's defaults: maxboxacc, PxAP auto; progress off,
           overwrite=true). The parent alternates the trees' rounds. One warm-up round each.
command    whole commands as subprocesses, alternating: `python bare_loop.py ...`, then each
           tree's cam-eval (`from cam_repro_cli.eval import main`, what .venv/bin/cam-eval runs)
           with the same settings. One warm-up round.
Variants: full (the defaults), pxap-off (pxap='false'), maxboxacc-off (maxboxacc=false: neither
the sweeps nor PxAP). Reported per tree and variant: median wall seconds (range), img/s, CPU
seconds (process CPU time of all threads: cam-eval may score in a second thread), and the ratio
cam-eval / bare of the same round, median and range over rounds, wall and CPU, beside the target
(<= 1.10 in one process, <= 1.20 whole command). Absolute times are context; the ratios are the
result.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"inprocess": 1.10, "command": 1.20}
VARIANTS = {"full": [], "pxap-off": ["pxap='false'"], "maxboxacc-off": ["maxboxacc=false"]}
CLASSES = 8
THREADS = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}

# Written to WORK/bare_loop.py: run as a command, and imported by the in-process workers.
BARE_LOOP = '''"""The bare loop: decode, resize, normalise and forward a list of images, no more.

    python bare_loop.py CHECKPOINT IMAGE_LIST [--size 224] [--batch 64] [--threads 1]
"""

import argparse
from pathlib import Path

import torch
from PIL import Image
from torchvision.transforms import v2

from cam_repro.models.checkpoint import load_checkpoint, model_from_state


def bare_loop(checkpoint: str, image_list: str, size: int, batch: int) -> int:
    """Forward every image of the list through the checkpoint's network; returns the count."""
    paths = Path(image_list).read_text().split()
    state = load_checkpoint(checkpoint)
    model = model_from_state(state, checkpoint).eval().to(memory_format=torch.channels_last)
    data = state["config"]["data"]
    transform = v2.Compose([
        v2.Resize((size, size), antialias=True),
        v2.PILToTensor(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(data["mean"], data["std"]),
    ])
    with torch.no_grad():
        for start in range(0, len(paths), batch):
            images = [Image.open(p).convert("RGB") for p in paths[start : start + batch]]
            x = torch.stack([transform(image) for image in images])
            model(x.contiguous(memory_format=torch.channels_last))
    return len(paths)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("image_list")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bare_loop(args.checkpoint, args.image_list, args.size, args.batch)
'''


# -- set-up ------------------------------------------------------------------------------------


def _env(tree: Path, links: Path) -> dict[str, str]:
    """One thread; PYTHONPATH: the tree (cam_repro) and a folder linking cam_repro_cli to its
    cli/ (as scripts/bench_startup.py does; `links`: a folder of this tree's own)."""
    link = links / "cam_repro_cli"
    if not link.exists():
        link.parent.mkdir(parents=True)
        link.symlink_to(tree / "cli")
    return {**os.environ, **THREADS, "PYTHONPATH": f"{tree}{os.pathsep}{link.parent}"}


def setup(args: argparse.Namespace) -> dict[str, Any]:
    """The data, checkpoint, image list and bare_loop.py in args.work (made once per setting)."""
    per_class = math.ceil(args.images / CLASSES)
    name = f"{args.model}-w{args.width}-{args.size}px-{CLASSES * per_class}"
    where = args.work / name
    paths = {
        "data": where / "synth",
        "checkpoint": where / "checkpoint.pt",
        "images": where / "val_images.txt",
        "bare": args.work / "bare_loop.py",
    }
    paths["bare"].write_text(BARE_LOOP)
    if not (where / "done").exists():
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
        from cam_repro.data.synth_writer import generate  # what cam-synth runs

        generate({"out": str(paths["data"]), "image_size": args.size, "num_classes": CLASSES,
                  "train_per_class": 1, "val_per_class": per_class})  # fmt: skip
        model = [f"model={args.model}", f"model.width_mult={args.width}"]
        _save_checkpoint(paths["data"], paths["checkpoint"], model, args.size)
        val = sorted((paths["data"] / "ILSVRC" / "Data" / "CLS-LOC" / "val").glob("*.JPEG"))
        paths["images"].write_text("".join(f"{p}\n" for p in val))
        (where / "done").write_text("")
    return {k: str(v) for k, v in paths.items()}


def _save_checkpoint(data: Path, path: Path, model: list[str], size: int) -> None:
    """A checkpoint of the model with random weights, as cam-train writes it (the parts cam-eval
    reads: model, config, classes)."""
    import torch
    from omegaconf import OmegaConf

    from cam_repro.apps import compose
    from cam_repro.data import read_split
    from cam_repro.models import build_model
    from cam_repro.models.checkpoint import save_checkpoint
    from cam_repro.train.config import train_config

    overrides = [*model, "data=synthetic", f"data.root={data}", f"data.image_size={size}",
                 f"data.resize_size={size}", "data.num_workers=0"]  # fmt: skip
    spec = train_config(compose("train", overrides))
    classes = read_split(spec.data, "val").classes
    torch.manual_seed(0)
    network = build_model(spec.model, len(classes))
    config = OmegaConf.to_container(OmegaConf.structured(spec))
    save_checkpoint(path, {"model": network.state_dict(), "config": config, "classes": classes})


def eval_overrides(paths: dict[str, str], batch: int, variant: str) -> list[str]:
    """cam-eval's command-line keys for the run (CPU, one thread, no workers, no bar)."""
    return [
        f"checkpoint={paths['checkpoint']}", f"data.root={paths['data']}", "data.num_workers=0",
        f"data.batch_size={batch}", "runtime.device=cpu", "runtime.threads=1",
        "runtime.progress=false", "overwrite=true", *VARIANTS[variant],
    ]  # fmt: skip


# -- in one process: the worker ----------------------------------------------------------------


def worker(args: argparse.Namespace) -> int:
    """Run rounds when the parent says `round` on stdin; one JSON line of times per round."""
    import importlib.util

    import torch

    torch.set_num_threads(1)
    reply: IO[str] = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything the libraries print goes to stderr, not into the replies
    from cam_repro.apps import compose
    from cam_repro.evaluate.loop import evaluate_run

    paths = json.loads(args.worker)
    spec = importlib.util.spec_from_file_location("bare_loop", paths["bare"])
    bare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bare)
    configs = {v: compose("eval", eval_overrides(paths, args.batch, v)) for v in args.variants}
    runs = Path(paths["runs"])

    def timed(fn: Any, *fn_args: Any) -> list[float]:
        wall, cpu = time.perf_counter(), time.process_time()
        fn(*fn_args)
        return [time.perf_counter() - wall, time.process_time() - cpu]

    hello = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    print(json.dumps(hello), file=reply, flush=True)
    for line in sys.stdin:
        if line.strip() != "round":
            break
        times = {"bare": timed(bare.bare_loop, paths["checkpoint"], paths["images"], args.size,
                               args.batch)}  # fmt: skip
        for variant, cfg in configs.items():
            times[variant] = timed(evaluate_run, cfg, runs / variant)
        print(json.dumps(times), file=reply, flush=True)
    return 0


class Worker:
    """A worker process of one tree, driven over its stdin and stdout."""

    def __init__(self, args: argparse.Namespace, paths: dict[str, str], env: dict[str, str]):
        command = [sys.executable, __file__, "--worker", json.dumps(paths), "--size",
                   str(args.size), "--batch", str(args.batch),
                   "--variants", *args.variants]  # fmt: skip
        self.proc = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=tempfile.gettempdir(),
        )  # fmt: skip
        self.hello = self._reply()

    def _reply(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"worker failed (exit {self.proc.wait()}): see its errors above")
        return json.loads(line)

    def round(self) -> dict[str, list[float]]:
        self.proc.stdin.write("round\n")
        self.proc.stdin.flush()
        return self._reply()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


# -- whole commands ----------------------------------------------------------------------------


def run_command(command: list[str], env: dict[str, str]) -> list[float]:
    """[wall seconds, CPU seconds (user + system, all threads)] of one command."""
    tick = time.perf_counter()
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        cwd=tempfile.gettempdir(),
    )  # fmt: skip
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - tick
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{err}")
    return [wall, usage.ru_utime + usage.ru_stime]


def cli(app: str, keys: list[str]) -> list[str]:
    """`cam-<app> KEYS...` of the tree on PYTHONPATH (what .venv/bin/cam-<app> runs)."""
    code = f"import sys; sys.argv = ['cam-{app}', *{keys!r}]; "
    return [sys.executable, "-c", code + f"from cam_repro_cli.{app} import main; main()"]


# -- report ------------------------------------------------------------------------------------


def _span(values: list[float]) -> str:
    """median (min-max)"""
    return f"{statistics.median(values):5.2f} ({min(values):.2f}-{max(values):.2f})"


def report(part: str, trees: dict[str, list[dict[str, list[float]]]], images: int) -> None:
    """One table: per tree, the bare loop and each variant: wall, img/s, CPU, and each
    variant's ratio to the bare loop of its round (median and range over rounds)."""
    target = TARGETS[part]
    print(f"  {'tree':9s} {'run':14s} {'wall s (range)':20s} {'img/s':>6s} {'CPU s':>6s}   "
          f"{'ratio wall (range)':22s} {'ratio CPU (range)'}")  # fmt: skip
    for tree, rounds in trees.items():
        for name in rounds[0]:
            wall = [r[name][0] for r in rounds]
            cpu = [r[name][1] for r in rounds]
            rate, cpu_s = images / statistics.median(wall), statistics.median(cpu)
            line = f"  {tree:9s} {name:14s} {_span(wall):20s} {rate:6.1f} {cpu_s:6.2f}"
            if name != "bare":
                ratio = [r[name][0] / r["bare"][0] for r in rounds]
                ratio_cpu = [r[name][1] / r["bare"][1] for r in rounds]
                verdict = "met" if statistics.median(ratio) <= target else "over"
                line += f"   {_span(ratio)} {verdict:4s}  {_span(ratio_cpu)}"
            print(line)


def context(hello: dict[str, Any] | None) -> None:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or cpu
    print(f"machine: {cpu}, {os.cpu_count()} CPUs; Python {platform.python_version()}")
    if hello:
        print(f"torch {hello['torch']}, {hello['threads']} thread per process, device cpu")


def measure_inprocess(
    args: argparse.Namespace, paths: dict[str, str], envs: dict[str, dict[str, str]], images: int
) -> None:
    """Each tree's worker runs its rounds (bare, then each variant), the trees alternating."""
    workers = {
        name: Worker(args, {**paths, "runs": str(args.work / "runs" / name)}, env)
        for name, env in envs.items()
    }
    context(next(iter(workers.values())).hello)
    rounds: dict[str, list] = {name: [] for name in workers}
    for i in range(args.rounds + 1):
        for name, w in workers.items():
            times = w.round()
            if i:  # round 0: the warm-up
                rounds[name].append(times)
    for w in workers.values():
        w.close()
    print(
        f"in one process (start-up excluded; the bare round includes loading the network), "
        f"target <= {TARGETS['inprocess']:.2f}:"
    )
    report("inprocess", rounds, images)


def measure_commands(
    args: argparse.Namespace, paths: dict[str, str], envs: dict[str, dict[str, str]], images: int
) -> None:
    """The bare loop's command, then each tree's cam-eval of each variant, round after round."""
    bare = [sys.executable, paths["bare"], paths["checkpoint"], paths["images"], "--size",
            str(args.size), "--batch", str(args.batch), "--threads", "1"]  # fmt: skip
    commands = {("this", "bare"): (bare, envs["this"])}
    for name, env in envs.items():
        for v in args.variants:
            run_dir = args.work / "runs" / f"command-{name}-{v}"
            keys = [*eval_overrides(paths, args.batch, v), f"hydra.run.dir={run_dir}"]
            commands[name, v] = (cli("eval", keys), env)
    times: dict[tuple[str, str], list[list[float]]] = {k: [] for k in commands}
    warm = "inprocess" not in args.parts  # else the file and numba caches are warm already
    for i in range(args.rounds + warm):
        for key, (command, env) in commands.items():
            result = run_command(command, env)
            if i or not warm:  # round 0: the warm-up
                times[key].append(result)
    print(f"whole commands, target <= {TARGETS['command']:.2f}:")
    print(f"  bare: python {' '.join(bare[1:])}")
    print(f"  cam-eval {' '.join(eval_overrides(paths, args.batch, 'full'))} hydra.run.dir=...")
    extra = [f"{v}: + {VARIANTS[v][0]}" for v in args.variants if VARIANTS[v]]
    if extra:
        print(f"  {', '.join(extra)}")
    rows = {}
    for name in envs:
        rows[name] = [{"bare": times["this", "bare"][r]} for r in range(args.rounds)]
        for r, row in enumerate(rows[name]):
            row.update({v: times[name, v][r] for v in args.variants})
    report("command", rows, images)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="another checkout (default: none)")
    parser.add_argument("--work", type=Path, help="set-up cache (default: a temporary folder)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--model", default="googlenet_gap")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--variants", nargs="+", default=["full"], choices=list(VARIANTS))
    parser.add_argument("--parts", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    sys.path.insert(0, str(ROOT))  # the set-up's cam_repro: this tree's, not another install's
    with tempfile.TemporaryDirectory() as tmp:
        args.work = (args.work or Path(tmp) / "work").resolve()
        args.work.mkdir(parents=True, exist_ok=True)
        trees = {"this": ROOT}
        if args.baseline:
            trees = {"baseline": args.baseline.resolve(), **trees}
        envs = {name: _env(tree, Path(tmp) / "links" / name) for name, tree in trees.items()}
        paths = setup(args)
        images = len(Path(paths["images"]).read_text().split())
        print(
            f"{images} val images at {args.size} px, {args.model} width {args.width}, batch "
            f"{args.batch}, CPU, data.num_workers=0; {args.rounds} alternating rounds after one "
            f"warm-up; work dir {args.work}"
        )
        if "inprocess" in args.parts:
            measure_inprocess(args, paths, envs, images)
        else:
            context(None)
        if "command" in args.parts:
            measure_commands(args, paths, envs, images)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
