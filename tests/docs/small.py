"""The small settings the doc tests append to every cam-* command of a runnable block, so that
each example runs in seconds on a 2-core CPU: the docs write commands at their real sizes.

A setting replaces one the example already gives for the same key (`key=`, `+key=`, `++key=`),
so `cam-synth train_per_class=1500` runs with 16 images per class; the rest of the example's
keys (folders, models, designs) are kept, which is what the test checks.
"""

from __future__ import annotations

# command -> key -> value (Hydra override syntax)
SMALL: dict[str, dict[str, str]] = {
    # 16 train and 4 val images per class: every class still in train and val (10 classes, so
    # top-5 means something); task=text uses the same keys, task=vqa its own
    "cam-synth": {
        "train_per_class": "16",
        "val_per_class": "4",
        "vqa.train_images": "40",
        "vqa.val_images": "10",
    },
    "cam-train": {"trainer.epochs": "1", "runtime.progress": "false"},
    "cam-eval": {"runtime.progress": "false", "sweep_thresholds": "100"},
    "cam-features": {"runtime.progress": "false"},
    "cam-visualize": {"runtime.progress": "false", "num_images": "2"},
    # its smallest study: one design, one seed, one epoch, one job, 16 train images per class
    "cam-reproduce": {
        "designs": "[parts]",
        "seeds": "[0]",
        "epochs": "1",
        "jobs": "1",
        "synth.train_per_class": "16",
        "synth.val_per_class": "4",
        "figure_images": "2",
    },
}


def override_key(arg: str) -> str | None:
    """The config key an override sets (`+a.b=1` -> `a.b`), None for anything else (flags,
    `-m`, group choices such as `hydra/launcher=slurm` count as keys too)."""
    if arg.startswith("-") or "=" not in arg:
        return None
    return arg.split("=", 1)[0].lstrip("+~")


def with_small(command: str, args: list[str]) -> list[str]:
    """`args` of `command` with its small settings: a key the example sets is replaced.

    The settings go right after the example's first run of overrides (at the front if it has
    none): Hydra's argparse takes its overrides as one run of positional words, so
    `cam-train hydra/launcher=slurm --cfg hydra -p hydra.launcher x=1` would refuse `x=1`.
    """
    small = SMALL.get(command, {})
    kept = [a for a in args if override_key(a) not in small]
    start = next((i for i, a in enumerate(kept) if override_key(a) is not None), len(kept))
    end = start
    while end < len(kept) and not kept[end].startswith("-"):
        end += 1
    if start == len(kept):
        end = 0
    return kept[:end] + [f"{key}={value}" for key, value in small.items()] + kept[end:]
