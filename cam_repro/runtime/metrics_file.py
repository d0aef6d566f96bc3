"""metrics.json: one typed, versioned schema for every command's results.

A metrics.json is one record of a kind: `train` (cam-train), `eval` (cam-eval of a CAM network),
`vqa` (cam-eval of a VQA checkpoint) or `features` (cam-features). It starts with `"kind"` and
`"schema"` (SCHEMA); the rest are the fields of the kind's dataclass, named as the JSON keys, in
the order written. Readers dispatch on those two keys (`read_metrics`), never on which other keys
a file has; a file without them is schema 1 (before this module), refused with the command that
rewrites it.

- Rates and errors are percentages (0-100); times are seconds.
- A metric without a value on its input (localize.loc_error.Undefined: a rate over no image,
  PxAP without background pixels) is null, its reason under the top-level `undefined`
  ({"<dotted key>": "<reason>"}, e.g. "localization.pointing_game"); a listed key whose value
  is not null is refused: a number beside a reason would be read as measured.
- An `optional()` field is a key some runs do not write (synthetic data's `family`, a held-out
  threshold's `heldout_acc`): left out when None, None when absent.
- Numbers read back as written (an integer in a float field stays an int): a file read and
  written again is the same file. The dataclass <-> JSON checking is runtime/typed_json.py's.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cam_repro.runtime.errors import InputFileError
from cam_repro.runtime.files import read_json, write_json
from cam_repro.runtime.typed_json import from_json, optional, plain, value_at

SCHEMA = 2  # the version this cam-repro writes; files without "schema" are version 1
KINDS = ("train", "eval", "vqa", "features")
COMMAND = {"train": "cam-train", "eval": "cam-eval", "vqa": "cam-eval", "features": "cam-features"}
# "<path> is <_WRITTEN_BY> metrics.json, not <_WANTED>"
_WRITTEN_BY = {"train": "a cam-train run's", "eval": "a cam-eval run's",
               "vqa": "a VQA model's cam-eval run's",
               "features": "a cam-features run's"}  # fmt: skip
_WANTED = {"train": "cam-train's", "eval": "cam-eval's", "vqa": "a VQA model's cam-eval's",
           "features": "cam-features'"}  # fmt: skip


class OlderSchemaError(InputFileError):
    """A metrics.json written by an older cam-repro (its schema is below SCHEMA): re-run its
    command. A subclass so a reader that can redo the work (cam-reproduce's reuse check) tells
    it from a malformed file."""


@dataclass(kw_only=True)
class WeightsLoad:
    """What a weights file gave the network (models.weights.WeightsLoad.record)."""

    source: str  # the file, or torchvision's enum member
    sha256: str | None  # of the file (None: torchvision's download, named by `source`)
    tensors_loaded: int
    new_layers: list[str]  # layers the file has no tensors for (a CAM head): fresh by design
    classifier_not_loaded: list[str]  # the file's classifier of another number of classes


# -- cam-train -----------------------------------------------------------------------------------


@dataclass(kw_only=True)
class TrainEpoch:
    """One epoch of cam-train (train.trainer: the training stats, then validate's if it ran)."""

    epoch: int  # 1-based
    train_loss: float  # mean cross-entropy over the epoch's images
    train_top1_err: float  # %
    lr: float  # at the epoch's last step
    images_per_s: float  # every process's images
    epoch_time_s: float
    val_loss: float | None = optional()  # absent on epochs without validation (eval_every)
    val_top1_err: float | None = optional()  # %
    val_top5_err: float | None = optional()  # %


@dataclass(kw_only=True)
class Checkpoints:
    """The run folder's checkpoints, relative to it."""

    last: str
    best: str


@dataclass(kw_only=True)
class TrainMetrics:
    """cam-train's metrics.json, rewritten after every epoch."""

    kind: ClassVar[str] = "train"
    status: str  # running | finished | interrupted at ... | diverged: ...
    variant: str  # models.config.variant_name
    paper_name: str  # the paper's name of the network (with its method unless CAM)
    # the WSOL method it was trained with (models/method_config.py); absent before methods: cam
    method: str | None = optional()
    seed: int
    num_classes: int
    num_train: int  # images used (unreadable ones left out, data.bad_images=skip)
    num_val: int
    num_train_skipped: int
    num_val_skipped: int
    world_size: int  # processes
    epochs_done: int
    global_step: int  # optimizer steps
    best: TrainEpoch | None  # the epoch of the lowest val top-1 error (None: no validation yet)
    final: TrainEpoch | None  # the last epoch done (None: none)
    epochs: list[TrainEpoch]
    checkpoints: Checkpoints
    weights_load: WeightsLoad | None  # the weights it started from (None: random init)
    # per process, when finished: equal when DDP kept them in step (optional() is a field())
    rank_weight_digests: list[str] | None = optional()  # noqa: RUF009


# -- cam-eval ------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class EvalData:
    """What cam-eval scored: the split, and the data's kind (data.splits.dataset_kind)."""

    root: str
    split: str
    source: str  # the reader's account of its files (layout, box convention)
    num_classes: int
    image_size: int  # the evaluated frame's side, px
    blacklist: str | None  # the file of images left out of localization
    kind: str  # ilsvrc | cub | folder | svt | vqa | wsol | synthetic
    task: str  # classes | text | vqa
    evidence: str | None  # a synthetic design (parts | uniform | fine); None for real data
    family: int | None = optional()  # synthetic data only
    name: str  # data.name, else the dataset's name
    wsol_dataset: str | None = optional()  # data=wsol only: ILSVRC | CUB | OpenImages
    wsol_split: str | None = optional()  # data=wsol only: the split val reads (test | val)


@dataclass(kw_only=True)
class PosthocProtocol:
    """localizer=torchcam: what its maps depend on (localize.posthoc_methods.PosthocSpec.protocol):
    torch-cam's method, the layer asked for (null: the default), its options' values."""

    method: str  # torch-cam's class name
    layer: str | None
    num_samples: int | None = optional()
    std: float | None = optional()
    gamma: float | None = optional()
    num_references: int | None = optional()
    seed: int | None = optional()  # the methods that draw noise


@dataclass(kw_only=True)
class PosthocCost:
    """localizer=torchcam: what a map costs (the evaluation's own forward pass not counted)."""

    layer: str  # the hooked module
    channels: int  # its maps, K
    forward_passes_per_map: int
    backward_passes_per_map: int


@dataclass(kw_only=True)
class EvalProtocol:
    """How cam-eval scored (its config's keys, and the conventions in words)."""

    localizer: str  # cam | gradcam | backprop | torchcam
    gradcam_layer: str | None  # null: the default layer (localize/gradcam.py)
    torchcam: PosthocProtocol | None = optional()  # noqa: RUF009 (localizer=torchcam only)
    box_rule: str  # paper | release
    threshold: float  # the paper rule's CAM threshold (threshold_from's when given)
    normalize: str
    all_boxes: bool
    ten_crop: bool
    iou_threshold: float
    topk: int
    threshold_from: str | None  # the run folder the thresholds came from
    sweep: bool
    sweep_thresholds: int
    maxboxacc_iou: list[int]  # IoU levels, %
    map_upsampling: str
    eval_frame: int
    wsol_convention: bool
    maxboxacc: str  # MaxBoxAccV2's convention, in words


@dataclass(kw_only=True)
class ThresholdChoice:
    """Where one CAM threshold came from (evaluate.outputs.thresholds_record)."""

    value: float | None  # null: box_rule=release (the release's own thresholds)
    chosen: str  # fixed (the `threshold` key) | oracle (best on the scored split) | heldout
    from_: str | None = field(metadata={"key": "from"})  # heldout: threshold_from's run
    split: str | None  # where it was chosen: split, dataset name, root
    data: str | None
    root: str | None
    metric: str | None  # what it maximised: gt_known_loc_acc | box_acc_<level>
    heldout_acc: float | None = optional()  # heldout: the accuracy (%) there
    oracle_value: float | None = optional()  # MaxBoxAcc heldout: this split's best, beside
    disjoint: bool | None = optional()  # heldout: no image of this run chose it (checked)


@dataclass(kw_only=True)
class Thresholds:
    """The CAM thresholds the run used and their origin."""

    paper_rule: ThresholdChoice
    maxboxacc: dict[str, ThresholdChoice] | None  # per IoU level; None without MaxBoxAcc


@dataclass(kw_only=True)
class EvalMetrics:
    """cam-eval's metrics.json of a CAM network (evaluate.loop)."""

    kind: ClassVar[str] = "eval"
    # the paper's errors (Section 4.1), %: classification over every image, localization over
    # the images with a box of their class, not blacklisted
    cls_top1_err: float | None
    cls_top5_err: float | None
    loc_top1_err: float | None
    loc_top5_err: float | None
    gt_known_loc_err: float | None
    pointing_game: float | None  # % of images whose true class's map peaks in one of its boxes
    maxboxacc_v2: float | None  # % (Choe et al. 2020): the mean of box_acc
    box_acc: dict[str, float | None] | None  # {IoU level: best BoxAcc %}; None: not asked
    best_threshold: dict[str, float] | None  # {IoU level: the threshold of box_acc}
    box_acc_heldout: dict[str, float | None] | None  # at threshold_from's thresholds
    maxboxacc_v2_heldout: float | None
    thresholds: Thresholds
    pxap: float | None  # % (mask metric); None when not computed
    num_images: int
    num_skipped: int  # unreadable images left out (data.bad_images=skip)
    num_loc_images: int  # the images localization is scored on
    num_blacklisted: int
    num_without_boxes: int
    variant: str
    # with "Grad-CAM on " / "Backprop on " / "Score-CAM on " (torch-cam's title) for those
    paper_name: str
    posthoc_cost: PosthocCost | None = optional()  # noqa: RUF009 (localizer=torchcam)
    # the WSOL method the checkpoint was trained with (models/method_config.py); absent: cam
    method: str | None = optional()
    pool: str | None  # gap | gmp; None: the network has no CAM map
    map_size: str | None  # "HxW" of the CAM map
    checkpoint: str | None  # None: a zoo model evaluated as built
    checkpoint_sha256: str | None
    weights_load: WeightsLoad | None  # which file gave the network its tensors
    seed: int | None  # the checkpoint's training seed
    data: EvalData
    protocol: EvalProtocol
    world_size: int
    seconds: float
    undefined: dict[str, str]  # {dotted key of a null metric: why it has no value}


# -- cam-eval of a VQA checkpoint ----------------------------------------------------------------


@dataclass(kw_only=True)
class VQAData:
    """What the VQA evaluation scored: the split, and the data's kind (dataset_kind)."""

    root: str
    split: str
    source: str
    image_size: int
    kind: str
    task: str
    evidence: str | None
    family: int | None = optional()
    name: str
    wsol_dataset: str | None = optional()
    wsol_split: str | None = optional()


@dataclass(kw_only=True)
class VQAProtocol:
    """How the VQA evaluation scored (keys, and the maps and baselines in words)."""

    maps: str
    box_rule: str
    threshold: float
    normalize: str
    iou_threshold: float
    pointing_game: str
    baselines: str


@dataclass(kw_only=True)
class VQATypeScores:
    """The scores over one question type (evaluate.vqa: its question kinds)."""

    questions: int
    answer_accuracy: float | None  # %
    pointing_game: dict[str, float | None]  # {map or baseline: %}
    iou_rate: dict[str, float | None]  # {map or baseline: % with IoU >= iou_threshold}


@dataclass(kw_only=True)
class VQAMetrics:
    """cam-eval's metrics.json of a VQA model (evaluate.vqa)."""

    kind: ClassVar[str] = "vqa"
    answer_accuracy: float | None  # % whose top answer is the annotators' most common one
    vqa_accuracy: float  # % by VQA's min(#humans / 3, 1) measure
    answer_accuracy_all: float  # the same two over every question of the split, the
    vqa_accuracy_all: float  # unanswerable ones scored 0
    pointing_game: dict[str, float | None]  # {predicted | true_answer | other_question |
    iou_rate: dict[str, float | None]  # centre: %} over the questions with a target box
    num_other_question_pairs: int  # the other_question baseline's pairs
    by_type: dict[str, VQATypeScores]
    num_questions: int
    num_unanswerable: int  # left out: their answer is not among the model's
    num_images: int
    num_with_target: int
    num_skipped: int
    num_answers: int
    num_question_words: int
    variant: str
    paper_name: str
    pool: str
    checkpoint: str
    checkpoint_sha256: str
    seed: int | None
    data: VQAData
    protocol: VQAProtocol
    world_size: int
    seconds: float
    undefined: dict[str, str]


# -- cam-features --------------------------------------------------------------------------------


@dataclass(kw_only=True)
class FeaturesData:
    """The data cam-features fitted and scored on (dataset_kind's keys, each always written)."""

    root: str
    name: str | None
    kind: str | None
    task: str | None
    evidence: str | None
    family: int | None
    train_split: str
    test_split: str
    image_size: int


@dataclass(kw_only=True)
class FeaturesLocalization:
    """Localization from the linear classifier's weights (features.run: its CAMs), %."""

    gt_known_loc_acc: float | None
    top1_loc_acc: float | None
    pointing_game: float | None
    num_images: int  # test images with a box of their class
    iou_threshold: float
    threshold: float  # the paper rule's CAM threshold


@dataclass(kw_only=True)
class CacheRecord:
    """One feature cache the run used (features.cache.CacheUse.record)."""

    path: str
    split: str
    part: str
    status: str  # reused | made
    reason: str | None  # made: why (absent | <fields> changed | unreadable (...))


@dataclass(kw_only=True)
class FeaturesMetrics:
    """cam-features' metrics.json (features.run)."""

    kind: ClassVar[str] = "features"
    accuracy: float | None  # % of the test split classified right
    mean_class_accuracy: float | None  # the mean of per-class accuracies (every class read)
    num_train: int
    num_test: int
    num_classes: int
    num_skipped: int
    features: str  # gap | gmp | fc7 | avgpool
    crop: str  # full | cam | gt | full+cam
    classifier: str  # svm | logistic
    C: float
    solver: str
    l2_normalize: bool
    feature_dim: int
    variant: str
    paper_name: str
    weights: str  # checkpoint | file | pretrained | random
    checkpoint: str | None
    seed: int | None
    trained_on: str | None  # the checkpoint's training data's name
    data: FeaturesData
    crop_box_iou50: float | None  # % of crop boxes with IoU >= iou_threshold; None: crop=full
    threshold: float
    localization: FeaturesLocalization | None  # None: fc7 features have no maps
    weights_sha256: str | None
    weights_load: WeightsLoad | None
    caches: list[CacheRecord]
    undefined: dict[str, str]
    fit_seconds: float  # fitting the linear classifier
    seconds: float  # the whole run


Record = TrainMetrics | EvalMetrics | VQAMetrics | FeaturesMetrics
_CLASSES: dict[str, type[Any]] = {c.kind: c for c in typing.get_args(Record)}


# -- writing -------------------------------------------------------------------------------------


def as_json(record: Record) -> dict[str, Any]:
    """metrics.json's content: kind and schema first, then the record's fields."""
    return {"kind": record.kind, "schema": SCHEMA, **plain(record)}


def metrics_record(kind: str, content: dict[str, Any]) -> Record:
    """The record of `kind` with a writer's `content` (metrics.json's keys, without kind and
    schema), checked as `read_metrics` checks a file: a writer's mistake is a ValueError."""
    try:
        return _checked(_CLASSES[kind], content)
    except InputFileError as err:
        raise ValueError(f"metrics_record: {kind}: {err}") from None


def write_metrics(path: Path, record: Record) -> None:
    """`record` into `path` (indented JSON, atomically: runtime.files.write_json), checked as
    `read_metrics` checks it: a writer's mistake is a ValueError, never a file no reader takes."""
    content = as_json(record)
    try:
        _checked(type(record), content)
    except InputFileError as err:
        raise ValueError(f"write_metrics: {path}: {err}") from None
    write_json(path, content)


def save_metrics(path: Path, kind: str, content: dict[str, Any]) -> dict[str, Any]:
    """A writer's `content` as its `kind`'s record (`metrics_record`) into `path`; returns the
    content written (kind and schema first), for the caller's log lines and return value."""
    record = metrics_record(kind, content)
    write_metrics(path, record)
    return as_json(record)


# -- reading -------------------------------------------------------------------------------------


def _checked(cls: type, data: dict[str, Any]) -> Any:
    """The record of class `cls` in metrics.json's `data`; each `undefined` key's metric null
    (a number beside a reason would be read as measured)."""
    body = {k: v for k, v in data.items() if k not in ("kind", "schema")}
    record = from_json(cls, body, unknown=f"no such key in schema {SCHEMA}")
    for key in getattr(record, "undefined", {}):
        value = value_at(record, key)
        if value is not None:
            raise InputFileError(f"{key} is {value!r} but listed as undefined")
    thresholds = getattr(record, "thresholds", None)
    if thresholds is not None:
        _check_held_out(thresholds)
    return record


def _check_held_out(thresholds: Thresholds) -> None:
    """A threshold is called held out only if cam-eval checked that none of this run's images
    chose it (`disjoint: true`, evaluate.config.check_held_out): the label is checked, not
    assumed."""
    entries = {"thresholds.paper_rule": thresholds.paper_rule}
    for level, entry in (thresholds.maxboxacc or {}).items():
        entries[f"thresholds.maxboxacc.{level}"] = entry
    for key, entry in entries.items():
        if entry.chosen == "heldout" and entry.disjoint is not True:
            raise InputFileError(
                f"{key} is chosen 'heldout' without disjoint: true (its images were not checked "
                "to be held out)"
            )


def _header(path: Path, data: Any, wanted: tuple[str, ...]) -> str:
    """The file's kind, once its `schema` and `kind` say it is a record this module reads."""
    if not isinstance(data, dict):
        raise InputFileError(f"{path}: not a metrics.json (a JSON object expected)")
    kind, schema = data.get("kind"), data.get("schema", 1)
    if schema != SCHEMA:
        if isinstance(schema, int) and not isinstance(schema, bool) and schema < SCHEMA:
            known = [kind] if kind in KINDS else wanted
            redo = (
                " or ".join(dict.fromkeys(COMMAND[k] for k in known)) or "the command that wrote it"
            )
            raise OlderSchemaError(
                f"{path}: written by an older cam-repro (schema {schema}); re-run {redo}"
            )
        raise InputFileError(f"{path}: schema {schema!r}; this cam-repro reads schema {SCHEMA}")
    if kind not in KINDS:
        what = "no kind" if kind is None else f"kind {kind!r}"
        raise InputFileError(f"{path}: {what}; a metrics.json's is one of {', '.join(KINDS)}")
    if wanted and kind not in wanted:
        raise InputFileError(
            f"{path} is {_WRITTEN_BY[kind]} metrics.json, not "
            + " or ".join(_WANTED[k] for k in wanted)
        )
    return kind


def read_metrics(path: Path, kind: str | tuple[str, ...] | None = None) -> Record:
    """The record in metrics.json `path`, of `kind` (one, a tuple of them, or any: None).

    One-line InputFileErrors naming the file: not JSON or not an object, no or an unknown kind,
    another schema (an older file: the command that rewrites it), a kind the caller does not
    read, a missing key or one the schema does not have, a value of the wrong type, a metric
    listed as undefined that is not null."""
    wanted = (kind,) if isinstance(kind, str) else tuple(kind or ())
    if any(k not in KINDS for k in wanted):
        raise ValueError(f"read_metrics: kind {kind!r} is not one of {', '.join(KINDS)}")
    data = read_json(path)
    cls = _CLASSES[_header(path, data, wanted)]
    try:
        return _checked(cls, data)
    except InputFileError as err:
        raise InputFileError(f"{path}: {err}") from None
