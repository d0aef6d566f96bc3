"""A finished cam-features run loaded to draw: its network, classifier, predictions, test split.

cam-visualize features_run=DIR draws the classifier's CAMs (linear_cams.png, text_cams.png)
from what this module loads: the run's network (features.run.features_network, the same loader
as cam-features), its fitted classifier as a linear head over the network's last conv maps
(evaluate.views.HeadNet), its predictions.csv and its test split; the network's weights are
checked to be those the classifier was fitted on (`check_same_weights`).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf

from cam_repro.data import DataSplit, dataset_kind, read_split
from cam_repro.evaluate.network import Network
from cam_repro.evaluate.views import HeadNet
from cam_repro.features.config import features_config
from cam_repro.features.extract import head_pool
from cam_repro.features.linear import load_classifier
from cam_repro.features.outputs import read_features_metrics
from cam_repro.features.run import cam_box_rule, features_network
from cam_repro.localize.boxes import BoxRule
from cam_repro.runtime.errors import ConfigError, InputFileError

log = logging.getLogger(__name__)


@dataclass
class FeaturesRunView:
    """A cam-features run folder, loaded to draw its classifier's CAMs on its test split."""

    run_dir: Path
    net: HeadNet
    test: DataSplit
    predicted: dict[str, int]  # image id -> the classifier's class (its predictions.csv)
    rule: BoxRule  # the run's threshold, max-normalised (as its localization scores)
    title: str  # e.g. "svm on Tiny-GAP gap features (crop full)"
    task: str  # the test data's task (dataset_kind): classes | text


def load_features_run(run_dir: Path, device: torch.device, channels_last: bool) -> FeaturesRunView:
    """The network, classifier, predictions and test split of a cam-features run."""
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise InputFileError(f"{config}: missing: {run_dir} is not a cam-features run folder")
    fspec = features_config(OmegaConf.load(config))
    if fspec.features == "fc7":
        raise ConfigError(f"{run_dir}: features=fc7 has no conv maps, so no CAMs to draw")
    clf = load_classifier(run_dir / "classifier.npz")
    network = features_network(fspec, device, channels_last, len(clf.classes))
    check_same_weights(run_dir, network)
    test = read_split(network.data, fspec.test_split)
    if list(test.classes) != clf.classes:
        raise ConfigError(f"{run_dir}: its classifier's classes differ from {test.root}'s now")
    pool = head_pool(fspec.features)
    predicted = {
        image: clf.classes.index(c)
        for image, c in _features_predictions(run_dir / "predictions.csv").items()
    }
    return FeaturesRunView(
        run_dir,
        HeadNet(network, lambda k, on: clf.cam_head(k, pool, on)),
        test,
        predicted,
        cam_box_rule(fspec.threshold),
        f"{clf.kind} on {network.paper} {fspec.features} features (crop {fspec.crop})",
        dataset_kind(network.data)["task"],
    )


def _features_predictions(path: Path) -> dict[str, str]:
    """image id -> predicted class, from a cam-features run's predictions.csv."""
    if not path.is_file():
        raise InputFileError(f"{path}: missing (a cam-features run's predictions)")
    with path.open(newline="") as f:
        return {row["image"]: row["predicted"] for row in csv.DictReader(f)}


def check_same_weights(run_dir: Path, network: Network) -> None:
    """The classifier was fitted on the features of the weights the run recorded (metrics.json's
    `weights_sha256`): a checkpoint or weights file rewritten since would give the network other
    maps, and the classifier's CAMs drawn on them would be silently wrong."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise InputFileError(f"{path}: missing: {run_dir} is not a finished cam-features run")
    fitted = read_features_metrics(path).weights_sha256
    now = network.weights_sha256
    if fitted is None or now is None:  # torchvision's weights or a random init: named, not hashed
        return
    if fitted != now:
        raise InputFileError(
            f"{run_dir}: its classifier was fitted on features of weights with SHA-256 "
            f"{fitted[:12]}, but the network's file now has {now[:12]} (rewritten since); "
            f"re-run cam-features, or draw from a run of the weights as they are now"
        )
