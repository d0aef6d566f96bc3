"""Nothing silent, nothing clobbered: the faults a researcher meets on a shared cluster, one test
(or a few) per case of docs/reliability.md's table. Items 7 (cam-data's full check), 8 (XML) and
9 (giant images) are also covered in tests/data/test_data_faults.py."""

from __future__ import annotations

import errno
import json
import os
import shlex
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import BIN, CPU, SMALL, SMALL_TRAIN, eval_cfg, train_cfg
from metrics_records import body, write_record

from cam_repro.data.synth_writer import generate
from cam_repro.evaluate.loop import evaluate_run
from cam_repro.models import build_model
from cam_repro.models.checkpoint import load_checkpoint, load_model, save_checkpoint
from cam_repro.present.runs import collect_runs
from cam_repro.runtime.errors import (
    ConfigError,
    InputFileError,
    NonFiniteError,
    OutputError,
    RunFolderBusyError,
)
from cam_repro.runtime.files import write_json, write_text_atomic
from cam_repro.runtime.lock import LOCK_NAME, run_lock
from cam_repro.train import train
from cam_repro_cli import user_errors

SERIAL = "data.num_workers=0"  # in this process: no worker processes
QUIET = [*CPU, SERIAL]


def command(cwd: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def start(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / args[0]), *args[1:]],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the process ended before {path} appeared: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{path} did not appear in {seconds} s")
        time.sleep(0.05)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """stderr of a refused command: exactly one line, no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- 1. NaN / inf ------------------------------------------------------------------------------


def test_a_checkpoint_with_nan_weights_is_refused_by_cam_eval(
    trained: Path, tmp_path: Path
) -> None:
    state = load_checkpoint(trained)
    name = next(k for k, v in state["model"].items() if v.is_floating_point() and v.numel() > 4)
    state["model"][name] = state["model"][name].contiguous()  # saved channels_last
    state["model"][name].view(-1)[3] = float("nan")
    state.pop("format")
    bad = tmp_path / "nan.pt"
    save_checkpoint(bad, state)
    result = command(tmp_path, "cam-eval", f"checkpoint={bad}", *QUIET, "hydra.run.dir=eval")
    assert result.returncode == 1
    total = state["model"][name].numel()
    assert one_line_error(result) == (
        f"error: {bad}: tensor {name} (1 of {total} values are NaN or infinite); these weights "
        "are unusable (did the training diverge?)"
    )
    assert not (tmp_path / "eval" / "metrics.json").exists()
    with pytest.raises(InputFileError, match=f"tensor {name}"):  # cam-visualize loads this way
        load_model(bad)
    with pytest.raises(InputFileError, match=f"tensor {name}"):  # and model.weights_path
        build_model({"arch": "tiny", "weights_path": str(bad)}, 3)


def test_non_finite_logits_stop_the_evaluation(trained: Path, tmp_path: Path) -> None:
    """Finite weights whose forward pass is not: a batch norm's running variance of -eps divides
    by zero. The logits are NaN, and the run stops."""
    state = load_checkpoint(trained)
    var = next(k for k in state["model"] if k.endswith("running_var"))
    state["model"][var] = torch.full_like(state["model"][var], -1e-5)  # BatchNorm's eps
    state.pop("format")
    bad = tmp_path / "overflow.pt"
    save_checkpoint(bad, state)
    with pytest.raises(NonFiniteError, match=rf"^{bad}, batch from .*: logits \(\d+ of \d+ values"):
        evaluate_run(eval_cfg(SERIAL, f"checkpoint={bad}"), tmp_path / "eval")
    assert not (tmp_path / "eval" / "metrics.json").exists()


# --- 2. cam-report and corrupt metrics.json ------------------------------------------------------


def eval_metrics(seed: int) -> dict:
    return body("eval", paper_name="Tiny-GAP", variant="tiny_gap", seed=seed,
                cls_top1_err=10.0 + seed)  # fmt: skip


def test_cam_report_names_a_corrupt_metrics_json_found_or_named(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for seed in (0, 1):
        write_record(sweep / f"seed{seed}", "eval", eval_metrics(seed))
    assert len(collect_runs([sweep])) == 2
    corrupt = sweep / "seed1" / "metrics.json"
    corrupt.write_text('{"protocol": {}, "cls_top1_')  # cut off mid-write by another tool
    with pytest.raises(InputFileError, match=f"^{corrupt}: not valid JSON"):
        collect_runs([sweep])  # found in a folder search
    with pytest.raises(InputFileError, match=f"^{corrupt}: not valid JSON"):
        collect_runs([corrupt.parent])  # the run folder named
    result = command(tmp_path, "cam-report", f"runs=[{sweep}]", "hydra.run.dir=report")
    assert result.returncode == 1
    assert one_line_error(result).startswith(f"error: {corrupt}: not valid JSON")
    assert not (tmp_path / "report" / "summary.csv").exists()


# --- 3. one run per folder -----------------------------------------------------------------------


@pytest.mark.slow
def test_a_second_cam_train_into_a_running_folder_is_refused(
    small_data: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    args = [f"data.root={small_data}", *SMALL_TRAIN, "data.num_workers=0", f"hydra.run.dir={run}"]
    first = start(tmp_path, "cam-train", *args, "trainer.epochs=500")
    try:
        wait_for(run / "train.log", first)
        second = command(tmp_path, "cam-train", *args, "seed=1", "trainer.epochs=1")
        assert second.returncode == 1
        assert one_line_error(second) == (
            f"error: {run} is in use by a running job (process {first.pid} on "
            f"{os.uname().nodename}); wait for it to end, or choose another folder "
            "(hydra.run.dir=...)"
        )
        assert first.poll() is None  # the first run goes on
    finally:
        first.kill()  # kill -9: no clean-up of its own
        first.wait()
    with run_lock(run):  # the kernel released the lock with the process: resumable at once
        pass
    assert (run / "train.log").read_text().count("run dir:") == 1  # the refused run wrote none


def test_the_lock_is_exclusive_between_processes(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from cam_repro.runtime.lock import run_lock\n"
         "with run_lock(Path(sys.argv[1])):\n print('held', flush=True); time.sleep(60)",
         str(tmp_path / "run")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = pytest.raises(RunFolderBusyError, match=f"process {holder.pid} on")
        with busy, run_lock(tmp_path / "run"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with run_lock(tmp_path / "run") as path:
        assert path.name == LOCK_NAME
        assert path.read_text().split()[0] == str(os.getpid())


def test_an_eval_folder_with_results_is_refused_unless_overwrite(
    trained: Path, tmp_path: Path
) -> None:
    run = tmp_path / "eval"
    first = evaluate_run(eval_cfg(SERIAL, f"checkpoint={trained}"), run)
    before = (run / "predictions.csv").read_text()
    with pytest.raises(ConfigError, match=f"^{run} already holds results .* overwrite=true"):
        evaluate_run(eval_cfg(SERIAL, f"checkpoint={trained}", "threshold=0.5"), run)
    assert (run / "predictions.csv").read_text() == before  # untouched
    again = evaluate_run(
        eval_cfg(SERIAL, f"checkpoint={trained}", "threshold=0.5", "overwrite=true"), run
    )
    assert again["protocol"]["threshold"] == 0.5 != first["protocol"]["threshold"]
    assert json.loads((run / "metrics.json").read_text())["protocol"]["threshold"] == 0.5


@pytest.mark.slow
def test_default_eval_folders_differ_for_runs_started_in_the_same_second(
    trained: Path, tmp_path: Path
) -> None:
    procs = [
        start(tmp_path, "cam-eval", f"checkpoint={trained}", *QUIET, "maxboxacc=false")
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    runs = sorted((tmp_path / "outputs" / "eval").iterdir())
    assert len(runs) == 2 and all((r / "metrics.json").is_file() for r in runs)


# --- 4. unwritable and full disks ----------------------------------------------------------------


def test_a_full_disk_during_a_checkpoint_is_one_line_and_keeps_the_last_good_one(
    small_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    train(train_cfg(small_data, SERIAL, "trainer.epochs=1", "optim=sgd"), run)
    good = (run / "checkpoints" / "last.pt").read_bytes()
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):  # what torch's writer raises on ENOSPC
        real_save(obj, f, *args, **kwargs)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OutputError) as caught:
        train(
            train_cfg(small_data, SERIAL, "trainer.epochs=2", "optim=sgd", "trainer.resume=auto"),
            run,
        )
    message = str(caught.value)
    assert message.startswith(f"cannot write {run / 'checkpoints' / 'last.pt'}: torch.save")
    assert "unexpected pos" in message and "\n" not in message
    assert (run / "checkpoints" / "last.pt").read_bytes() == good  # not a corrupt checkpoint
    assert not list((run / "checkpoints").glob(".*.tmp"))  # no temp file left either


@pytest.mark.parametrize(
    ("code", "hint"),
    [(errno.EROFS, "read-only"), (errno.ENOSPC, "free some space"), (errno.EACCES, "permission")],
)
def test_unwritable_outputs_are_one_line_naming_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, code: int, hint: str
) -> None:
    """Tests run as root here, where chmod cannot make a folder read-only: the OSError the
    kernel gives is simulated where the file is created."""
    real_open = os.open

    def refuse(path, flags, mode=0o777, *args, **kwargs):
        if flags & os.O_CREAT:
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    target = tmp_path / "out" / "metrics.json"
    with pytest.raises(OutputError, match=f"^cannot write {target}: {os.strerror(code)}; .*{hint}"):
        write_json(target, {"a": 1})
    with pytest.raises(SystemExit) as exit_:  # what a command prints: one line, exit 1
        user_errors(lambda: write_json(target, {"a": 1}))()
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write {target}") and err.count("\n") == 1


@pytest.mark.slow
def test_a_run_folder_that_cannot_be_made_is_one_line_before_hydra_tries(
    trained: Path, tmp_path: Path
) -> None:
    """Hydra would make the folder itself and print a traceback; the apps' callback makes it
    first (a file in the way stands for a read-only or full disk here)."""
    (tmp_path / "file").write_text("in the way")
    for args in (["hydra.run.dir=file/run"], ["-m", "threshold=0.1,0.2", "hydra.sweep.dir=file/s"]):
        result = command(tmp_path, "cam-eval", *args, f"checkpoint={trained}", *QUIET)
        assert result.returncode == 1
        folder = args[-1].split("=")[1]
        assert (
            one_line_error(result) == f"error: cannot create the folder {folder}: Not a directory"
        )


def test_a_disk_fault_inside_a_library_is_one_line_too(capsys) -> None:
    def tensorboard_on_a_full_disk() -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "run/tb/events.out")

    with pytest.raises(SystemExit) as exit_:
        user_errors(tensorboard_on_a_full_disk)()
    assert exit_.value.code == 1
    assert capsys.readouterr().err == (
        "error: cannot write run/tb/events.out: No space left on device; free some space or "
        "write elsewhere\n"
    )

    def a_bug() -> None:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "x")

    with pytest.raises(FileNotFoundError):  # not a disk fault: a bug keeps its traceback
        user_errors(a_bug)()


def test_a_temp_file_left_by_a_killed_write_is_removed_by_the_next_run(
    small_data: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    train(train_cfg(small_data, SERIAL, "trainer.epochs=1", "optim=sgd"), run)
    stale = run / "checkpoints" / ".last.pt.4242-0badf00d.tmp"
    stale.write_bytes(b"half a checkpoint")
    train(
        train_cfg(small_data, SERIAL, "trainer.epochs=2", "optim=sgd", "trainer.resume=auto"), run
    )
    assert not stale.exists()
    assert f"removed {stale}" in (run / "train.log").read_text()


# --- 5. Ctrl-C -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_says_where_the_checkpoint_is_and_how_to_resume(
    small_data: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    args = [f"data.root={small_data}", *SMALL_TRAIN, "data.num_workers=0", "trainer.epochs=12",
            "trainer.checkpoint_every=2", f"hydra.run.dir={run}"]  # fmt: skip
    proc = start(tmp_path, "cam-train", *args)
    wait_for(run / "checkpoints" / "last.pt", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("interrupted at epoch ")
    assert f"is {run / 'checkpoints' / 'last.pt'}; resume with: cam-train " in line
    resume = shlex.split(line.split("; resume with: ")[1])
    assert resume[-2:] == ["trainer.resume=auto", f"hydra.run.dir={run}"]
    assert json.loads((run / "metrics.json").read_text())["status"].startswith("interrupted")
    result = command(tmp_path, *resume)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["epochs_done"] == 12


def test_ctrl_c_in_any_command_is_one_line_and_exit_130(capsys) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_:
        user_errors(interrupted)()
    assert exit_.value.code == 130
    assert capsys.readouterr().err == "interrupted\n"


# --- 6 and 7. unreadable images: counted once, found before training -----------------------------


@pytest.fixture
def damaged(tmp_path: Path) -> tuple[Path, list[Path], list[Path]]:
    """A small synthetic set with 20 of its 66 images unreadable: 16 train, 4 val (2 with a
    broken header, 2 whose pixel data is cut short)."""
    root = tmp_path / "damaged"
    generate({**SMALL, "train_per_class": 16, "val_per_class": 6, "out": str(root)})
    train_dir = root / "ILSVRC/Data/CLS-LOC/train"
    val_dir = root / "ILSVRC/Data/CLS-LOC/val"
    bad_train = sorted(train_dir.rglob("*.JPEG"))[::3][:16]
    bad_val = sorted(val_dir.glob("*.JPEG"))[:4]
    for path in bad_train + bad_val[:2]:
        path.write_bytes(b"not an image")
    for path in bad_val[2:]:
        data = path.read_bytes()  # cut 20 bytes into the scan: the header stays readable
        path.write_bytes(data[: data.index(b"\xff\xda") + 20])
    return root, bad_train, bad_val


def test_skipped_images_are_counted_once_each(damaged, tmp_path: Path, caplog) -> None:
    root, bad_train, bad_val = damaged
    caplog.set_level("WARNING")
    metrics = train(
        train_cfg(root, SERIAL, "data.bad_images=skip", "trainer.epochs=2", "data.num_workers=2",
                  "data.persistent_workers=false"),
        tmp_path / "run",
    )  # fmt: skip
    assert (metrics["num_train"], metrics["num_train_skipped"]) == (48 - 16, 16)
    assert (metrics["num_val"], metrics["num_val_skipped"]) == (18 - 4, 4)
    warned = [
        r.getMessage() for r in caplog.records if "skipped unreadable image" in r.getMessage()
    ]
    assert len(warned) == 20  # each file once, over 2 epochs and 2 worker processes
    summary = "trained on 32 images, validated on 14; left out as unreadable: 16 train, 4 val"
    assert summary in (tmp_path / "run" / "train.log").read_text()
    assert {Path(m.split("image ", 1)[1].split(": ")[0]) for m in warned} == {*bad_train, *bad_val}
    checkpoint = tmp_path / "run" / "checkpoints" / "last.pt"
    result = evaluate_run(
        eval_cfg(SERIAL, f"checkpoint={checkpoint}", "data.bad_images=skip"), tmp_path / "eval"
    )
    assert (result["num_images"], result["num_skipped"]) == (14, 4)


def test_a_corrupt_val_header_stops_cam_train_before_the_first_epoch(
    damaged, tmp_path: Path
) -> None:
    root, _, bad_val = damaged
    with pytest.raises(
        InputFileError, match=rf"^{bad_val[0]}: .* \(and 1 more\); check .*cam-data"
    ):
        train(train_cfg(root, SERIAL, "trainer.epochs=1"), tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing trained


# --- 10. weights loaded into another model --------------------------------------------------------


def test_a_checkpoint_loaded_into_another_model_is_refused(
    trained: Path, small_data: Path, tmp_path: Path
) -> None:
    own = load_checkpoint(trained)["config"]["model"]
    with pytest.raises(InputFileError) as caught:
        build_model({**own, "pool": "gmp", "weights_path": str(trained)}, 3)
    assert str(caught.value) == (
        f"{trained}: holds a tiny_gap network, not tiny_gmp (pool 'gap' in the file, 'gmp' "
        "here); load it with the model config it was trained with"
    )
    result = command(tmp_path, "cam-eval", "model=tiny_gmp", f"model.weights_path={trained}",
                     f"data.root={small_data}", *QUIET)  # fmt: skip
    assert result.returncode == 1 and "holds a tiny_gap network" in one_line_error(result)
    same = build_model({**own, "weights_path": str(trained), "dropout": 0.5}, 3)
    assert same.reused_keys  # dropout changes no weight: fine-tuning with it is allowed


# --- 11. file modes -------------------------------------------------------------------------------


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_are_created_with_the_users_umask(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "config.yaml", "a: 1\n")
        save_checkpoint(tmp_path / "last.pt", {"model": {}, "config": {}, "classes": []})
    finally:
        os.umask(old)
    for name in ("config.yaml", "last.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode


def test_a_training_run_is_readable_by_the_group(small_data: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        train(train_cfg(small_data, SERIAL, "trainer.epochs=1"), tmp_path / "run")
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert {"last.pt", "best.pt", "metrics.json", "config.yaml", "train.log"} <= {
        p.name for p in files
    }
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {oct(0o644)}
