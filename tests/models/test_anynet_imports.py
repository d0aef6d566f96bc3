"""model=module: a package that cannot be imported is one line saying how to make it importable
(installed, or on PYTHONPATH); a missing class names the close matches (models/anynet.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch
from helpers import BIN

from cam_repro.localize.layer_net import LayerCAMNet
from cam_repro.models import build_model
from cam_repro.runtime.errors import ConfigError

NET = """
from torch import nn


class MyNet(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))
"""


def _package(folder: Path, name: str, source: str = NET) -> None:
    (folder / name).mkdir()
    (folder / name / "__init__.py").write_text(source)


def test_a_package_off_the_path_is_refused_naming_pythonpath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _package(tmp_path, "campkg_mine")
    spec = {"arch": "module", "_target_": "campkg_mine.MyNet"}
    with pytest.raises(ConfigError) as err:
        build_model(spec, 3)
    message = str(err.value)
    assert message.startswith("model._target_=campkg_mine.MyNet: cannot import it: no module")
    assert "'campkg_mine'" in message and "PYTHONPATH=. cam-train" in message
    assert "installed" in message and "\n" not in message
    monkeypatch.syspath_prepend(str(tmp_path))  # what PYTHONPATH=. does in that folder
    net = build_model(spec, 3)
    assert isinstance(net, LayerCAMNet)
    assert net(torch.zeros(2, 3, 16, 16)).shape == (2, 3)


def test_a_missing_class_names_the_close_one() -> None:
    with pytest.raises(ConfigError, match=r"any_nets has no SmalNet \(did you mean any_nets\."
                       r"SmallNet\?\)$"):  # fmt: skip
        build_model({"arch": "module", "_target_": "any_nets.SmalNet"}, 3)


def test_a_missing_dependency_of_the_users_module_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _package(tmp_path, "campkg_needs", "import campkg_no_such_dependency\n" + NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError) as err:
        build_model({"arch": "module", "_target_": "campkg_needs.MyNet"}, 3)
    assert "No module named 'campkg_no_such_dependency': install it" in str(err.value)


@pytest.mark.slow
def test_cam_models_says_pythonpath_then_builds_with_it(tmp_path: Path) -> None:
    """The console script does not import from its working folder: one line, exit 1; with
    PYTHONPATH=. the same command builds the network."""
    _package(tmp_path, "campkg_cli")
    command = [str(BIN / "cam-models"), "model=module", "model._target_=campkg_cli.MyNet"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "error: model._target_=campkg_cli.MyNet: cannot import it" in result.stderr
    assert "PYTHONPATH=. cam-train" in result.stderr
    result = subprocess.run(
        command, cwd=tmp_path, env={**env, "PYTHONPATH": "."}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    # conv 3 -> 8 (3x3): 224 parameters; linear 8 -> 1000 (cam-models' num_classes): 9,000
    assert "| MyNet | MyNet | 9,224 | 8 x 224x224 | yes |" in result.stdout
