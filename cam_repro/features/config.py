"""The features config: the typed schema of `configs/features.yaml` (`cam-features`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig

from cam_repro.evaluate.config import DataOverrides, check_one_network
from cam_repro.features.outputs import CROPS
from cam_repro.models.config import ModelConfig
from cam_repro.runtime.config import RuntimeConfig, check_choice, runtime_config, to_schema
from cam_repro.runtime.errors import ConfigError

FEATURE_KINDS = ("gap", "gmp", "fc7", "avgpool")
CLASSIFIERS = ("svm", "logistic")
SOLVERS = ("auto", "liblinear", "lbfgs")


@dataclass
class ClassifierConfig:
    """The linear classifier fitted on the train split's features (scikit-learn)."""

    kind: str = "svm"  # svm (LinearSVC, the paper's) | logistic (multinomial LogisticRegression)
    C: float = 1.0  # inverse regularisation strength
    l2_normalize: bool = True  # scale every feature vector to unit length first
    max_iter: int = 5000  # the solver's iteration limit (a warning in the log if reached)
    # svm: liblinear (scikit-learn's LinearSVC) | lbfgs (the same problem, all classes at once in
    # torch: much faster on large sets) | auto (lbfgs above 2e8 = train images x dims x classes)
    solver: str = "auto"


@dataclass
class FeaturesConfig:
    """`cam-features`: a network's features of another dataset, and a linear classifier on them
    (Zhou et al. 2016, Section 4)."""

    # A cam-train checkpoint; or, instead, a model (model=googlenet_gap model.weights_path=FILE)
    checkpoint: str | None = None
    model: ModelConfig | None = None
    # Classes of the network's own last layer when it is built from `model` (its CAMs choose the
    # crops of crop=cam): null = 1000 (ImageNet) with torchvision or file weights, else the data's
    model_classes: int | None = None
    seed: int = 0  # initialises a network without weights (model=... alone: the random floor)
    # The dataset to classify: data=folder data.root=DIR (or cub, imagenet, synthetic); its keys
    # replace the checkpoint's data config (a data= preset gives all of its keys: with a
    # checkpoint, give data.root alone to keep its input size and normalisation)
    data: DataOverrides = field(default_factory=DataOverrides)  # type: ignore[valid-type]
    train_split: str = "train"  # the split the classifier is fitted on
    test_split: str = "val"  # folder data: val/ or test/
    features: str = "gap"  # gap | gmp (CAM networks) | fc7 (AlexNet/VGG originals) | avgpool
    crop: str = "full"  # full | cam (the top-1 CAM's box) | gt (the ground-truth box) | full+cam
    threshold: float = 0.2  # crop=cam: the paper's box rule (largest component >= t x max)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    # Localization from the linear classifier's weights on the test split (where it has boxes)
    localize: bool = True
    iou_threshold: float = 0.5  # localization: a box is right at IoU >= this
    # Where the feature caches go (features_<split>_<part>.npz); null: RUN/cache
    cache_dir: str | None = None
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    overwrite: bool = False  # replace the results of a run folder that already holds them


def features_config(cfg: FeaturesConfig | Mapping[str, Any] | DictConfig) -> FeaturesConfig:
    """Validate a features config (every key but the data overrides, which need the checkpoint)."""
    from cam_repro.localize.boxes import check_threshold  # numba, scipy: not for the schema

    spec = to_schema(FeaturesConfig, cfg)
    check_choice(spec.features, "features", FEATURE_KINDS)
    check_choice(spec.crop, "crop", CROPS)
    check_choice(spec.classifier.kind, "classifier.kind", CLASSIFIERS)
    check_choice(spec.classifier.solver, "classifier.solver", SOLVERS)
    check_threshold(spec.threshold)
    spec.runtime = runtime_config(spec.runtime)
    if not spec.classifier.C > 0:
        raise ConfigError(f"classifier.C must be > 0, got {spec.classifier.C}")
    if spec.classifier.max_iter < 1:
        raise ConfigError(f"classifier.max_iter must be >= 1, got {spec.classifier.max_iter}")
    if not 0 < spec.iou_threshold <= 1:
        raise ConfigError(f"iou_threshold must lie in (0, 1], got {spec.iou_threshold}")
    if spec.model_classes is not None and spec.model_classes < 1:
        raise ConfigError(f"model_classes must be >= 1, got {spec.model_classes}")
    if spec.train_split == spec.test_split:
        raise ConfigError(f"train_split and test_split are both {spec.train_split!r}")
    check_one_network(
        spec.checkpoint, spec.model, "last.pt", "model=googlenet_gap model.weights_path=FILE"
    )
    return spec
