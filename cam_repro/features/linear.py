"""The linear classifier on features (the paper's linear SVM, Section 4): fit, predict, save, load.

scikit-learn does the fitting: `LinearSVC` (one-vs-rest, squared hinge, liblinear) for
classifier=svm, multinomial `LogisticRegression` (lbfgs) for classifier=logistic; torch for large
SVMs (below). Features are L2-normalised per vector first by default.

liblinear solves the classes one after another, on one core: 50,000 x 1,024 features of 100
classes take about 7 minutes here. `solver=lbfgs` (what `auto` picks for large problems) solves
exactly LinearSVC's problem, every class at once, with torch's full-batch L-BFGS: the primal
one-vs-rest squared hinge, `0.5 (|w|^2 + b^2) + C sum max(0, 1 - y (w.x + b))^2` per class, the
bias regularised as liblinear's (an extra feature of value 1, scikit-learn's intercept_scaling=1),
to a gradient 1e-5 of its start; its objective matches liblinear's to ~1e-6 (tests compare).

The result is a plain (weight (C, D), bias (C,)) pair,
the same form as a network's own last layer, so `cam_repro.localize.cam.LinearHead` turns it into
class activation maps.
"""

from __future__ import annotations

import logging
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cam_repro.localize.cam import LinearHead
from cam_repro.runtime.errors import ConfigError, InputFileError
from cam_repro.runtime.files import atomic_write

log = logging.getLogger(__name__)


@dataclass
class LinearClassifier:
    """A fitted linear classifier over D-dimensional features of C classes."""

    weight: np.ndarray  # (C, D) float32
    bias: np.ndarray  # (C,) float32
    classes: list[str]  # label i is classes[i]
    l2_normalize: bool
    kind: str  # svm | logistic
    C: float
    solver: str = "liblinear"  # liblinear | lbfgs (svm); lbfgs (logistic)

    def scores(self, features: np.ndarray) -> np.ndarray:
        """(N, D) -> (N, C) decision values."""
        x = l2_normalized(features) if self.l2_normalize else features
        return x.astype(np.float32) @ self.weight.T + self.bias

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.scores(features).argmax(axis=1)

    def cam_head(self, channels: int, pool: str, device: torch.device) -> LinearHead:
        """The classifier over the `channels` maps of the full image (the first columns of its
        weights: with crop=full+cam, the full image's half) as a head that gives CAMs."""
        weight = torch.from_numpy(self.weight[:, :channels]).to(device)
        bias = torch.from_numpy(self.bias).to(device)
        return LinearHead(weight, bias, pool, self.l2_normalize)


def l2_normalized(features: np.ndarray) -> np.ndarray:
    """Each row scaled to unit length (a zero row stays zero)."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def fit_linear(
    features: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    kind: str = "svm",
    C: float = 1.0,  # noqa: N803 (scikit-learn's name)
    l2_normalize: bool = True,
    max_iter: int = 5000,
    seed: int = 0,
    solver: str = "auto",
) -> LinearClassifier:
    """Fit a linear classifier on (N, D) features and (N,) labels in [0, len(classes)).
    `solver` (svm): liblinear (scikit-learn), lbfgs (torch, the same problem), or auto (lbfgs
    when N x D x classes exceeds LBFGS_FROM)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    present = np.unique(labels)
    if len(present) < 2:
        raise ConfigError(
            f"the train split has {len(present)} class(es) with images: a classifier needs two"
        )
    x = l2_normalized(features) if l2_normalize else features
    if kind == "svm" and solver == "auto":
        solver = "lbfgs" if x.shape[0] * x.shape[1] * len(present) > LBFGS_FROM else "liblinear"
    if kind == "svm" and solver == "lbfgs":
        model = SquaredHingeLBFGS(C, max_iter)
    elif kind == "svm":
        model = LinearSVC(C=C, max_iter=max_iter, random_state=seed)
    elif kind == "logistic":
        model = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    else:
        raise ConfigError(f"classifier.kind must be svm or logistic, got {kind!r}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        # scikit-learn in float64 (its solvers' precision); torch's L-BFGS in float32
        model.fit(x if isinstance(model, SquaredHingeLBFGS) else x.astype(np.float64), labels)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        log.warning(
            "the %s did not converge in classifier.max_iter=%d iterations; its accuracy may "
            "still be fine, or raise max_iter", kind, max_iter,
        )  # fmt: skip
    weight, bias = _full_weights(model, len(classes), features.shape[1])
    used = solver if kind == "svm" else "lbfgs"
    return LinearClassifier(weight, bias, list(classes), l2_normalize, kind, C, used)


# N x D x classes above which solver=auto fits the SVM with L-BFGS (~10 s with liblinear here)
LBFGS_FROM = 200_000_000


class SquaredHingeLBFGS:
    """LinearSVC's problem (one-vs-rest squared hinge, L2, regularised bias), every class at once,
    by torch's full-batch L-BFGS; `coef_`, `intercept_`, `classes_` as scikit-learn's (one row for
    two classes: class 1 positive)."""

    def __init__(self, C: float, max_iter: int, tol: float = 1e-5) -> None:  # noqa: N803
        self.C, self.max_iter, self.tol = C, max_iter, tol

    def fit(self, x: np.ndarray, labels: np.ndarray) -> SquaredHingeLBFGS:
        from sklearn.exceptions import ConvergenceWarning

        self.classes_ = np.unique(labels)
        n = len(labels)
        xa = torch.cat([torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                        torch.ones(n, 1)], dim=1)  # fmt: skip  # (N, D + 1): the bias feature
        targets = self.classes_[1:] if len(self.classes_) == 2 else self.classes_
        y = torch.from_numpy((labels[:, None] == targets[None, :]).astype(np.float32)) * 2 - 1
        w = torch.zeros(len(targets), xa.shape[1], requires_grad=True)  # (K, D + 1)

        def objective() -> torch.Tensor:
            margin = torch.clamp(1 - y * (xa @ w.T), min=0)  # (N, K)
            return 0.5 * (w * w).sum() + self.C * (margin * margin).sum()

        with torch.enable_grad():
            start = torch.autograd.grad(objective(), w)[0].abs().max().item()
            opt = torch.optim.LBFGS(
                [w], lr=1, max_iter=self.max_iter, tolerance_grad=self.tol * start,
                tolerance_change=0, history_size=10, line_search_fn="strong_wolfe",
            )  # fmt: skip

            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = objective()
                loss.backward()
                return loss

            opt.step(closure)
        # out of iterations (or of the evaluations they allow) before the gradient test: a stop
        # at float32's precision (a line search that finds no lower point) is a converged fit
        state, budget = opt.state[w], opt.defaults
        if state["n_iter"] >= budget["max_iter"] or state["func_evals"] >= budget["max_eval"]:
            warnings.warn(f"L-BFGS stopped at max_iter={self.max_iter}", ConvergenceWarning, 2)
        found = w.detach().numpy().astype(np.float64)
        self.coef_, self.intercept_ = found[:, :-1], found[:, -1]
        return self


def _full_weights(model, num_classes: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(C, D) weights and (C,) biases for every class, also those the train split lacks (they
    never win) and for two classes (scikit-learn keeps one row: +w for class 1, -w for 0)."""
    coef = np.asarray(model.coef_, dtype=np.float32)
    intercept = np.asarray(model.intercept_, dtype=np.float32).reshape(-1)
    fitted = np.asarray(model.classes_)
    if len(fitted) == 2 and coef.shape[0] == 1:
        coef = np.concatenate([-coef, coef]) / 2
        intercept = np.concatenate([-intercept, intercept]) / 2
    weight = np.zeros((num_classes, dim), dtype=np.float32)
    bias = np.full(num_classes, -np.inf, dtype=np.float32)
    weight[fitted] = coef
    bias[fitted] = intercept
    if len(fitted) < num_classes:  # a finite bias far below every fitted score
        bias[~np.isin(np.arange(num_classes), fitted)] = intercept.min() - 1e6
    return weight, bias


def per_class_accuracy(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(C,) % accuracy of each class (NaN for a class without test images)."""
    right = np.bincount(labels[pred == labels], minlength=num_classes).astype(np.float64)
    total = np.bincount(labels, minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * right / total


def save_classifier(path: Path, clf: LinearClassifier) -> None:
    """classifier.npz: weight (C, D), bias (C,), classes, and how it was fitted."""

    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:
            np.savez(
                f, weight=clf.weight, bias=clf.bias, classes=np.array(clf.classes),
                l2_normalize=clf.l2_normalize, kind=clf.kind, C=clf.C, solver=clf.solver,
            )  # fmt: skip

    atomic_write(path, write)


def load_classifier(path: str | Path) -> LinearClassifier:
    """A classifier.npz written by `save_classifier` (an error naming the file otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: missing (a cam-features run's classifier)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return LinearClassifier(
                z["weight"].astype(np.float32), z["bias"].astype(np.float32),
                [str(c) for c in z["classes"]], bool(z["l2_normalize"]), str(z["kind"]),
                float(z["C"]), str(z["solver"]) if "solver" in z.files else "liblinear",
            )  # fmt: skip
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise InputFileError(f"{path}: not a readable classifier file ({err})") from None
