#!/usr/bin/env bash
# Regenerate results/synthetic/ (committed; never edit it by hand). From the repository root,
# after `python3 -m venv .venv && .venv/bin/pip install -e .`:
#
#     scripts/reproduce_results.sh                    # the three studies
#     METHODS=0 POSTHOC=0 scripts/reproduce_results.sh # the main study only
#     MAIN=0 POSTHOC=0 scripts/reproduce_results.sh   # the WSOL methods stage only
#     MAIN=0 METHODS=0 scripts/reproduce_results.sh   # the post-hoc maps stage only
#
# The main study, into results/synthetic/: GAP vs GMP on the parts design and on the uniform
# design, 5 seeds each, and the mapping-resolution ablation (16x16 vs 8x8 last map, GAP and GMP,
# 3 seeds) on the parts design; every model at half the Tiny widths (width_mult=0.5,
# cam-reproduce's default): 26 trainings with the measured recipe, each evaluated with cam-eval;
# then the paper's Section 4 (features=true: GAP/GMP features transferred to new classes, with a
# random-weights floor and a ceiling trained on them, 6 more trainings; fine-grained crops; 42
# cam-features runs; 3 seeds); then Section 4.2 (discovery=true: the text detector, a linear SVM
# on the GAP features and Tiny-GAP trained on text / no text, and the VQA model, 6 more trainings
# and 3 cam-features runs, into results/synthetic/discovery/); then the figures and the tables
# (cam-visualize, cam-report). 864 s from scratch on a 2-core CPU (2026-12-01; command.txt has
# each stage's seconds).
#
# The WSOL methods stage, into results/synthetic/methods/ (docs/methods.md): Tiny-GAP on the
# parts design trained with HaS, ACoL, SPG, ADL and CutMix beside CAM, 5 seeds each (25 more
# trainings; CAM's 5 are the main study's, reused), every last checkpoint also evaluated at the
# thresholds chosen on a held-out set (other images of the same classes, data seed 1):
# table_methods.md. Its own command.txt has its seconds.
#
# The post-hoc maps stage, into results/synthetic/posthoc/ (docs/posthoc.md): Tiny-GAP and Tiny-GMP
# on the parts design, 5 seeds (the main study's trainings, reused), localized by our CAM and by
# every torch-cam method (Score-CAM, SS-CAM, ...), each with thresholds chosen on a held-out set
# of 100 images (data seed 3) and scored on another 100 (data seed 2): table_posthoc.md. Its own
# command.txt has its seconds.
#
# The runs themselves (datasets, checkpoints, eval folders) go to outputs/results-synthetic/,
# which is not committed; re-running reuses finished runs there (reuse=false starts over).
# Arguments are passed to every cam-reproduce command (e.g. runtime.amp=none on a CPU without
# native bf16).
set -euo pipefail
cd "$(dirname "$0")/.."
CAM_REPRODUCE="${CAM_REPRODUCE:-.venv/bin/cam-reproduce}"
if [[ "${MAIN:-1}" != 0 ]]; then
    "$CAM_REPRODUCE" designs=[parts,uniform] seeds=[0,1,2,3,4] study_seeds=[0,1,2] \
        ablation=[tiny_gap_8x8,tiny_gmp_8x8] features=true discovery=true \
        out=results/synthetic work=outputs/results-synthetic \
        "$@"
fi
if [[ "${METHODS:-1}" != 0 ]]; then
    "$CAM_REPRODUCE" designs=[parts] models=[tiny_gap] seeds=[0,1,2,3,4] \
        methods=[cam,has,acol,spg,adl,cutmix] \
        out=results/synthetic/methods work=outputs/results-synthetic \
        "$@"
fi
if [[ "${POSTHOC:-1}" != 0 ]]; then
    "$CAM_REPRODUCE" designs=[parts] models=[tiny_gap,tiny_gmp] seeds=[0,1,2,3,4] \
        posthoc=[CAM,GradCAM,GradCAMpp,SmoothGradCAMpp,ScoreCAM,SSCAM,ISCAM,XGradCAM,LayerCAM,FinerCAM] \
        out=results/synthetic/posthoc work=outputs/results-synthetic \
        "$@"
fi
