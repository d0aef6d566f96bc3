"""Typed schemas of the Hydra apps, so a mistyped key or a wrong type fails at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

from cam_repro.data.config import DataConfig
from cam_repro.data.synthetic import SynthConfig
from cam_repro.engine.config import TrainConfig
from cam_repro.eval_config import EvalConfig
from cam_repro.figures import VisualizeConfig
from cam_repro.models.config import ModelConfig
from cam_repro.reproduce import ReproduceConfig


@dataclass
class ModelsAppConfig:
    """`cam-models`: build networks from their configs and report their shapes."""

    model: ModelConfig = field(default_factory=ModelConfig)
    input_size: int = 224  # side of the square input whose last conv map is reported
    num_classes: int = 1000


@dataclass
class DataAppConfig:
    """`cam-data`: read a dataset's splits, check every annotation, and report what is there."""

    data: DataConfig = field(default_factory=DataConfig)
    splits: list[str] = field(default_factory=lambda: ["train", "val"])


@dataclass
class ReportConfig:
    """`cam-report`: collect cam-eval runs into tables laid out like the paper's Tables 1 and 2."""

    runs: list[str] = field(default_factory=list)  # eval run folders, metrics.json files, sweeps
    out: str | None = None  # null: the run dir
    paper: str = "auto"  # the paper's numbers beside ours: auto (ILSVRC only) | true | false


def register_schemas() -> None:
    """Put the app schemas in Hydra's ConfigStore (the configs' defaults lists name them)."""
    cs = ConfigStore.instance()
    cs.store(name="models_schema", node=ModelsAppConfig)
    cs.store(name="data_schema", node=DataAppConfig)
    cs.store(name="synth_schema", node=SynthConfig)
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="eval_schema", node=EvalConfig)
    cs.store(name="report_schema", node=ReportConfig)
    cs.store(name="visualize_schema", node=VisualizeConfig)
    cs.store(name="reproduce_schema", node=ReproduceConfig)
