"""to_schema and check_keys: a key that the schema does not have (Hydra's `+key=value` adds any)
is refused in one line naming the full key and the close matches; free-form fields (dict, Any)
keep their keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from omegaconf import OmegaConf

from cam_repro.apps import APPS, compose
from cam_repro.runtime.config import check_keys, to_schema, unknown_key
from cam_repro.runtime.errors import ConfigError
from cam_repro.train.config import train_config


@dataclass
class Inner:
    epochs: int = 1
    eval_every: int = 1


@dataclass
class Outer:
    trainer: Inner = field(default_factory=Inner)
    maybe: Inner | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    anything: Any = None
    names: list[str] = field(default_factory=list)
    seed: int = 0


def test_unknown_keys_are_found_at_any_depth_with_close_matches() -> None:
    assert unknown_key(Outer, {"trainer": {"epoch": 2}}) == ("trainer.epoch", ["trainer.epochs"])
    assert unknown_key(Outer, {"maybe": {"eval_ever": 2}}) == (
        "maybe.eval_ever",
        ["maybe.eval_every"],
    )
    assert unknown_key(Outer, {"sed": 1}) == ("sed", ["seed"])
    assert unknown_key(Outer, {"zzz": 1}) == ("zzz", [])
    assert unknown_key(Inner, {"epoch": 1}, "trainer.") == ("trainer.epoch", ["trainer.epochs"])


def test_free_form_fields_and_known_keys_pass() -> None:
    cfg = {
        "trainer": {"epochs": 3},
        "maybe": None,
        "kwargs": {"depth": 18, "any": {"nested": 1}},
        "anything": {"x": 1},
        "names": ["a"],
    }
    assert unknown_key(Outer, cfg) is None
    assert unknown_key(Outer, OmegaConf.create({"trainer": "${oc.env:NOT_SET_ANYWHERE}"})) is None


def test_to_schema_refuses_an_unknown_key_in_one_line() -> None:
    with pytest.raises(ConfigError) as err:
        to_schema(Outer, OmegaConf.create({"trainer": {"epoch": 2}}))
    assert str(err.value) == "trainer.epoch is not a key of the outer config (did you mean " + (
        "trainer.epochs?)"
    )
    with pytest.raises(ConfigError, match=r"^trainer\.sed is not a key of the trainer config$"):
        to_schema(Inner, {"sed": 1}, "trainer")
    assert to_schema(Outer, {"kwargs": {"free": 1}}).kwargs == {"free": 1}


def test_plus_key_on_the_composed_train_config_is_refused() -> None:
    """Hydra composes `+trainer.epoch=2` without a word; the validator refuses it."""
    cfg = compose("train", ["+trainer.epoch=2"])
    assert cfg.trainer.epoch == 2  # Hydra took it
    with pytest.raises(ConfigError) as err:
        train_config(cfg)
    assert str(err.value) == (
        "trainer.epoch is not a key of the train config (did you mean trainer.epochs?)"
    )


@pytest.mark.parametrize("app", list(APPS))
def test_every_apps_config_has_only_its_schemas_keys(app: str) -> None:
    """Each command's composed defaults pass the check that refuses extra keys, and an extra
    key in it is found (the check every command runs first: cli/__init__.py)."""
    cfg = compose(app, [])
    schema = OmegaConf.get_type(cfg)
    check_keys(schema, cfg, f"cam-{app}'s config")
    expected = (
        f"runtime.devic is not a key of cam-{app}'s config (did you mean runtime.device?)"
        if "runtime" in cfg
        else f"runtime is not a key of cam-{app}'s config"
    )
    with pytest.raises(ConfigError) as err:
        check_keys(schema, compose(app, ["+runtime.devic=cpu"]), f"cam-{app}'s config")
    assert str(err.value) == expected


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["+model.kwargs.depth=18", "model=module", "model._target_=x.Net"], None),
        (["model=tiny_gap", "+model.pol=gap"], "model.pol"),
        (["+data.rot=x"], "data.rot"),
    ],
)
def test_train_config_keys_of_groups(overrides: list[str], key: str | None) -> None:
    cfg = compose("train", overrides)
    found = unknown_key(OmegaConf.get_type(cfg), cfg)
    assert (found[0] if found else None) == key
