"""Time `cam-synth` on the default dataset (target: under 20 s on a 2-core CPU).

    .venv/bin/python scripts/bench_synth.py [key=value ...]   # e.g. workers=1 evidence=uniform

Writes into a temporary folder (deleted afterwards) and prints the time per run and images/s.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

from cam_repro.data.synth_config import SynthConfig, synth_config
from cam_repro.data.synth_writer import generate

TARGET_SECONDS = 20.0


def main(overrides: list[str]) -> int:
    cfg = OmegaConf.merge(OmegaConf.structured(SynthConfig), OmegaConf.from_dotlist(overrides))
    spec = synth_config(cfg)
    spec.overwrite = True
    with tempfile.TemporaryDirectory() as tmp:
        spec.out = str(Path(tmp) / "synthetic")
        times = [generate(spec).seconds for _ in range(3)]
    images = spec.num_classes * (spec.train_per_class + spec.val_per_class)
    best = min(times)
    print(
        f"cam-synth, {images} images of {spec.image_size} px, evidence={spec.evidence}, "
        f"workers={spec.workers or 'all cores'}"
    )
    print(
        f"runs: {', '.join(f'{t:.2f} s' for t in times)}; best {best:.2f} s = "
        f"{images / best:.0f} images/s; target < {TARGET_SECONDS:.0f} s: "
        f"{'met' if best < TARGET_SECONDS else 'MISSED'}"
    )
    return 0 if best < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
