"""Time cam-features' linear fit (features.linear.fit_linear) on 50,000 x 1,024 features.

    .venv/bin/python scripts/bench_linear.py [--n 50000] [--dim 1024] [--classes 100]
        [--kind svm] [--rounds 5]

The features are GAP-like: non-negative, sparse-ish class clusters (a ReLU of class means plus
noise), with overlap so that the fit is not trivial. Alternating rounds, each in a fresh process
with one thread (OMP/MKL/OpenBLAS): A = fit_linear (L2 normalisation, the fit, the full weight
matrix), B = scikit-learn's estimator called directly on the same normalised float64 array (the
floor our wrapper adds to). Prints the median and range of each and of the ratio A / B; the
target is an absolute one (a fit under a minute on this CPU), the ratio shows our overhead.
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


def one_round(which: str, args: argparse.Namespace) -> float:
    """Time one fit in this process (the child of a round)."""
    from cam_repro.features.linear import fit_linear, l2_normalized

    x, y = make_features(args.n, args.dim, args.classes)
    names = [str(c) for c in range(args.classes)]
    tick = time.perf_counter()
    if which == "ours":
        fit_linear(x, y, names, args.kind, 1.0, True, args.max_iter)
    else:
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import LinearSVC

        xn = l2_normalized(x).astype(np.float64)
        model = LinearSVC if args.kind == "svm" else LogisticRegression
        model(C=1.0, max_iter=args.max_iter, random_state=0).fit(xn, y)
    return time.perf_counter() - tick


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--kind", choices=("svm", "logistic"), default="svm")
    parser.add_argument("--max-iter", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", choices=("ours", "sklearn"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(one_round(args.child, args)))
        return 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}  # fmt: skip
    times: dict[str, list[float]] = {"ours": [], "sklearn": []}
    for r in range(args.rounds):
        for which in ("ours", "sklearn"):  # A, B, A, B, ...
            cmd = [sys.executable, __file__, *argv, "--child", which]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            times[which].append(float(out.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1} {which}: {times[which][-1]:.1f} s", flush=True)
    ratios = [a / b for a, b in zip(times["ours"], times["sklearn"], strict=True)]
    print(f"\n{args.n} x {args.dim} features, {args.classes} classes, {args.kind}, one thread, "
          f"{args.rounds} alternating rounds")  # fmt: skip
    for name, values in (*times.items(), ("ratio ours / sklearn", ratios)):
        unit = "" if name.startswith("ratio") else " s"
        print(f"{name}: median {statistics.median(values):.2f}{unit} "
              f"(range {min(values):.2f}-{max(values):.2f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
