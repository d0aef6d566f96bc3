"""cam-reproduce's synthetic sets: each written by cam-synth's generator, unless the same one (same
settings, same generator format) is already there."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from cam_repro.data.synth_config import synth_config
from cam_repro.data.synth_writer import FORMAT_VERSION, dataset_settings, generate

log = logging.getLogger(__name__)


def write_data(design: str, root: Path, settings: dict[str, Any], reuse: bool) -> Path:
    """The dataset `design` at `root`, with cam-synth's `settings` (`plan.data_settings`); kept
    if `reuse` and the folder holds the same one, written otherwise."""
    synth = synth_config({"out": str(root), "overwrite": True, **settings})
    info = root / "synth.json"
    why = "absent" if reuse else "reuse=false"
    if reuse and info.is_file():
        written = json.loads(info.read_text())
        same = json.loads(json.dumps(dataset_settings(synth))) == written.get("config", {})
        # the generator's format too: the same settings draw other images after it changed
        if same and written.get("format_version") == FORMAT_VERSION:
            log.info("data %s: reusing %s (written with the same settings and generator)",
                     design, root)  # fmt: skip
            return root
        why = "other settings" if not same else "written by another version of the generator"
    summary = generate(synth)
    log.info("data %s: %s (%.1f s; made: %s)", design, root, summary.seconds, why)
    return root
