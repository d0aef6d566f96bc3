"""cam-reproduce's figures stage: what cam-visualize draws of the benchmark's runs (per design, the
ablation's sweeps, the Section 4 and 4.2 figures), into OUT/figures and OUT/discovery/figures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cam_repro.reproduce.config import ReproduceConfig
from cam_repro.reproduce.plan import DISCOVERY_DATA, FeatureJob, Job, study_seeds
from cam_repro.visualize import visualize_run


def draw_figures(spec: ReproduceConfig, work: Path, out: Path, jobs: list[Job]) -> None:
    """Every figure of the run: the designs', the ablation's, and with `discovery` or `features`
    theirs."""
    for design in spec.designs:
        _design_figures(spec, work, out / "figures" / design, design, jobs)
    if spec.ablation:  # every model of the first design, the ablation's included
        sweeps = [str(j.eval_dir(work)) for j in jobs if j.design == spec.designs[0]]
        visualize_run({"sweeps": sweeps}, out / "figures" / "ablation")
    # the Section 4 and 4.2 figures: the first model's, first study seed's
    model, first = spec.models[0], study_seeds(spec)[0]
    runtime = {"device": spec.runtime.device, "threads": os.cpu_count()}
    if spec.discovery:
        _discovery_figures(work, out / "discovery" / "figures", model, first,
                           spec.figure_images, runtime)  # fmt: skip
    if spec.features:  # CAMs from the SVM's weights: the first model's transferred features
        for dataset, crop in (("transfer", "full"), ("fine", "cam")):
            job = FeatureJob(dataset, model, first, "trained", crop)
            visualize_run(
                {"features_run": str(job.run_dir(work)), "num_images": spec.figure_images,
                 "runtime": runtime},
                out / "figures" / "features" / dataset,
            )  # fmt: skip


def _design_figures(
    spec: ReproduceConfig, work: Path, folder: Path, design: str, jobs: list[Job]
) -> None:
    """A design's figures: the models side by side on the same images (first seed), the
    per-image figures and class units of the first model, the threshold sweeps of every run."""
    seed = spec.seeds[0]
    models = list(spec.models) + (spec.ablation if design == spec.designs[0] else [])
    planned = {j.tag for j in jobs}
    checkpoints = [str(Job(design, m, seed).checkpoint(work)) for m in dict.fromkeys(models)
                   if Job(design, m, seed).tag in planned]  # fmt: skip
    main = [j for j in jobs if j.design == design and j.model in spec.models]
    sweeps = [str(j.eval_dir(work)) for j in main]
    visualize_run(
        {
            "checkpoint": checkpoints[0], "compare": checkpoints[1:], "sweeps": sweeps,
            "num_images": spec.figure_images, "per_image": True, "units": 4,
            "runtime": {"device": spec.runtime.device, "threads": os.cpu_count(),
                        "channels_last": spec.runtime.channels_last},
        },
        folder,
    )  # fmt: skip


def _discovery_figures(
    work: Path, figures: Path, model: str, seed: int, num_images: int, runtime: dict[str, Any]
) -> None:
    """Section 4.2's figures: the text SVM's CAMs and those of the networks trained on text and
    on VQA (answer CAMs)."""
    text = FeatureJob("text", model, seed, "trained", "full")
    visualize_run(
        {"features_run": str(text.run_dir(work)), "num_images": num_images, "runtime": runtime},
        figures / "text-svm",
    )
    for design in DISCOVERY_DATA:
        visualize_run({"checkpoint": str(Job(design, model, seed).checkpoint(work)),
                       "num_images": num_images, "runtime": runtime},
                      figures / f"{design}-trained")  # fmt: skip
