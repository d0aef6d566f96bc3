"""The installed console scripts, run as a user runs them: from another folder."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from helpers import BIN, CPU, SMALL_TRAIN, run_command, run_metrics

from cam_repro.apps import run_stamp
from cam_repro.data import read_split
from cam_repro.data.loaders import eval_loader
from cam_repro.models.checkpoint import load_model
from cam_repro.runtime.distributed import Dist
from cam_repro.train import validate
from cam_repro.train.config import train_config
from cam_repro.train.epoch import batch_inputs
from cam_repro.train.guards import weights_digest


def test_cam_models_one_variant_from_any_folder(tmp_path: Path) -> None:
    result = run_command(tmp_path, "cam-models", "model=alexnet_star_gap", "model.width_mult=0.25")
    assert result.returncode == 0, result.stderr
    assert "| alexnet_star_gap | AlexNet*-GAP |" in result.stdout
    assert "256 x 11x11" in result.stdout
    assert list(tmp_path.iterdir()) == []  # nothing written to the working directory


def test_cam_models_lists_the_zoo_with_overrides(tmp_path: Path) -> None:
    result = run_command(tmp_path, "cam-models", "model.width_mult=0.125", "input_size=112")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 16  # the zoo's variants (nin among them), not the any-classifier presets
    assert "| nin | NIN |" in result.stdout and "torchvision" not in result.stdout
    table = result.stdout
    assert "last conv map at 112 px" in table
    # 1024 * 0.125 = 128 units; at 112 px the maps are half the 224 px sizes (7, 7, 4 ...).
    assert "| vgg16_gap | VGGnet-GAP |" in table and "128 x 7x7" in table
    assert "| googlenet | GoogLeNet |" in table and "128 x 4x4" in table
    assert rows[0].startswith("| alexnet | AlexNet |")  # the paper's order, originals first


def test_cam_models_typo_in_override_fails_at_start(tmp_path: Path) -> None:
    result = run_command(tmp_path, "cam-models", "model=vgg16_gap", "model.widht_mult=0.5")
    assert result.returncode != 0
    assert "widht_mult" in result.stderr


def test_cam_models_unknown_variant_lists_the_choices(tmp_path: Path) -> None:
    result = run_command(tmp_path, "cam-models", "model=vgg19")
    assert result.returncode != 0
    assert "vgg19" in result.stderr and "vgg16_gap" in result.stderr


def test_cam_models_bad_value_is_one_line_error(tmp_path: Path) -> None:
    result = run_command(tmp_path, "cam-models", "model=vgg16_gap", "model.width_mult=-1")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: model.width_mult must be a finite number > 0, got -1.0"


def test_cam_synth_then_cam_data_reads_it(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    args = ["num_classes=3", "train_per_class=4", "val_per_class=2", "image_size=32", "workers=1"]
    result = run_command(tmp_path, "cam-synth", f"out={out}", *args)
    assert result.returncode == 0, result.stderr
    assert "wrote 12 train and 6 val images" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth"]  # only `out` is written
    result = run_command(tmp_path, "cam-data", "data=synthetic", f"data.root={out}")
    assert result.returncode == 0, result.stderr
    assert "train: 12 images of 3 classes" in result.stdout
    assert "val: 6 images of 3 classes" in result.stdout
    assert "foreground masks: 6" in result.stdout
    assert "classes: 3: n90000000 (synthetic class 0: body hstripes4+vstripes4" in result.stdout


@pytest.mark.parametrize(
    ("task", "args", "data", "says"),
    [("text", ["train_per_class=3", "val_per_class=2"], ["data=synthetic"],
      "classes: 2: n90100000 (no text)"),
     ("vqa", ["vqa.train_images=4", "vqa.val_images=2"], ["data=synthetic_vqa"],
      "train: 4 images, 12 questions, ")],  # an image counted once, its questions apart
)  # fmt: skip
def test_cam_synth_tasks_then_cam_data_reads_them(
    tmp_path: Path, task: str, args: list[str], data: list[str], says: str
) -> None:
    out = tmp_path / task
    result = run_command(tmp_path, "cam-synth", f"task={task}", f"out={out}", "image_size=32",
                         "workers=1", *args)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"read it with: {'data=synthetic_vqa' if task == 'vqa' else 'data=synthetic'}" in (
        result.stdout
    )
    result = run_command(tmp_path, "cam-data", *data, f"data.root={out}")
    assert result.returncode == 0, result.stderr
    assert says in result.stdout


def test_cam_data_bad_input_is_one_line_error(tmp_path: Path) -> None:
    result = run_command(tmp_path, "cam-data", f"data.root={tmp_path / 'missing'}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: data.root {tmp_path / 'missing'} does not exist or is not a folder"
    ]
    result = run_command(tmp_path, "cam-synth", "out=x", "evidence=stripes")
    assert result.returncode == 1
    want = "error: evidence must be one of parts, uniform, fine; got 'stripes'"
    assert result.stderr.strip() == want


def assert_clear_error(result: subprocess.CompletedProcess, message: str) -> None:
    """The command failed with a message matching `message` and no traceback."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert re.search(message, result.stderr.strip(), re.MULTILINE), result.stderr


def test_cam_train_writes_only_into_its_run_dir(small_data: Path, tmp_path: Path) -> None:
    result = run_command(
        tmp_path, "cam-train", f"data.root={small_data}", *SMALL_TRAIN, "trainer.epochs=1",
        "hydra.run.dir=run",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "epoch 1/1: train loss" in result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    assert run_metrics(tmp_path / "run")["final"]["epoch"] == 1


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.epoch=2", r"Key 'epoch' not in 'TrainerConfig'"),
        ("data.root=nowhere/at/all", r"^error: .*nowhere/at/all"),
        ("optim.lr=-0.1", r"^error: optim\.lr must be a finite number > 0, got -0\.1$"),
        ("trainer.resume=broken.pt", r"^error: .*broken\.pt: not a readable cam-repro checkpoint"),
    ],
    ids=["typo", "missing-root", "bad-value", "corrupt-checkpoint"],
)
def test_cam_train_bad_input_is_one_clear_line(
    small_data: Path, tmp_path: Path, override: str, message: str
) -> None:
    (tmp_path / "broken.pt").write_bytes(b"PK\x03\x04 not really a zip")
    root = [] if override.startswith("data.root") else [f"data.root={small_data}"]
    result = run_command(tmp_path, "cam-train", *root, *SMALL_TRAIN, override, "hydra.run.dir=run")
    assert_clear_error(result, message)


@pytest.mark.slow
def test_cam_train_multirun_gives_each_job_a_folder(small_data: Path, tmp_path: Path) -> None:
    result = run_command(
        tmp_path, "cam-train", "-m", "model=tiny_gap,tiny_gmp", "seed=0,1",
        f"data.root={small_data}", *SMALL_TRAIN, "trainer.epochs=1", "hydra.sweep.dir=sweep",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert len(jobs) == 4
    seen = {(m["variant"], m["seed"]) for m in map(run_metrics, jobs)}
    assert seen == {("tiny_gap", 0), ("tiny_gap", 1), ("tiny_gmp", 0), ("tiny_gmp", 1)}
    assert jobs[0].name.startswith("0_") and "model-tiny_gap" in jobs[0].name


@pytest.mark.slow
def test_torchrun_two_cpu_processes(small_data: Path, tmp_path: Path) -> None:
    """DDP with gloo: both processes end with identical weights, and the accuracy the run
    reports equals a single-process evaluation of the checkpoint it saved."""
    result = run_command(
        tmp_path, "torchrun", "--standalone", "--nproc_per_node=2", str(BIN / "cam-train"),
        f"data.root={small_data}", *SMALL_TRAIN, "trainer.epochs=2", "hydra.run.dir=run",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = run_metrics(tmp_path / "run")
    assert metrics["world_size"] == 2
    digests = metrics["rank_weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    # 192 images over 2 processes in batches of 32: 3 steps per epoch each.
    assert metrics["global_step"] == 6
    assert [p.name for p in tmp_path.iterdir()] == ["run"]

    model, state = load_model(tmp_path / "run" / "checkpoints" / "last.pt")
    assert weights_digest(model) == digests[0]
    spec = train_config(state["config"])
    val = validate(
        model,
        eval_loader(read_split(spec.data, "val"), spec.data, Dist()),
        batch_inputs(spec),
        Dist(),
    )
    assert val["images"] == 48
    assert val["top1_err"] == metrics["final"]["val_top1_err"]
    assert val["top5_err"] == metrics["final"]["val_top5_err"]


def test_run_stamp_is_shared_by_torchrun_processes(monkeypatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    stamps = {run_stamp() for _ in range(20)}  # started within one second, all different
    assert len(stamps) == 20
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_[0-9a-f]{6}", s) for s in stamps)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "abc123")
    assert run_stamp() == "torchrun-abc123"


# --- cam-eval -----------------------------------------------------------------------------------


def test_cam_eval_writes_only_into_its_run_dir(trained: Path, tmp_path: Path) -> None:
    result = run_command(tmp_path, "cam-eval", f"checkpoint={trained}", *CPU, "hydra.run.dir=run")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    metrics = run_metrics(tmp_path / "run")
    for key in ("cls_top1_err", "cls_top5_err", "loc_top1_err", "loc_top5_err",
                "gt_known_loc_err", "maxboxacc_v2", "num_images"):  # fmt: skip
        assert key in metrics
    assert metrics["num_images"] == 48
    assert f"loc top-1/top-5 err {metrics['loc_top1_err']:.2f}" in result.stdout


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("thresold=0.3", r"Key 'thresold' is not in struct|thresold"),
        ("threshold=2", r"^error: threshold must lie in \[0, 1\], got 2\.0$"),
        ("box_rule=mine", r"^error: box_rule must be one of paper, release; got 'mine'$"),
        ("checkpoint=missing.pt", r"^error: checkpoint .*missing\.pt does not exist$"),
    ],
    ids=["typo", "bad-threshold", "bad-rule", "missing-checkpoint"],
)
def test_cam_eval_bad_input_is_one_clear_line(
    trained: Path, tmp_path: Path, override: str, message: str
) -> None:
    checkpoint = [] if override.startswith("checkpoint") else [f"checkpoint={trained}"]
    result = run_command(tmp_path, "cam-eval", *checkpoint, *CPU, override, "hydra.run.dir=run")
    assert_clear_error(result, message)


@pytest.mark.slow
def test_cam_eval_under_torchrun_merges_the_shards_once(trained: Path, tmp_path: Path) -> None:
    """Two processes each evaluate half the images; rank 0 writes the same numbers and rows as a
    single process does."""
    args = [f"checkpoint={trained}", *CPU, "sweep=true"]
    single = run_command(tmp_path, "cam-eval", *args, "hydra.run.dir=one")
    assert single.returncode == 0, single.stderr
    result = run_command(
        tmp_path, "torchrun", "--standalone", "--nproc_per_node=2", str(BIN / "cam-eval"),
        *args, "hydra.run.dir=two",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    one, two = run_metrics(tmp_path / "one"), run_metrics(tmp_path / "two")
    assert two["world_size"] == 2 and two["num_images"] == 48
    for key in ("seconds", "world_size"):
        one.pop(key), two.pop(key)
    assert one == two
    for name in ("predictions.csv", "sweep.csv", "table.md"):
        assert (tmp_path / "one" / name).read_text() == (tmp_path / "two" / name).read_text()


@pytest.mark.parametrize(
    "command",
    ["cam-models", "cam-data", "cam-synth", "cam-train", "cam-eval", "cam-features",
     "cam-visualize", "cam-report", "cam-reproduce"],
)  # fmt: skip
def test_help_prints_the_examples(command: str, tmp_path: Path) -> None:
    """The installed command's own help (cli/help.py; its content: tests/e2e/test_help.py)."""
    result = run_command(tmp_path, command, "-h")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{command}: ")
    assert f"\nexamples:\n  {command}" in result.stdout
    assert result.stderr == ""
    assert list(tmp_path.iterdir()) == []  # no run folder: Hydra did not run


def test_cam_eval_multirun_names_folders_by_setting(trained: Path, tmp_path: Path) -> None:
    """A threshold sweep: one flat folder per job (the checkpoint path stays out of the name)."""
    result = run_command(
        tmp_path, "cam-eval", "-m", f"checkpoint={trained}", "threshold=0.1,0.3",
        "maxboxacc=false", *CPU, "hydra.sweep.dir=sweep",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    jobs = sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert jobs == ["0_maxboxacc-False_threshold-0.1", "1_maxboxacc-False_threshold-0.3"]
    thresholds = [run_metrics(tmp_path / "sweep" / j)["protocol"]["threshold"] for j in jobs]
    assert thresholds == [0.1, 0.3]


@pytest.mark.slow
def test_cam_report_and_visualize_from_the_command_line(trained: Path, tmp_path: Path) -> None:
    """cam-eval, then cam-visualize with its sweep and cam-report over the eval run."""
    result = run_command(tmp_path, "cam-eval", f"checkpoint={trained}", "runtime.progress=false",
                         "sweep=true", "hydra.run.dir=eval")  # fmt: skip
    assert result.returncode == 0, result.stderr
    result = run_command(tmp_path, "cam-visualize", f"checkpoint={trained}", "num_images=2",
                         "units=2", "sweeps=[eval]", "dpi=30", "hydra.run.dir=vis")  # fmt: skip
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "vis").iterdir() if not p.name.startswith("."))
    assert names[:2] == ["cam_ILSVRC2012_val_00000001.png", "cam_ILSVRC2012_val_00000002.png"]
    assert "sweep.png" in names and any(n.startswith("units_tiny_gap_n9") for n in names)
    result = run_command(tmp_path, "cam-report", "runs=[eval]", "hydra.run.dir=report")
    assert result.returncode == 0, result.stderr
    assert "| Tiny-GAP |" in (tmp_path / "report" / "table2.md").read_text()
    assert "1 runs in 1 rows" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cam-report", "runs=[nope]"], r"^error: nope: no such file or folder$"),
        (
            ["cam-report", "runs=[.]", "paper=maybe"],
            r"^error: paper must be one of auto, true, false; got 'maybe'$",
        ),
        (["cam-visualize"], r"^error: nothing to draw"),
        (["cam-visualize", "sweeps=[nope]"], r"^error: nope: no sweep.csv here"),
        (["cam-reproduce", "designs=[stripes]"], r"^error: designs must be one of parts, uniform"),
    ],
)
def test_figure_and_table_commands_refuse_bad_input_in_one_line(
    args: list[str], message: str, tmp_path: Path
) -> None:
    assert_clear_error(run_command(tmp_path, *args), message)
