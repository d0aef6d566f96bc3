"""What the commands and cam-reproduce share: the config folder (installed inside the package),
each app's typed schema, and composing an app's config exactly as its command line would.

Each command registers only its own schema (`register(app)`), so `cam-models --help` loads the
model code and not the training, evaluation or figure code.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from cam_repro.models.config import ANY_ARCHS
from cam_repro.runtime.errors import CamReproError

CONFIG_PACKAGE = "cam_repro.configs"  # the repository's configs/, mapped by pyproject.toml


def _config_dir() -> str:
    """The installed config folder: cam_repro/configs in site-packages (a wheel, `pip install .`)
    or, in an editable install (whose finder maps top-level packages only), the repository's
    configs/ beside this package."""
    try:
        spec = importlib.util.find_spec(CONFIG_PACKAGE)
    except ModuleNotFoundError:
        spec = None
    candidates = list(spec.submodule_search_locations or []) if spec else []
    candidates.append(str(Path(__file__).resolve().parent.parent / "configs"))
    for location in candidates:
        if Path(location, "model").is_dir():
            return str(Path(location).resolve())
    raise CamReproError(
        f"cam-repro's config folder ({CONFIG_PACKAGE}) is not installed: reinstall the package "
        "(pip install . or pip install -e .)"
    )


CONFIG_DIR = _config_dir()


# app -> (its config in configs/, its schema as "module:class"), imported only when registered
APPS: dict[str, tuple[str, str]] = {
    "models": ("models", "cam_repro.models.config:ModelsAppConfig"),
    "data": ("data_check", "cam_repro.data.config:DataAppConfig"),
    "synth": ("synth", "cam_repro.data.synth_config:SynthConfig"),
    "train": ("train", "cam_repro.train.config:TrainConfig"),
    "eval": ("eval", "cam_repro.evaluate.config:EvalConfig"),
    "features": ("features", "cam_repro.features.config:FeaturesConfig"),
    "report": ("report", "cam_repro.present.report:ReportConfig"),
    "visualize": ("visualize", "cam_repro.visualize_config:VisualizeConfig"),
    "reproduce": ("reproduce", "cam_repro.reproduce.config:ReproduceConfig"),
}


def run_stamp() -> str:
    """A run folder's name: the launch time and a random tag (two runs started in the same second
    get different folders), or torchrun's run id, shared by all its processes.

    Each torchrun process composes the config itself, a moment apart; the time could differ
    between them, the run id (`--rdzv-id`, random with `--standalone`) does not.
    """
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "none")
    if "RANK" in os.environ and run_id != "none":
        return f"torchrun-{run_id}"
    return f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{secrets.token_hex(3)}"


# A sweep job's folder name: what a shell or Hydra's override grammar reads specially (= , [ ] { }
# ( ) quotes, spaces, / : $ * ? | ...) is left out, so that a path into the folder can be passed
# back to a command unquoted: checkpoint=outputs/multirun/STAMP/0_model-tiny_gap_seed-0/...
_DROPPED = re.compile(r"[][(){}'\"+~]")  # brackets, quotes, Hydra's +key and ~key
_REPLACED = re.compile(r"-?[^A-Za-z0-9._-]+")  # any other run of them (and the - before it): -
JOB_FOLDER_MAX = 200  # characters: file systems allow 255 bytes a name


def job_folder(num: int | str, overrides: str = "") -> str:
    """A sweep job's folder: its number, then its overrides as Hydra writes them into
    `hydra.job.override_dirname` (configs/*.yaml: `key-value` items joined by `_`) in the
    characters [A-Za-z0-9._-] only; cut at JOB_FOLDER_MAX characters (the number keeps the
    names apart). (0, `+experiment-x_seed-0`) -> `0_experiment-x_seed-0`;
    `images-[a.jpg,b.jpg]` -> `images-a.jpg-b.jpg`; `out-/r/x` -> `out-r-x`."""
    body = _REPLACED.sub("-", _DROPPED.sub("", str(overrides)))
    return f"{num}_{body}"[:JOB_FOLDER_MAX] if body else str(num)


def schema_of(app: str) -> type:
    """`app`'s schema class (APPS), imported now."""
    module, name = APPS[app][1].split(":")
    return getattr(importlib.import_module(module), name)


def register(app: str) -> str:
    """Put `app`'s schema in Hydra's ConfigStore as `<app>_schema` (its config's defaults list
    names it) and the `${run_stamp:}` and `${job_folder:}` resolvers; returns the app's config
    name."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=f"{app}_schema", node=schema_of(app))
    # cached, as Hydra's ${now:}: every read of hydra.run.dir (and a sweep's jobs) sees one stamp
    OmegaConf.register_new_resolver("run_stamp", run_stamp, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("job_folder", job_folder, replace=True)
    return APPS[app][0]


def compose(app: str, overrides: list[str]) -> Any:
    """`app`'s config as its command line would compose it (no run folder is made)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    config_name = register(app)
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        return hydra_compose(config_name, overrides)


def variants() -> list[str]:
    """The model zoo's variants: the files of configs/model/ (but the presets of any
    classifier, model=torchvision|module|file, which need a name)."""
    files = Path(CONFIG_DIR, "model").glob("*.yaml")
    return sorted(p.stem for p in files if p.stem not in ANY_ARCHS)
