"""Thin Hydra entry points: compose the config, call one cam_repro function."""

from pathlib import Path

from cam_repro.schema import register_schemas

# configs/ sits beside cli/ in the repository (installed with `pip install -e .`).
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "configs")
if not Path(CONFIG_DIR, "model").is_dir():
    raise SystemExit(
        f"cam-repro: its config folder {CONFIG_DIR} is missing; install the repository with "
        "`pip install -e .` so the commands find configs/"
    )

register_schemas()
