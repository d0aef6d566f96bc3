"""Time cam-features' linear SVM fit (features.linear.fit_linear) against scikit-learn's LinearSVC.

    .venv/bin/python scripts/bench_linear.py [--rounds 5] [--n 50000] [--dim 1024]
        [--classes 100] [--ratio-n 10000] [--ratio-classes 20] [--threads 1]

Two measurements, each round in a fresh process with `--threads` threads (torch, OMP, MKL,
OpenBLAS):
1. the ratio: alternating rounds (A, B, A, B, ...) on --ratio-n x --dim features of
   --ratio-classes classes, A = fit_linear(solver=lbfgs) (L2 normalisation, the fit, the full
   weight matrix), B = scikit-learn's LinearSVC called directly on the same normalised array
   (the same problem, by liblinear). liblinear takes minutes at the full size, so the ratio is
   measured smaller.
2. the target: fit_linear (solver=auto, which picks lbfgs there) on --n x --dim features of
   --classes classes, --rounds times: the fit must take under a minute on this CPU.
Prints median and range of each. The features are GAP-like: non-negative, overlapping class
clusters (a ReLU of class means plus noise), so the fit is not trivial.

Measured on the 2-core CPU (one thread, 5 rounds each, 2026-12-01):
  10,000 x 1,024, 20 classes: lbfgs 5.37 s (5.12-6.72), liblinear 9.00 s (8.57-9.16), ratio 0.60
  (0.57-0.74); 50,000 x 1,024, 100 classes: fit_linear (auto -> lbfgs) 42.7 s (40.3-44.2), under
  the minute; liblinear alone took 412 s for one such fit (a single round, the machine busy).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def make_features(n: int, dim: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, 1.0, (classes, dim)).astype(np.float32)
    labels = rng.integers(0, classes, n)
    x = means[labels] + rng.normal(0.0, 2.0, (n, dim)).astype(np.float32)
    return np.maximum(x, 0.0), labels


def one_round(which: str, n: int, dim: int, classes: int, threads: int) -> dict:
    """Time one fit in this process (the child of a round)."""
    import torch

    from cam_repro.features.linear import fit_linear, l2_normalized

    torch.set_num_threads(threads)
    x, y = make_features(n, dim, classes)
    names = [str(c) for c in range(classes)]
    tick = time.perf_counter()
    if which == "sklearn":
        from sklearn.svm import LinearSVC

        xn = l2_normalized(x).astype(np.float64)
        model = LinearSVC(C=1.0, max_iter=5000, random_state=0).fit(xn, y)
        accuracy = float((model.predict(xn) == y).mean())
    else:
        clf = fit_linear(
            x, y, names, "svm", 1.0, True, 5000, 0, "lbfgs" if which == "ours" else "auto"
        )
        accuracy = float((clf.predict(x) == y).mean())
    return {"seconds": time.perf_counter() - tick, "train_accuracy": accuracy}


def _child(which: str, n: int, dim: int, classes: int, threads: int) -> dict:
    env = {**os.environ, **{k: str(threads) for k in
           ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}  # fmt: skip
    cmd = [sys.executable, __file__, "--child", which, "--n", str(n), "--dim", str(dim),
           "--classes", str(classes), "--threads", str(threads)]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _summary(name: str, values: list[float], unit: str = "") -> str:
    return (f"{name}: median {statistics.median(values):.2f}{unit} "
            f"(range {min(values):.2f}-{max(values):.2f}, {len(values)} rounds)")  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--ratio-n", type=int, default=10_000)
    parser.add_argument("--ratio-classes", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-ratio", action="store_true")
    parser.add_argument("--child", choices=("ours", "sklearn", "auto"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(one_round(args.child, args.n, args.dim, args.classes, args.threads)))
        return 0
    if not args.skip_ratio:
        times: dict[str, list[float]] = {"ours": [], "sklearn": []}
        for r in range(args.rounds):
            for which in ("ours", "sklearn"):  # A, B, A, B, ...
                got = _child(which, args.ratio_n, args.dim, args.ratio_classes, args.threads)
                times[which].append(got["seconds"])
                print(f"ratio round {r + 1} {which}: {got['seconds']:.1f} s, train accuracy "
                      f"{got['train_accuracy']:.4f}", flush=True)  # fmt: skip
        ratios = [a / b for a, b in zip(times["ours"], times["sklearn"], strict=True)]
        print(f"\n{args.ratio_n} x {args.dim} features, {args.ratio_classes} classes, "
              f"{args.threads} thread(s):")  # fmt: skip
        print(_summary("  fit_linear(solver=lbfgs)", times["ours"], " s"))
        print(_summary("  LinearSVC (liblinear)", times["sklearn"], " s"))
        print(_summary("  ratio lbfgs / liblinear", ratios))
    target = []
    for r in range(args.rounds):
        got = _child("auto", args.n, args.dim, args.classes, args.threads)
        target.append(got["seconds"])
        print(f"target round {r + 1}: {got['seconds']:.1f} s, train accuracy "
              f"{got['train_accuracy']:.4f}", flush=True)  # fmt: skip
    print(f"\n{args.n} x {args.dim} features, {args.classes} classes, {args.threads} thread(s):")
    print(_summary("  fit_linear(solver=auto)", target, " s"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
