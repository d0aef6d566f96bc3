"""Memory of cam-eval localizer=gradcam over many images: the process's RSS after the first --at
images and after all --images of one run (flat: no leak across batches), and the hooks left on
the network's modules after the run (must be 0).

    .venv/bin/python scripts/bench_gradcam_memory.py [--work DIR] [--images 3000] [--at 600]
        [--runs vgg16:gradcam tiny_gap:gradcam tiny_gap:cam] [--batch 50]

Set-up, cached in --work (default: a temporary folder): cam-synth's set, 8 classes, --images val
images of 64 px (no train images). Each run (MODEL:LOCALIZER) is a process of its own (one's
memory does not count in another's): cam-eval (`evaluate_run`), no checkpoint (random weights),
Grad-CAM's default layer, data.num_workers=0, one torch thread, the default metrics (MaxBoxAccV2,
PxAP) and one scoring thread. Models: vgg16, the original VGG16 at width 0.125 (Grad-CAM through
a forward hook on relu5_3), and tiny_gap (a CAM network: Grad-CAM of its `features(x)`, no hook);
tiny_gap:cam is the same loop without Grad-CAM, what cam-eval's own memory does.

RSS is VmRSS of /proc/self/status, read in the main thread right after the Grad-CAM maps of the
batch that reaches --at images, and of the last batch (a subclass of Localizer counts them; it
stands in for cam_repro.evaluate.loop.Localizer during the run). What else grows with the images
is cam-eval's own: one predictions row per image (a few hundred bytes each). Peak RSS
(getrusage) is context.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLASSES = 8
MODELS = {
    "vgg16": ["model=vgg16", "model.width_mult=0.125"],
    "tiny_gap": ["model=tiny_gap"],
}
RUNS = ["vgg16:gradcam", "tiny_gap:gradcam", "tiny_gap:cam"]
THREADS = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}


def rss_mb() -> float:
    """The process's resident set now (VmRSS), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def child(
    model: str, localizer: str, data: Path, run_dir: Path, images: int, at: int, batch: int
) -> dict:
    """One cam-eval run with RSS read at `at` and at `images` images (in this process)."""
    import torch
    from hydra import compose, initialize_config_dir

    from cam_repro.apps import CONFIG_DIR, register
    from cam_repro.evaluate import loop
    from cam_repro.localize.layers import hooks_on

    samples: dict[int, float] = {}
    nets: list = []

    class Counting(loop.Localizer):
        seen = 0

        def raw_maps(self, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
            out = super().raw_maps(x, classes)
            before, Counting.seen = Counting.seen, Counting.seen + x.shape[0]
            # every `at` images (the first and the last are the result) and the last batch
            if Counting.seen // at > before // at or Counting.seen >= images:
                samples[Counting.seen] = rss_mb()
            if not nets:
                nets.append(self.net)
            return out

    overrides = [
        *MODELS[model], f"localizer={localizer}", "data=synthetic", f"data.root={data}",
        "data.image_size=64", "data.resize_size=64", f"data.batch_size={batch}",
        "data.num_workers=0", "runtime.device=cpu", "runtime.progress=false",
        "runtime.threads=1", "overwrite=true",
    ]  # fmt: skip
    register("eval")
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose("eval", overrides)
    loop.Localizer = Counting  # the run's Localizer: the same, counting
    tick = time.perf_counter()
    metrics = loop.evaluate_run(cfg, run_dir)
    seconds = time.perf_counter() - tick
    series = sorted(samples.items())
    (first, rss_first), (last, rss_last) = series[0], series[-1]
    return {
        "model": model,
        "localizer": localizer,
        "paper_name": metrics["paper_name"],
        "images": metrics["num_images"],
        "at": [first, last],
        "rss_mb": [round(rss_first, 1), round(rss_last, 1)],
        "growth_mb": round(rss_last - rss_first, 1),
        "growth_pct": round(100 * (rss_last / rss_first - 1), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "hooks_left": hooks_on(nets[0]),
        "series": [[n, round(v, 1)] for n, v in series],
        "seconds": round(seconds, 1),
        "threads": torch.get_num_threads(),
    }


def make_data(work: Path, images: int) -> Path:
    data = work / f"synth_{images}"
    if not (data / "synth.json").is_file():
        from cam_repro.data.synth_writer import generate

        per_class = -(-images // CLASSES)
        generate({"out": str(data), "num_classes": CLASSES, "train_per_class": 0,
                  "val_per_class": per_class, "image_size": 64, "overwrite": True})  # fmt: skip
    return data


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--at", type=int, default=600)
    parser.add_argument("--batch", type=int, default=50)  # 600 and 3000: whole batches
    parser.add_argument("--runs", nargs="+", default=RUNS, help="MODEL:LOCALIZER ...")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        model, localizer = args.child.split(":")
        run_dir = args.work / "runs" / f"{model}_{localizer}"
        result = child(model, localizer, args.data, run_dir, args.images, args.at, args.batch)
        print(json.dumps(result))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        data = make_data(work, args.images)
        images = CLASSES * -(-args.images // CLASSES)
        print(
            f"{images} synthetic val images of 64 px, batch {args.batch}, one torch thread; "
            f"RSS after {args.at} and after all images of one cam-eval run"
        )
        failed = 0
        for name in args.runs:
            model, _, localizer = name.partition(":")
            if model not in MODELS or localizer not in ("gradcam", "cam", "backprop"):
                parser.error(f"--runs: {name!r} is not MODEL:LOCALIZER ({', '.join(MODELS)})")
            cmd = [sys.executable, __file__, "--child", name, "--data", str(data),
                   "--work", str(work), "--images", str(images), "--at", str(args.at),
                   "--batch", str(args.batch)]  # fmt: skip
            out = subprocess.run(cmd, env={**os.environ, **THREADS}, capture_output=True,
                                 text=True)  # fmt: skip
            if out.returncode:
                print(f"{name}: failed\n{out.stderr[-2000:]}")
                failed += 1
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{name:16s} {r['paper_name']:22s} RSS {r['rss_mb'][0]:.1f} MiB after "
                f"{r['at'][0]} images, {r['rss_mb'][1]:.1f} MiB after {r['at'][1]}: "
                f"{r['growth_mb']:+.1f} MiB "
                f"({r['growth_pct']:+.2f}%); peak {r['peak_rss_mb']:.1f} MiB; hooks left "
                f"{r['hooks_left']}; {r['seconds']:.1f} s"
            )
            print("    RSS (MiB) by images: " + ", ".join(f"{n}: {v}" for n, v in r["series"]))
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
