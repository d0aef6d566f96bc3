"""cam-reproduce's settings: the typed schema (`ReproduceConfig`) and its checks; no torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cam_repro.apps import variants
from cam_repro.data.synth_config import EVIDENCE
from cam_repro.localize.posthoc_methods import posthoc_method
from cam_repro.models.method_config import METHODS
from cam_repro.runtime.config import RuntimeConfig, check_choice, runtime_config, to_schema
from cam_repro.runtime.errors import ConfigError


@dataclass
class SynthSize:
    """The synthetic set's size (docs/design.md's measured set by default; smaller for tests)."""

    num_classes: int = 10  # classes of the synthetic set (cam-synth's num_classes)
    train_per_class: int = 300  # train images per class
    val_per_class: int = 50  # val images per class
    seed: int = 0  # the dataset's seed (the same data for every model seed)


@dataclass
class ReproduceConfig:
    """`cam-reproduce`: generate, train GAP and GMP alike, evaluate, draw, tabulate."""

    out: str | None = None  # tables, figures, command.txt; null: the run dir
    work: str | None = None  # datasets, train and eval runs; null: OUT/runs
    designs: list[str] = field(default_factory=lambda: ["parts"])  # parts | uniform | fine
    models: list[str] = field(default_factory=lambda: ["tiny_gap", "tiny_gmp"])  # on every design
    seeds: list[int] = field(default_factory=lambda: [0])  # a training per design, model, seed
    ablation: list[str] = field(default_factory=list)  # more models, on the first design only
    # the seeds of the ablation and of the Section 4 and 4.2 stages; null: `seeds` (the record:
    # 5 seeds for the main designs, 3 for these)
    study_seeds: list[int] | None = None
    synth: SynthSize = field(default_factory=SynthSize)
    epochs: int = 8  # the measured recipe; fewer leaves GMP near chance (docs/design.md)
    # every model's conv widths (model.width_mult), alike for all: 0.5 trains 2.3x faster than
    # the full Tiny width, which fits 5 seeds into the record's time (docs/reproduction.md);
    # fewer images or epochs instead leave GMP undertrained
    width_mult: float = 0.5
    jobs: int = 2  # trainings/evaluations at once; the CPU threads are split between them
    # Every job's runtime keys. amp: bf16 autocast for every model alike, 1.6x faster on CPUs
    # with native bf16 (AVX512-BF16, AMX; none: fp32, cam-train's default); threads: per job,
    # null: the cores / jobs; progress: the jobs draw no bars (they run side by side)
    runtime: RuntimeConfig = field(
        default_factory=lambda: RuntimeConfig(amp="bf16", progress=False)
    )
    figure_images: int = 6  # images per figure
    # the Section 4 stages (transfer to new classes, fine-grained crops): longer than the main job
    features: bool = False
    # Section 4.2's pattern discovery, with the first model: the text detector (a linear SVM on
    # the benchmark network's GAP features; the network trained on text / no text) and VQA
    discovery: bool = False
    # The WSOL methods stage: the first model on the first design trained with each of these
    # methods (cam | has | acol | spg | adl | cutmix; configs/method/) at every seed of `seeds`,
    # CAM's trainings being the main ones, each also evaluated with thresholds held out on other
    # images of the design's classes (a set of another data seed); cam-report's
    # table_methods.md. []: the stage is off
    methods: list[str] = field(default_factory=list)
    # The post-hoc maps stage: every model at every seed on the first design, its last checkpoint
    # localized by our CAM and by each of these torch-cam methods (CAM | GradCAM | GradCAMpp |
    # SmoothGradCAMpp | ScoreCAM | SSCAM | ISCAM | XGradCAM | LayerCAM | FinerCAM;
    # localize/posthoc_methods.py), thresholds held out; cam-report's table_posthoc.md in
    # OUT/posthoc. []: the stage is off
    posthoc: list[str] = field(default_factory=list)
    # images per class of the post-hoc stage's two sets (scored, and held out for thresholds):
    # fewer than val's, as SS-CAM costs ~1,700 forward passes per map (docs/posthoc.md)
    posthoc_per_class: int = 10
    # keep datasets and trainings of the same settings (and resume unfinished ones); false: redo
    reuse: bool = True
    # A record to compare this run's rows with (OUT/record_check.md): auto (the committed
    # results/synthetic, installed with the package as cam_repro.record; an error if it is not
    # installed) | off | a summary.csv (its command.txt beside it, if any)
    record: str = "auto"


def reproduce_config(cfg: Any) -> ReproduceConfig:
    """The checked settings: a bad design, model, seed list or size is one line, before any work."""
    spec = to_schema(ReproduceConfig, cfg)
    for design in spec.designs:
        check_choice(design, "designs", EVIDENCE)
    spec.runtime = runtime_config(spec.runtime)
    if not spec.designs or not spec.models or not spec.seeds:
        raise ConfigError("designs, models and seeds must each name at least one")
    if spec.study_seeds is not None and not spec.study_seeds:
        raise ConfigError("study_seeds must name at least one seed (or be null: the seeds)")
    for key, seeds in (("seeds", spec.seeds), ("study_seeds", spec.study_seeds or [])):
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"{key} must not repeat a seed, got {seeds}")
    known = variants()
    for model in [*spec.models, *spec.ablation]:
        if model not in known:
            raise ConfigError(f"models/ablation: no model {model!r}; one of {', '.join(known)}")
    for method in spec.methods:
        check_choice(method, "methods", METHODS)
    if len(set(spec.methods)) != len(spec.methods):
        raise ConfigError(f"methods must not repeat a method, got {spec.methods}")
    spec.posthoc = [posthoc_method(m, "posthoc").name for m in spec.posthoc]
    if len(set(spec.posthoc)) != len(spec.posthoc):
        raise ConfigError(f"posthoc must not repeat a method, got {spec.posthoc}")
    if spec.posthoc_per_class < 1:
        raise ConfigError(f"posthoc_per_class must be >= 1, got {spec.posthoc_per_class}")
    if spec.jobs < 1 or spec.epochs < 1:
        raise ConfigError("jobs and epochs must be >= 1")
    if not spec.width_mult > 0:
        raise ConfigError(f"width_mult must be > 0, got {spec.width_mult}")
    return spec
