"""The evaluation config: the typed schema of `configs/eval.yaml` (`cam-eval`), the keys it
shares with cam-visualize (the box rule's, the data overrides), and `threshold_from`'s run checked
against it (`heldout_thresholds`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
from omegaconf import DictConfig

from cam_repro.data.config import DataConfig, data_config
from cam_repro.evaluate.outputs import HeldOut, image_key, read_heldout
from cam_repro.localize.posthoc_methods import POSTHOC_METHODS, PosthocSpec, posthoc_method
from cam_repro.models.config import ModelConfig
from cam_repro.runtime.config import RuntimeConfig, check_choice, runtime_config, to_schema
from cam_repro.runtime.errors import ConfigError

if TYPE_CHECKING:
    from cam_repro.data import DataSplit
    from cam_repro.localize.boxes import BoxRule

LOCALIZERS = ("cam", "backprop", "gradcam", "torchcam")
SPLITS = ("val", "train")


def _optional(tp: Any) -> Any:
    return Optional[tp]  # noqa: UP045 (OmegaConf reads typing.Optional, not `X | None` strings)


# Every data key, defaulting to None: "keep what the checkpoint's training config says".
DataOverrides = dataclasses.make_dataclass(
    "DataOverrides",
    [(f.name, _optional(f.type), None) for f in dataclasses.fields(DataConfig)],
)
# Found by name when pickled (make_dataclass names the module "types"): submitit's jobs unpickle
# Hydra's ConfigStore, and a class pickled by value is another class there.
DataOverrides.__module__ = __name__


@dataclass
class BoxKeys:
    """The paper's box rule as cam-eval and cam-visualize take it (see localize.boxes.BoxRule)."""

    threshold: float = 0.2  # keep pixels >= threshold x the map's (normalised) max
    normalize: str = "max"  # max (the paper) | minmax (later WSOL work)


@dataclass
class TorchCamKeys:
    """localizer=torchcam: a torch-cam method (localize/posthoc_methods.py) and its options; null
    keeps torch-cam's default (docs/posthoc.md)."""

    # torch-cam's class name, any case: CAM | GradCAM | GradCAMpp | SmoothGradCAMpp | ScoreCAM |
    # SSCAM | ISCAM | XGradCAM | LayerCAM | FinerCAM
    method: str | None = None
    # the hooked module (a name of model.named_modules()); null: the CAM feature map of a network
    # with a GAP/GMP + linear head, else the last conv past its batch norm and activation
    layer: str | None = None
    batch_size: int | None = None  # Score-CAM, SS-CAM, IS-CAM: masked images per pass (speed)
    num_samples: int | None = None  # SS-CAM (35), IS-CAM (10), Smooth Grad-CAM++ (4)
    std: float | None = None  # the noise's: SS-CAM (2.0), Smooth Grad-CAM++ (0.3)
    gamma: float | None = None  # Finer-CAM (0.6)
    num_references: int | None = None  # Finer-CAM (3)
    # the noise of SS-CAM and Smooth Grad-CAM++, seeded per batch and class column from it
    seed: int = 0


def posthoc_spec(localizer: str, keys: TorchCamKeys) -> PosthocSpec | None:
    """The torch-cam method a run asks for (localizer=torchcam), checked; None for the other
    localizers, which take no torchcam.* key. One-line ConfigErrors naming the key."""
    given = {k: v for k, v in dataclasses.asdict(keys).items() if v is not None and k != "seed"}
    if localizer != "torchcam":
        if given or keys.seed != 0:
            key = next(iter(given), "seed")
            raise ConfigError(
                f"torchcam.{key}: applies to localizer=torchcam only, this run has "
                f"localizer={localizer}"
            )
        return None
    if keys.method is None:
        raise ConfigError(
            f"localizer=torchcam needs torchcam.method=<name>: one of {', '.join(POSTHOC_METHODS)}"
        )
    fields = {k: getattr(keys, k) for k in given if k != "method"}
    spec = PosthocSpec(posthoc_method(keys.method).name, seed=keys.seed, **fields)
    spec.options()  # checked: each applies to the method, in range
    return spec


@dataclass
class EvalConfig(BoxKeys):
    """`cam-eval`: classification and localization errors of a network on a labelled split."""

    # A cam-train checkpoint (RUN_DIR/checkpoints/best.pt); the network, classes and data config
    # come from it. Or, instead, a model (model=vgg16 model.pretrained=true) and data (data=...).
    checkpoint: str | None = None
    model: ModelConfig | None = None  # model=<variant> (configs/model/), instead of a checkpoint
    # data.* keys replace the checkpoint's data config (null: keep its value); data=<preset> gives
    # all of a preset's keys (configs/data/)
    data: DataOverrides = field(default_factory=DataOverrides)  # type: ignore[valid-type]
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    split: str = "val"  # the split scored: val | train
    # cam (class activation map) | backprop (Simonyan et al. saliency) | gradcam (Selvaraju et
    # al. 2017, any classifier)
    localizer: str = "cam"
    # localizer=gradcam: the module it differentiates (a name of model.named_modules()); null: a
    # CAM network's feature map (any classifier's with a GAP + linear head), else the last conv
    # past its batch norm and activation (VGG16's relu5_3)
    gradcam_layer: str | None = None
    # localizer=torchcam: torch-cam's method and options (torchcam.method=ScoreCAM ...)
    torchcam: TorchCamKeys = field(default_factory=TorchCamKeys)
    box_rule: str = "paper"  # paper (the text) | release (the released code's box generator)
    all_boxes: bool = False  # paper rule: every component's box (right if any matches)
    ten_crop: bool = False  # 4 corners + centre of the resize_size image, and their mirrors
    iou_threshold: float = 0.5  # a box is right at IoU >= this with a ground-truth box
    topk: int = 5  # top-k errors (the paper: top-1 and top-5)
    # MaxBoxAccV2 (Choe et al. 2020): its sweep over thresholds 0, 1/n, ..., (n-1)/n
    maxboxacc: bool = True
    # The paper rule's GT-known accuracy at every threshold of the grid: sweep.csv (threshold_from
    # and the threshold figures read it); only when asked, it costs a sweep per image
    sweep: bool = False
    sweep_thresholds: int = 1000  # n: the thresholds 0, 1/n, ..., (n-1)/n of MaxBoxAcc, sweep
    maxboxacc_iou: list[int] = field(default_factory=lambda: [30, 50, 70])  # IoU levels, in %
    # MaxBoxAccV2 and PxAP exactly as wsolevaluation computes them (its thresholds np.arange(0,
    # 1, 1/sweep_thresholds), uint8 quantisation, outer and hole contours, its box and mask
    # resizing); false: our documented convention (cam_repro/localize/wsol.py)
    wsol_convention: bool = False
    # PxAP, the mask metric: auto (with maxboxacc, when every image has a foreground mask) |
    # true | false
    pxap: str = "auto"
    # Threads that score batches (boxes, IoU, the sweeps, PxAP) while the main thread runs the
    # next forward pass; 0: score each batch in the main thread, after its forward pass. The
    # results are the same (docs/evaluation.md, "Speed").
    score_threads: int = 1
    # The folder of a finished cam-eval run (e.g. of a held-out val split) whose best CAM
    # thresholds this run uses: its sweep's best for the paper rule (it wins over `threshold`,
    # and is recorded), its best per IoU level for MaxBoxAcc (reported beside the oracle's).
    # Same localizer (and gradcam_layer), normalize, box rule, IoU levels and sweep_thresholds
    # as this run.
    threshold_from: str | None = None
    # A run folder that already holds results (metrics.json) is refused unless this is true
    overwrite: bool = False


def box_rule(spec: EvalConfig | BoxKeys) -> BoxRule:
    """The BoxRule of an app config (a ConfigError naming the bad key)."""
    from cam_repro.localize.boxes import BoxRule  # numba, scipy: not for the schema (--help)

    if isinstance(spec, EvalConfig):
        return BoxRule(spec.threshold, spec.normalize, spec.box_rule, spec.all_boxes)
    return BoxRule(spec.threshold, spec.normalize)


def check_localizer(
    localizer: str, gradcam_layer: str | None, torchcam: TorchCamKeys | None = None
) -> PosthocSpec | None:
    """cam-eval's and cam-visualize's localizer=, gradcam_layer= and torchcam.* keys, checked
    alike; localizer=torchcam's method (the torch-cam method's name made its class name's)."""
    check_choice(localizer, "localizer", LOCALIZERS)
    if gradcam_layer is not None and localizer != "gradcam":
        raise ConfigError(
            f"gradcam_layer: applies to localizer=gradcam only, this run has localizer={localizer}"
        )
    spec = posthoc_spec(localizer, torchcam or TorchCamKeys())
    if spec is not None and torchcam is not None:
        torchcam.method = spec.method
    return spec


def eval_config(cfg: EvalConfig | Mapping[str, Any] | DictConfig) -> EvalConfig:
    """Validate an eval config (every key but the data overrides, which need the checkpoint)."""
    spec = to_schema(EvalConfig, cfg)
    check_choice(spec.split, "split", SPLITS)
    check_localizer(spec.localizer, spec.gradcam_layer, spec.torchcam)
    # Hydra reads pxap=true / false as booleans, which the string field turns into "True"
    spec.pxap = str(spec.pxap).lower()
    check_choice(spec.pxap, "pxap", ("auto", "true", "false"))
    box_rule(spec)
    spec.runtime = runtime_config(spec.runtime)
    if not 0 < spec.iou_threshold <= 1:
        raise ConfigError(f"iou_threshold must lie in (0, 1], got {spec.iou_threshold}")
    if spec.topk < 1:
        raise ConfigError(f"topk must be >= 1, got {spec.topk}")
    if spec.score_threads < 0:
        raise ConfigError(f"score_threads must be >= 0, got {spec.score_threads}")
    if spec.sweep_thresholds < 2:
        raise ConfigError(f"sweep_thresholds must be >= 2, got {spec.sweep_thresholds}")
    if not spec.maxboxacc_iou or not all(0 < t <= 100 for t in spec.maxboxacc_iou):
        raise ConfigError(f"maxboxacc_iou must be IoU levels in (0, 100], got {spec.maxboxacc_iou}")
    check_one_network(
        spec.checkpoint, spec.model, "best.pt",
        "model=vgg16 model.pretrained=true data=imagenet data.root=DIR",
    )  # fmt: skip
    return spec


def check_one_network(
    checkpoint: str | None, model: ModelConfig | None, file: str, example: str
) -> None:
    """A network stage takes a checkpoint or a model, exactly one: a ConfigError saying which
    (`file`: the checkpoint's usual name; `example`: model overrides to show)."""
    if (checkpoint is None) == (model is None):
        raise ConfigError(
            f"give either checkpoint=RUN_DIR/checkpoints/{file} (a cam-train run) or a model "
            f"(e.g. {example}), not " + ("both" if checkpoint is not None else "neither")
        )


def resolve_data(data: Any, trained: Mapping[str, Any] | None) -> DataConfig:
    """The data config: the checkpoint's training data config, then the user's data.* keys
    (`data`, a DataOverrides: None keeps the checkpoint's value)."""
    overrides = {k: v for k, v in dataclasses.asdict(data).items() if v is not None}
    base = dict(trained or {})
    base.update(overrides)
    return data_config(base)


def sweep_grid(n: int) -> np.ndarray:
    """The CAM thresholds of the sweep and MaxBoxAcc: 0, 1/n, ..., (n - 1)/n."""
    return np.arange(n, dtype=np.float64) / n


# The protocol keys under which a threshold means the same thing in two runs.
_SAME_PROTOCOL = ("localizer", "gradcam_layer", "box_rule", "normalize", "all_boxes", "ten_crop",
                  "iou_threshold", "wsol_convention")  # fmt: skip


def _text(value: Any) -> str:
    """A config value as one writes it on the command line (true, not True; null, not None)."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_text(v)}" for k, v in value.items()) + "}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def heldout_thresholds(spec: EvalConfig, run_dir: str | Path | None = None) -> HeldOut | None:
    """threshold_from's run, checked against this run's protocol (one-line ConfigErrors), its
    thresholds put on this run's grid; None without threshold_from."""
    if spec.threshold_from is None:
        return None
    key = "threshold_from"
    if spec.box_rule == "release":
        raise ConfigError(
            f"{key}: applies to box_rule=paper only; the release rule's thresholds are fixed (20, "
            "100, 110 of 255)"
        )
    heldout = read_heldout(spec.threshold_from, key)
    where = heldout.folder
    if run_dir is not None and Path(run_dir).expanduser().resolve() == where:
        raise ConfigError(f"{key}: {where} is this run's own folder: give another run's")
    ours_posthoc = posthoc_spec(spec.localizer, spec.torchcam)
    for name in (*_SAME_PROTOCOL, "torchcam"):  # fields of metrics.json's typed protocol
        theirs = heldout.protocol.get(name)  # torchcam: absent before torch-cam's localizers
        ours = getattr(spec, name) if name != "torchcam" else None
        if name == "torchcam" and ours_posthoc is not None:
            ours = ours_posthoc.protocol()
        if theirs != ours:
            raise ConfigError(
                f"{key}: {where} was evaluated with {name}={_text(theirs)}, this run with "
                f"{name}={_text(ours)}: a threshold carries over only under the same protocol"
            )
    grid = sweep_grid(spec.sweep_thresholds)
    if len(heldout.sweep) != len(grid) or not np.allclose(heldout.sweep, grid, rtol=0, atol=1e-6):
        raise ConfigError(
            f"{key}: {where} swept {len(heldout.sweep)} thresholds, this run "
            f"sweep_thresholds={spec.sweep_thresholds}: give the same grid (sweep_thresholds="
            f"{len(heldout.sweep)})"
        )
    paper = grid[int(np.argmin(np.abs(grid - heldout.paper_threshold)))]
    if not spec.maxboxacc:
        return dataclasses.replace(heldout, paper_threshold=float(paper))
    if heldout.box_thresholds is None:
        raise ConfigError(
            f"{key}: {where} has no MaxBoxAcc thresholds (evaluated with maxboxacc=false or "
            "without boxes): give a run with them, or maxboxacc=false"
        )
    levels = [str(level) for level in spec.maxboxacc_iou]
    if sorted(heldout.box_thresholds) != sorted(levels):
        raise ConfigError(
            f"{key}: {where} has MaxBoxAcc IoU levels {sorted(heldout.box_thresholds, key=float)}, "
            f"this run {levels}: give the same maxboxacc_iou"
        )
    box = {}
    for level, t in heldout.box_thresholds.items():
        i = int(np.argmin(np.abs(grid - t)))
        if abs(grid[i] - t) > 1e-6:
            raise ConfigError(
                f"{key}: {where}'s MaxBoxAcc threshold {t} at IoU {level} is not on this run's "
                f"grid (sweep_thresholds={spec.sweep_thresholds})"
            )
        box[level] = float(grid[i])
    return dataclasses.replace(heldout, paper_threshold=float(paper), box_thresholds=box)


def check_held_out(heldout: HeldOut, data: DataSplit, key: str = "threshold_from") -> HeldOut:
    """`heldout`, marked checked, if none of the images it chose its thresholds on is among
    `data`'s (this run's split; images compared by `outputs.image_key`: id and GT boxes); else a
    one-line ConfigError. A threshold chosen on the scored images is the oracle, which metrics.json
    already reports as such (`best_threshold`, `box_acc`): labelled held out, it would flatter the
    method, so it is refused rather than relabelled."""
    scored = (image_key(s.image_id, s.boxes) for s in data.samples)
    shared = sorted(k for k in scored if k in heldout.images)
    if shared:
        raise ConfigError(
            f"{key}: {heldout.folder} chose its thresholds on {len(shared)} of the "
            f"{len(data.samples)} images scored here ({data.root}, e.g. {shared[0][0]}), so they "
            "are not held out: give a cam-eval run of a disjoint split (e.g. val when scoring "
            "test), or drop threshold_from (this split's best thresholds are metrics.json's "
            "oracle values)"
        )
    return dataclasses.replace(heldout, checked=True)
