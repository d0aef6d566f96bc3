"""cam-eval localizer=torchcam end to end (cam_repro/evaluate/loop.py, localizer.py, config.py):
torch-cam's CAM scores as our CAM does, the scoring thread changes no number, the refusals are
one line and come before the data, and a run that fails leaves no hook on the network."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import eval_cfg, run_metrics

from cam_repro.evaluate.loop import Evaluator, evaluate_run
from cam_repro.localize.layers import hooks_on
from cam_repro.localize.posthoc import PosthocMaps
from cam_repro.runtime.errors import ConfigError

LOC_ERRORS = ("loc_top1_err", "loc_top5_err", "gt_known_loc_err")
# what differs between two runs of the same protocol: the time they took
TIMING = ("seconds",)


def _same_numbers(a: dict, b: dict) -> None:
    for key in set(a) | set(b):
        if key not in TIMING:
            assert a[key] == b[key], key


@pytest.fixture(scope="module")
def torchcam_cam_run(trained: Path, tmp_path_factory) -> Path:
    """cam-eval localizer=torchcam torchcam.method=CAM sweep=true on the small set's val split."""
    run = tmp_path_factory.mktemp("torchcam") / "cam"
    evaluate_run(
        eval_cfg(f"checkpoint={trained}", "localizer=torchcam", "torchcam.method=cam",
                 "sweep=true"),
        run,
    )  # fmt: skip
    return run


def test_torch_cams_cam_scores_as_ours(trained: Path, torchcam_cam_run: Path, tmp_path) -> None:
    """The maps agree to ~1e-7 of their scale (tests/localize/test_posthoc.py); a box changes
    only where a pixel of a normalised map lies within that of a threshold. The paper rule has
    one threshold (0.2): its errors are equal. MaxBoxAccV2 takes, per IoU level, the best of
    1000 thresholds: should one image's box flip at the best threshold, that level moves by
    100 / N and the mean of the levels by at most that."""
    ours = evaluate_run(eval_cfg(f"checkpoint={trained}", "sweep=true"), tmp_path / "cam")
    theirs = run_metrics(torchcam_cam_run)
    n = ours["num_images"]
    assert n == theirs["num_images"] == 48 and theirs["num_loc_images"] == 48
    for key in ("cls_top1_err", "cls_top5_err", *LOC_ERRORS):
        assert theirs[key] == ours[key], key
    assert abs(theirs["maxboxacc_v2"] - ours["maxboxacc_v2"]) <= 100 / n
    for level, acc in ours["box_acc"].items():
        assert abs(theirs["box_acc"][level] - acc) <= 100 / n, level
    assert ours["paper_name"] == "Tiny-GAP"
    assert theirs["paper_name"] == "CAM (torch-cam) on Tiny-GAP"
    assert theirs["protocol"]["localizer"] == "torchcam"
    assert theirs["protocol"]["torchcam"] == {"method": "CAM", "layer": None}
    # absent, not null, from the other localizers' records (runtime.typed_json.optional)
    assert "torchcam" not in ours["protocol"] and "posthoc_cost" not in ours
    # tiny_gap's CAM feature map: its 96-channel last conv block, read off torch-cam's hook
    assert theirs["posthoc_cost"] == {
        "layer": "head", "channels": 96, "forward_passes_per_map": 0,
        "backward_passes_per_map": 0,
    }  # fmt: skip
    log = (torchcam_cam_run / "eval.log").read_text()
    assert "CAM (torch-cam) at layer 'head' (96 channels): no passes of the network" in log


@pytest.mark.slow
def test_score_cam_with_and_without_a_scoring_thread_gives_the_same_numbers(
    trained: Path, tmp_path: Path
) -> None:
    """The scoring thread overlaps the next forward pass; it changes no number. Kept cheap:
    topk=1 (the top class and the true class, once where they agree) and the second block's 48
    channels (backbone.6, 16x16 at 32 px): 49 passes per map."""
    runs = {}
    for threads in (0, 1):
        runs[threads] = evaluate_run(
            eval_cfg(f"checkpoint={trained}", "localizer=torchcam", "torchcam.method=ScoreCAM",
                     "torchcam.layer=backbone.6", "torchcam.batch_size=128", "topk=1",
                     f"score_threads={threads}"),
            tmp_path / str(threads),
        )  # fmt: skip
    _same_numbers(runs[0], runs[1])
    assert runs[0]["paper_name"] == "Score-CAM on Tiny-GAP"
    assert runs[0]["protocol"]["torchcam"] == {"method": "ScoreCAM", "layer": "backbone.6"}
    assert runs[0]["posthoc_cost"] == {
        "layer": "backbone.6", "channels": 48, "forward_passes_per_map": 49,
        "backward_passes_per_map": 0,
    }  # fmt: skip
    assert 0 < runs[0]["maxboxacc_v2"] <= 100
    rows = [(tmp_path / str(t) / "predictions.csv").read_text() for t in (0, 1)]
    assert rows[0] == rows[1]


# --- refusals -----------------------------------------------------------------------------------


def _refused(trained: Path, tmp_path: Path, *overrides: str) -> str:
    with pytest.raises(ConfigError) as err:
        evaluate_run(eval_cfg(f"checkpoint={trained}", *overrides), tmp_path / "run")
    message = str(err.value)
    assert "\n" not in message
    return message


def test_torchcam_keys_need_localizer_torchcam_and_a_method(trained: Path, tmp_path: Path) -> None:
    message = _refused(trained, tmp_path, "torchcam.method=ScoreCAM")
    assert message == (
        "torchcam.method: applies to localizer=torchcam only, this run has localizer=cam"
    )
    message = _refused(trained, tmp_path, "localizer=gradcam", "torchcam.seed=3")
    assert message.startswith("torchcam.seed: applies to localizer=torchcam only")
    message = _refused(trained, tmp_path, "localizer=torchcam")
    assert message.startswith("localizer=torchcam needs torchcam.method=<name>: one of CAM, ")
    message = _refused(trained, tmp_path, "localizer=torchcam", "torchcam.method=LeGrad")
    assert message.startswith("torchcam.method: torch-cam's LeGrad explains vision transformers")
    message = _refused(trained, tmp_path, "localizer=torchcam", "torchcam.method=ScoreCAM",
                       "torchcam.num_samples=3")  # fmt: skip
    assert message.startswith("torchcam.num_samples: applies to SmoothGradCAMpp, SSCAM, ISCAM")
    assert not (tmp_path / "run").exists()  # refused before the run folder is made


def test_an_unknown_layer_is_refused_before_the_images_are_read(
    trained: Path, tmp_path: Path, monkeypatch
) -> None:
    def no_loading(self):
        raise AssertionError("the data loader was made before the refusal")

    monkeypatch.setattr(Evaluator, "_loader", no_loading)
    message = _refused(trained, tmp_path, "localizer=torchcam", "torchcam.method=GradCAM",
                       "torchcam.layer=nonexistent")  # fmt: skip
    assert message.startswith("torchcam.layer: layer 'nonexistent' is not a module of ")
    # after the pooling: 1x1 maps, refused naming the layer
    message = _refused(trained, tmp_path, "localizer=torchcam", "torchcam.method=GradCAM",
                       "torchcam.layer=pool")  # fmt: skip
    assert "'pool'" in message and "torchcam.layer" in message


def test_threshold_from_a_run_of_another_method_is_refused(
    trained: Path, torchcam_cam_run: Path, tmp_path: Path
) -> None:
    """A threshold carries over only under the same protocol: torch-cam's method and options
    are part of it."""
    base = (f"checkpoint={trained}", f"threshold_from={torchcam_cam_run}")
    for overrides, theirs, ours in (
        (["localizer=torchcam", "torchcam.method=GradCAM"],
         "torchcam={method=CAM, layer=null}", "torchcam={method=GradCAM, layer=null}"),
        (["localizer=torchcam", "torchcam.method=CAM", "torchcam.layer=backbone.10"],
         "torchcam={method=CAM, layer=null}", "torchcam={method=CAM, layer=backbone.10}"),
        ([], "localizer=torchcam", "localizer=cam"),
    ):  # fmt: skip
        with pytest.raises(ConfigError) as err:
            evaluate_run(eval_cfg(*base, *overrides), tmp_path / "test")
        message = str(err.value)
        assert "\n" not in message
        assert f"evaluated with {theirs}, this run with {ours}" in message, message
        assert not (tmp_path / "test").exists()


# --- a run that fails ---------------------------------------------------------------------------


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failed_run_leaves_no_hook(trained: Path, tmp_path: Path, monkeypatch, error) -> None:
    """The maps of the second batch (of 2: 48 images in batches of 32) fail; every extractor
    made (the cost check's, the run's) was closed and the network has no hook left."""
    made: list[PosthocMaps] = []
    closed: list[PosthocMaps] = []
    init, close, maps = PosthocMaps.__init__, PosthocMaps.close, PosthocMaps.maps
    calls = []

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)

    def recording_close(self):
        closed.append(self)
        close(self)

    def failing_maps(self, x, classes):
        calls.append(len(x))
        if len(calls) == 2:
            raise error("the second batch")
        return maps(self, x, classes)

    monkeypatch.setattr(PosthocMaps, "__init__", recording_init)
    monkeypatch.setattr(PosthocMaps, "close", recording_close)
    monkeypatch.setattr(PosthocMaps, "maps", failing_maps)
    with pytest.raises(error, match="the second batch"):
        evaluate_run(
            eval_cfg(f"checkpoint={trained}", "localizer=torchcam", "torchcam.method=GradCAMpp"),
            tmp_path / "run",
        )
    assert calls == [32, 16]
    assert len(made) == 2 and all(m in closed for m in made)  # posthoc_cost's, the run's
    assert hooks_on(made[1].net) == 0 and made[0].net is made[1].net
    assert not (tmp_path / "run" / "metrics.json").exists()
