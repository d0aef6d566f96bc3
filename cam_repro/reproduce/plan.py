"""What cam-reproduce runs: its datasets' settings, its trainings (`plan`, the WSOL methods
stage's included) and cam-features runs (`feature_plan`), and where each one's folders are; pure,
no I/O."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cam_repro.reproduce.config import ReproduceConfig, SynthSize

# The Section 4 datasets: synthetic settings beyond the size (docs/features.md says why these).
FEATURE_DATA: dict[str, dict[str, Any]] = {
    # new classes from the same textures: the networks never saw them
    "transfer": {"evidence": "parts", "family": 1},
    # one body for all, the class in the key part only; 128 px read at 64 px, objects 0.3-0.6 of
    # the side, so the key part is a few pixels in the full image and larger in a crop to the box
    "fine": {"evidence": "fine", "layout": "cub", "two_object_prob": 0.0, "image_size": 128,
             "object_side": [0.3, 0.6]},
}  # fmt: skip


# The pattern-discovery sets (Section 4.2; docs/discovery.md): as many train images as the
# benchmark (text: num_classes x train_per_class / 2 per class; VQA: a third as many images, with
# three questions each), val alike.
DISCOVERY_DATA = ("text", "vqa")


def _discovery_settings(s: SynthSize, name: str) -> dict[str, Any]:
    if name == "text":
        return {"task": "text", "train_per_class": s.num_classes * s.train_per_class // 2,
                "val_per_class": s.num_classes * s.val_per_class // 2}  # fmt: skip
    return {"task": "vqa", "vqa": {"train_images": s.num_classes * s.train_per_class // 3,
                                   "val_images": s.num_classes * s.val_per_class // 3}}  # fmt: skip


# The methods stage's held-out set of a design ("parts-heldout"): the design's classes drawn
# again with the next data seed, val images only (as many as the benchmark's val split), no
# training images: the images the methods' CAM thresholds are chosen on (their train-fullsup).
HELDOUT_SUFFIX = "-heldout"


def heldout_set(design: str) -> str:
    """The name of `design`'s held-out set (a dataset of the plan)."""
    return design + HELDOUT_SUFFIX


def heldout_name(synth: SynthSize, design: str) -> str:
    """The held-out set's data.name in its cam-eval run, which the methods' tables cite as the
    split their thresholds come from."""
    images = synth.num_classes * synth.val_per_class
    return (f"held-out val ({design}: {images} other images of its classes, data seed "
            f"{synth.seed + 1})")  # fmt: skip


# The post-hoc stage's two sets of a design: its classes drawn again with data seeds + 2 (scored)
# and + 3 (thresholds chosen), `posthoc_per_class` val images per class each, no training images.
POSTHOC_SETS = {"-posthoc": 2, "-posthoc-heldout": 3}


def posthoc_sets(design: str) -> tuple[str, str]:
    """The names of `design`'s post-hoc sets: (scored, held out)."""
    scored, held = POSTHOC_SETS
    return design + scored, design + held


def posthoc_name(synth: SynthSize, design: str, per_class: int, held: bool) -> str:
    """A post-hoc set's data.name in its cam-eval runs (the tables' dataset column)."""
    offset = POSTHOC_SETS["-posthoc-heldout" if held else "-posthoc"]
    what = "held-out" if held else "scored"
    return (f"post-hoc {what} val ({design}: {synth.num_classes * per_class} other images of its "
            f"classes, data seed {synth.seed + offset})")  # fmt: skip


def data_settings(synth: SynthSize, design: str, posthoc_per_class: int = 10) -> dict[str, Any]:
    """cam-synth's settings of a dataset (an evidence design, a FEATURE_DATA or a DISCOVERY_DATA
    set, a design's held-out set or its post-hoc sets) at the benchmark's size."""
    suffix = next((x for x in sorted(POSTHOC_SETS, key=len, reverse=True) if design.endswith(x)),
                  None)  # fmt: skip
    if suffix is not None:  # the longer first: "-posthoc-heldout" also ends with "-heldout"
        return {**asdict(synth), "evidence": design[: -len(suffix)],
                "seed": synth.seed + POSTHOC_SETS[suffix], "train_per_class": 0,
                "val_per_class": posthoc_per_class}  # fmt: skip
    if design.endswith(HELDOUT_SUFFIX):
        own = design[: -len(HELDOUT_SUFFIX)]
        return {**asdict(synth), "evidence": own, "seed": synth.seed + 1, "train_per_class": 0}
    if design in DISCOVERY_DATA:
        return {**asdict(synth), **_discovery_settings(synth, design)}
    return {**asdict(synth), **FEATURE_DATA.get(design, {"evidence": design})}


@dataclass
class FeatureJob:
    """One cam-features run of the plan."""

    dataset: str  # transfer | fine
    model: str
    seed: int
    weights: str  # trained (on the first design) | random (the floor) | own (trained on dataset)
    crop: str

    @property
    def tag(self) -> str:
        return f"{self.dataset}/{self.model}/seed{self.seed}/{self.weights}-{self.crop}"

    def cache(self, work: Path) -> Path:
        """The feature caches of this network on this dataset (shared by its crops)."""
        return (
            work
            / "features"
            / "cache"
            / self.dataset
            / self.model
            / f"seed{self.seed}"
            / self.weights
        )

    def run_dir(self, work: Path) -> Path:
        return work / "features" / self.tag


def feature_plan(spec: ReproduceConfig) -> list[FeatureJob]:
    """The transfer study (trained, random and own weights, full images) and the fine-grained
    one (trained weights, every crop), for every model and seed."""
    jobs = []
    for model in spec.models if spec.features else ():
        for seed in study_seeds(spec):
            jobs += [
                FeatureJob("transfer", model, seed, w, "full") for w in ("trained", "random", "own")
            ]
            jobs += [
                FeatureJob("fine", model, seed, "trained", c)
                for c in ("full", "cam", "gt", "full+cam")
            ]
    if spec.discovery:  # the text detector the paper's way: the trained network's features
        jobs += [
            FeatureJob("text", spec.models[0], seed, "trained", "full")
            for seed in study_seeds(spec)
        ]
    return jobs


@dataclass
class Job:
    """One training (and its evaluation) of the plan."""

    design: str  # an evidence design, a FEATURE_DATA set, or a DISCOVERY_DATA set
    model: str
    seed: int
    method: str = "cam"  # the WSOL method trained (models/method_config.py)
    # the methods stage's: also evaluated with thresholds held out on the design's held-out set
    heldout: bool = False

    @property
    def task(self) -> list[str]:
        """cam-train's overrides for a VQA training, or a method's (none for CAM's)."""
        method = [] if self.method == "cam" else [f"method={self.method}"]
        return (["task=vqa", "data=synthetic_vqa"] if self.design == "vqa" else []) + method

    @property
    def trained(self) -> str:
        """The network's folder name: the model, with the method unless CAM ('tiny_gap+has')."""
        return self.model if self.method == "cam" else f"{self.model}+{self.method}"

    @property
    def tag(self) -> str:
        return f"{self.design}/{self.trained}/seed{self.seed}"

    def train_dir(self, work: Path) -> Path:
        return work / "train" / self.tag

    def checkpoint(self, work: Path) -> Path:
        """The evaluated checkpoint: the last one (the fixed budget)."""
        return self.train_dir(work) / "checkpoints" / "last.pt"

    def eval_dir(self, work: Path) -> Path:
        return work / "eval" / self.tag

    def threshold_dir(self, work: Path) -> Path:
        """The held-out set's evaluation, whose best thresholds the held-out one takes (outside
        WORK/eval: cam-report never tabulates it)."""
        return work / "heldout" / self.tag

    def heldout_eval_dir(self, work: Path) -> Path:
        """The evaluation at the held-out set's thresholds (beside the design's eval runs)."""
        return work / "eval" / self.design / "heldout" / self.trained / f"seed{self.seed}"


def plan(spec: ReproduceConfig) -> list[Job]:
    """Every (design, model, seed) to train: models on every design, ablation on the first, and
    with `features` the models on the transfer classes (the ceiling of the transfer study); with
    `methods`, the first model on the first design with each method at every seed."""
    few = study_seeds(spec)
    jobs = [Job(d, m, s) for d in spec.designs for m in spec.models for s in spec.seeds]
    # the first design's models at the study seeds too: the trained features' networks
    if spec.features or spec.discovery:
        jobs += [Job(spec.designs[0], m, s) for m in spec.models for s in few]
    jobs += [Job(spec.designs[0], m, s) for m in spec.ablation for s in few]
    if spec.features:
        jobs += [Job("transfer", m, s) for m in spec.models for s in few]
    if spec.discovery:
        jobs += [Job(d, spec.models[0], s) for d in DISCOVERY_DATA for s in few]
    # the methods stage: CAM's are the main jobs (evaluated with held-out thresholds too)
    jobs += [Job(spec.designs[0], spec.models[0], s, m, heldout=True)
             for m in stage_methods(spec) for s in spec.seeds]  # fmt: skip
    seen: dict[str, Job] = {}
    for job in jobs:
        kept = seen.setdefault(job.tag, job)
        kept.heldout = kept.heldout or job.heldout
    return list(seen.values())


@dataclass
class PosthocJob:
    """One network of the post-hoc stage localized one way: `localizer` is cam (ours, the
    baseline) or a torch-cam method's name."""

    design: str
    model: str
    seed: int
    localizer: str

    @property
    def tag(self) -> str:
        return f"{self.design}/{self.model}/seed{self.seed}/{self.localizer}"

    @property
    def trained(self) -> Job:
        """The main job whose last checkpoint is localized."""
        return Job(self.design, self.model, self.seed)

    def threshold_dir(self, work: Path) -> Path:
        """The held-out set's evaluation (its sweep gives the thresholds)."""
        return work / "posthoc" / "heldout" / self.tag

    def eval_dir(self, work: Path) -> Path:
        """The scored set's evaluation at the held-out thresholds (what cam-report tabulates)."""
        return work / "posthoc" / "eval" / self.tag


# The post-hoc stage's order of work: the costliest first, so that the pool's workers end together
_COST_ORDER = ("SSCAM", "ISCAM", "ScoreCAM", "SmoothGradCAMpp")


def posthoc_plan(spec: ReproduceConfig) -> list[PosthocJob]:
    """Every model at every seed on the first design, with our CAM and each torch-cam method of
    `spec.posthoc` (none when the stage is off), the costliest methods first."""
    if not spec.posthoc:
        return []
    rank = {m: i for i, m in enumerate(_COST_ORDER)}
    ways = sorted(["cam", *spec.posthoc], key=lambda m: rank.get(m, len(rank)))
    return [PosthocJob(spec.designs[0], model, seed, way)
            for way in ways for model in spec.models for seed in spec.seeds]  # fmt: skip


def stage_methods(spec: ReproduceConfig) -> list[str]:
    """The methods stage's methods, CAM (the baseline) first; none when the stage is off."""
    return list(dict.fromkeys(["cam", *spec.methods])) if spec.methods else []


def planned_datasets(spec: ReproduceConfig) -> list[str]:
    """The datasets the plan reads: the designs, then the Section 4 and 4.2 sets if asked for,
    then the first design's held-out set if the methods stage is on, its post-hoc sets if the
    post-hoc stage is."""
    return [*spec.designs, *(FEATURE_DATA if spec.features else ()),
            *(DISCOVERY_DATA if spec.discovery else ()),
            *([heldout_set(spec.designs[0])] if spec.methods else ()),
            *(posthoc_sets(spec.designs[0]) if spec.posthoc else ())]  # fmt: skip


def study_seeds(spec: ReproduceConfig) -> list[int]:
    """The seeds of the ablation and of the Section 4 and 4.2 stages."""
    return list(spec.seeds if spec.study_seeds is None else spec.study_seeds)
