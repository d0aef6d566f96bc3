"""pyproject.toml stays in step with the tree: every package folder is installed, and a built
wheel (not an editable install) runs the commands from any folder, configs included."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path, PurePath

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    dirs = {v: k for k, v in config.get("package-dir", {}).items()}
    found = set()
    for init in ROOT.glob("**/__init__.py"):
        rel = init.parent.relative_to(ROOT)
        if rel.parts[0] in ("tests", ".venv", "build") or rel.parts[0].startswith("."):
            continue
        top = dirs.get(rel.parts[0], rel.parts[0])
        found.add(".".join((top, *rel.parts[1:])))
    # folders mapped into a package without Python files: the configs
    found |= {name for name, folder in config["package-dir"].items() if (ROOT / folder).is_dir()}
    assert found == listed


def test_every_config_file_is_package_data() -> None:
    """Each yaml under configs/ (hydra/launcher/ included) matches a package-data glob, whose `*`
    does not cross a folder, as setuptools reads it."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["cam_repro.configs"]
    configs = ROOT / "configs"
    unmatched = [
        str(rel)
        for rel in (p.relative_to(configs) for p in configs.rglob("*.yaml"))
        if not any(rel.match(g) and len(rel.parts) == len(PurePath(g).parts) for g in globs)
    ]
    assert unmatched == []
    assert (configs / "hydra" / "launcher" / "slurm.yaml").is_file()


def test_the_records_files_are_package_data() -> None:
    """What cam-reproduce's record check reads (cam_repro/reproduce/record.py) is installed with
    the package as cam_repro.record: the committed rows and command.txt's settings line."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folder = ROOT / config["package-dir"]["cam_repro.record"]
    assert sorted(config["package-data"]["cam_repro.record"]) == ["command.txt", "summary.csv"]
    assert all((folder / name).is_file() for name in config["package-data"]["cam_repro.record"])


def test_console_scripts_point_at_cli_modules() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "cam-models" in scripts
    for target in scripts.values():
        module = target.split(":")[0]
        assert module.startswith("cam_repro_cli.")
        assert (ROOT / "cli" / f"{module.split('.')[-1]}.py").is_file()


@pytest.mark.slow
def test_a_built_wheel_runs_its_commands_from_any_folder(tmp_path: Path) -> None:
    wheels, target, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], check=True,
                   capture_output=True)  # fmt: skip
    (wheel,) = wheels.glob("cam_repro-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)  # fmt: skip
    # The installed copy, not this checkout's editable one, and no repository beside it.
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import cam_repro.apps as a; print(a.__file__, a.CONFIG_DIR)"],
        cwd=elsewhere, env=env, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert all(Path(p).is_relative_to(target) for p in where), where
    assert (Path(where[1]) / "model" / "tiny_gap.yaml").is_file()
    for launcher in ("slurm", "local"):  # two folders deep: package-data's */*/*.yaml
        assert (Path(where[1]) / "hydra" / "launcher" / f"{launcher}.yaml").is_file()
    # cam-reproduce's record=auto: the packaged record, not the repository's
    record = subprocess.run(
        [sys.executable, "-c",
         "from cam_repro.reproduce.record import packaged_record; print(packaged_record())"],
        cwd=elsewhere, env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    assert Path(record).is_relative_to(target) and Path(record).is_file(), record
    assert (Path(record).parent / "command.txt").is_file()
    for command in ("cam-models", "cam-report", "cam-synth"):
        result = subprocess.run(
            [str(target / "bin" / command), "--help"],
            cwd=elsewhere, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert f"{command}:" in result.stdout
    result = subprocess.run(
        [str(target / "bin" / "cam-models"), "model=tiny_gap", "num_classes=10", "input_size=64"],
        cwd=elsewhere, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Tiny-GAP" in result.stdout and "16x16" in result.stdout
    assert list(elsewhere.iterdir()) == []  # cam-models writes nothing
