"""`cam-reproduce`: the embedded reproduction end to end, from nothing to tables and figures.

For every evidence design: write the synthetic set (cam-synth), train every model for every seed
with the same recipe (cam-train, `jobs` processes at once), evaluate the last checkpoints
(cam-eval), then draw the figures (cam-visualize) and write the tables (cam-report):

OUT/table1.md, table2.md, comparisons.md, summary.csv, tables.csv, comparisons.csv  (cam-report)
OUT/figures/<design>/compare.png, cam_<image>.png, units_*.png, sweep.png     (cam-visualize)
OUT/figures/ablation/sweep.png   the first design's sweeps with the ablation's models
OUT/command.txt   the exact command, the versions, how long each stage took, the reused trainings
OUT/record_check.md   this run's rows against the committed record (results/synthetic)
WORK/data/<design>, WORK/train/<design>/<model>/seed<S>, WORK/eval/...   the runs themselves

With `features=true`, the paper's Section 4 too (cam-features; docs/features.md):
- transfer: a second family of classes (`family=1`: the same textures, new combinations); the
  networks trained on the first design -> linear SVM on their pooled features of the new classes,
  beside a randomly initialised network's features (the floor) and the same network trained on
  the new classes itself (the ceiling, trained and evaluated like the others); localization from
  the SVM's weights;
- fine: a fine-grained design (`evidence=fine`: one shared body, classes differ only in the
  small key part; CUB-200-2011 layout, 128 px, read at the networks' 64 px) -> SVM on the full
  image, the CAM box crop, the ground-truth crop and full + CAM crop;
OUT/table_finegrained.md, table_generic.md, features_summary.csv           (cam-report)
OUT/figures/features/<dataset>/linear_cams.png   CAMs from the SVM's weights (first seed)
WORK/features/<dataset>/<model>/seed<S>/<weights>-<crop>   the cam-features runs

With `discovery=true`, Section 4.2's pattern discovery with the first model (docs/discovery.md):
- text: `cam-synth task=text` (words in scenes with word-like clutter, and scenes without) ->
  a linear SVM on the GAP features of the network trained on the first design, localization of
  `text` from the SVM's weights; and the network trained on text / no text itself;
- vqa: `cam-synth task=vqa` -> cam-train task=vqa (GAP features + the question's bag of words,
  one linear layer) -> cam-eval: answer accuracy, where the answer's CAM points;
OUT/discovery/discovery.md, discovery.csv                                    (cam-report)
OUT/discovery/figures/text-svm/text_cams.png, text-trained/, vqa-trained/vqa_panels.png

Trainings and evaluations run in `jobs` worker processes, each composing the cam-train / cam-eval
config exactly as the command line would; WORK/logs/<job>.log has the command lines that re-run a
stage by hand.

The modules, one job each:
- `config.py`: the schema (`ReproduceConfig`; no torch: `cam-reproduce --help` and
  `apps.register` load it alone);
- `plan.py`: what to run (`plan`, `feature_plan`, the datasets' settings), pure;
- `datasets.py`: the synthetic sets, written unless the same one is there;
- `jobs.py`: one job in a worker process (a training and its evaluation; a cam-features run);
- `figures.py`: the figures stage (cam-visualize's calls);
- `record.py`: the committed record, found (installed as `cam_repro.record`) and checked;
- `provenance.py`: command.txt (the command, versions, CPU, stage times);
- `run.py`: `reproduce`, the stages in order and the worker pool.

This file imports nothing, so that `cam_repro.reproduce.config` loads without torch.
"""
