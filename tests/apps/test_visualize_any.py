"""cam-visualize on any network cam-eval takes (cam_repro/visualize.py): a model with a weights
file on image files and folders, the names of its outputs, the drawn classes and scores against
the network's own softmax, Grad-CAM on a network without a CAM head, and the units figure on
images of the named class."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from helpers import CPU, SMALL, run_command
from PIL import Image

from cam_repro.apps import compose
from cam_repro.evaluate.config import box_rule
from cam_repro.evaluate.network import Network, known_class_names
from cam_repro.evaluate.views import class_pictures, localizer, look
from cam_repro.localize.layers import CAMUnavailableError
from cam_repro.models import model_config
from cam_repro.present.figures import _caption, picture_figure
from cam_repro.runtime.context import run_context
from cam_repro.runtime.errors import ConfigError, InputFileError
from cam_repro.visualize import (
    class_names,
    class_units,
    load_model,
    load_net,
    load_pictures,
    load_split,
    visualize_run,
)
from cam_repro.visualize_config import visualize_config

DPI = 30
SIZE = ["data.image_size=64", "data.resize_size=64"]  # resnet18's maps are 2x2 at 64 px


def spec_of(*overrides: str):
    return visualize_config(compose("visualize", [*CPU, f"dpi={DPI}", *overrides]))


def save_image(path: Path, seed: int, shape=(40, 56)) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (*shape, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A torchvision resnet18 with random weights (its 1000 ImageNet outputs) saved to a file, as
    one saves a state dict of one's own."""
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(torchvision.models.resnet18(num_classes=1000).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[list[Path], Path]:
    """Two image files and a folder of two more (and a file that is not an image)."""
    root = tmp_path_factory.mktemp("photos")
    files = [save_image(root / "cat.png", 1), save_image(root / "dog.jpg", 2, (48, 32))]
    folder = root / "more"
    folder.mkdir()
    save_image(folder / "b.png", 3)
    save_image(folder / "a.jpg", 4)
    (folder / "notes.txt").write_text("not an image\n")
    return files, folder


def resnet_spec(weights: Path, photos, *more: str):
    files, folder = photos
    images = ",".join(str(p) for p in [*files, folder])
    return spec_of("model=torchvision", "model.name=resnet18", f"model.weights_path={weights}",
                   f"images=[{images}]", *SIZE, *more)  # fmt: skip


def test_a_weights_file_is_drawn_on_files_and_a_folder(weights, photos, tmp_path) -> None:
    written = visualize_run(resnet_spec(weights, photos), tmp_path / "out")
    # the files in order, then the folder's images sorted; notes.txt skipped; no units (no data)
    assert [p.name for p in written] == ["cam_cat.png", "cam_dog.png", "cam_a.png", "cam_b.png"]
    for path in written:
        pixels = np.asarray(Image.open(path).convert("RGB"))
        assert pixels.shape[:2] == (round(10 * 0.62 * DPI), 10 * DPI)
        assert pixels.std() > 30  # a heatmap and text, not a blank page


def test_names_of_the_outputs(weights, photos, tmp_path) -> None:
    listed = tmp_path / "names.txt"
    listed.write_text("".join(f"thing {i}\n" for i in range(1000)))
    short = tmp_path / "short.txt"
    short.write_text("".join(f"thing {i}\n" for i in range(999)))
    spec = resnet_spec(weights, photos)
    with run_context(spec.runtime) as run:
        net = load_model(spec, None, run)
        # a weights file says nothing of its outputs' order: indices, not guesses
        names = class_names(spec, net, None)
        assert names[:2] == ["class 0", "class 1"] and len(names) == 1000
        given = class_names(resnet_spec(weights, photos, f"class_names={listed}"), net, None)
        assert given[281] == "thing 281"
        imagenet = class_names(resnet_spec(weights, photos, "class_names=imagenet"), net, None)
        assert imagenet[0] == "tench" and len(imagenet) == 1000
        with pytest.raises(ConfigError, match=rf"class_names: {short} has 999 names, the "
                                              "network 1000 outputs"):  # fmt: skip
            class_names(resnet_spec(weights, photos, f"class_names={short}"), net, None)


def test_torchvision_weights_carry_imagenets_names() -> None:
    """model=torchvision model.pretrained=true: the weights' own categories (no download: the
    names are in torchvision's enum); a zoo variant with a weights file: none known."""
    tv = model_config({"arch": "torchvision", "name": "resnet50", "pretrained": True})
    names = known_class_names(Network(torch.nn.Identity(), tv, None, 1000, "pretrained"))
    assert names is not None and names[0] == "tench" and len(names) == 1000
    zoo = model_config({"arch": "vgg16", "weights_path": "w.pt"})
    assert known_class_names(Network(torch.nn.Identity(), zoo, None, 1000, "file")) is None
    spec = spec_of("model=vgg16_gap", "model.weights_path=w.pt", "images=[x.png]")
    assert spec.model is not None and spec.model.weights_path == "w.pt"


def test_the_drawn_classes_and_scores_are_the_networks_softmax(weights, photos) -> None:
    spec = resnet_spec(weights, photos, "topk=4")
    with run_context(spec.runtime) as run:
        net = load_model(spec, None, run)
        pictures = load_pictures(spec, net)
        seen = look(net, pictures, spec.topk, box_rule(spec), run.device)
        names = class_names(spec, net, None)
    # the same network built by torchvision alone, on the same frames, normalised by hand
    own = torchvision.models.resnet18(num_classes=1000)
    own.load_state_dict(torch.load(weights, weights_only=True))
    frames = torch.from_numpy(np.stack([p.frame for p in pictures])).permute(0, 3, 1, 2)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    with torch.no_grad():
        probs = own.eval()((frames.float() / 255 - mean) / std).softmax(dim=1).numpy()
    assert len(seen) == len(pictures) == 4
    for s, p in zip(seen, probs, strict=True):
        # float32 sums over the same weights in another memory layout: 1e-5 of a probability
        np.testing.assert_allclose(s.scores, p[s.classes], rtol=0, atol=1e-5)
        assert s.scores == sorted(s.scores, reverse=True)
        others = np.delete(p, s.classes)
        assert others.max() <= min(s.scores) + 1e-5  # no higher class left out
        assert _caption(names, s, 0) == f"class {s.classes[0]} {p[s.classes[0]]:.2f}"


def test_gradcam_draws_a_network_without_a_cam_head(photos, tmp_path) -> None:
    net = ["model=module", "model._target_=any_nets.TwoLayerHead", "model_classes=3",
           f"images=[{photos[1]}]", "data.image_size=32", "data.resize_size=32"]  # fmt: skip
    written = visualize_run(spec_of(*net, "localizer=gradcam"), tmp_path / "grad")
    assert [p.name for p in written] == ["cam_a.png", "cam_b.png"]
    with pytest.raises(CAMUnavailableError, match=r"TwoLayerHead.*localizer=gradcam"):
        visualize_run(spec_of(*net), tmp_path / "cam")
    # the title names the localizer
    spec = spec_of(*net, "localizer=gradcam")
    with run_context(spec.runtime) as run:
        model = load_model(spec, None, run)
        pictures = load_pictures(spec, model)
        loc = localizer(model, "gradcam", run.device)
        seen = look(model, pictures[:1], 3, box_rule(spec), run.device, loc=loc)[0]
    fig = picture_figure(pictures[0], seen, class_names(spec, model, None), model.paper, 0.2,
                         "max", "gradcam")  # fmt: skip
    assert fig.get_suptitle().startswith("TwoLayerHead, Grad-CAM: a ")


def test_one_network_and_readable_images_or_one_line(weights, photos, tmp_path) -> None:
    both = [f"checkpoint={weights}", "model=torchvision", "model.name=resnet18"]
    with pytest.raises(ConfigError, match=r"give either checkpoint=.* not both"):
        spec_of(*both, "images=[x.png]")
    with pytest.raises(ConfigError, match=r"give either checkpoint=.* not neither"):
        spec_of("images=[x.png]")
    with pytest.raises(ConfigError, match=r"images=\[\.\.\.\].*or data"):
        spec_of("model=torchvision", "model.name=resnet18")
    empty = tmp_path / "empty"
    empty.mkdir()
    for given, message in [(empty, "holds no image file"), (tmp_path / "nope", "does not exist")]:
        spec = spec_of("model=torchvision", "model.name=resnet18", f"model.weights_path={weights}",
                       f"images=[{given}]", *SIZE)  # fmt: skip
        with pytest.raises(InputFileError, match=rf"images: {given} {message}"):
            visualize_run(spec, tmp_path / "out")


def test_units_show_images_of_the_named_class(trained: Path, small_data: Path, tmp_path) -> None:
    spec = spec_of(f"checkpoint={trained}", "num_images=5", "units=2", "unit_classes=[2]")
    with run_context(spec.runtime) as run:
        net = load_net(str(trained), spec.data, run)
        split = load_split(spec, net)
        assert split is not None
        first = load_pictures(spec, net, split)
        assert any(p.label != 2 for p in first)  # the first images drawn mix the classes
        units = class_units(net, 2, split, spec, run)
    assert len(units.pictures) == 5 and all(p.label == 2 for p in units.pictures)
    # the first five of the class, in the split's order
    own = [s.image_id for s in split.samples if s.label == 2][:5]
    assert [p.name for p in units.pictures] == own
    assert [len(m) for m in units.maps] == [1 + 2] * 5  # the class's CAM, then each unit
    # through the command's job: the figure of class 2's wnid
    written = visualize_run(spec, tmp_path / "out")
    assert f"units_tiny_gap_{split.classes[2]}.png" in [p.name for p in written]
    # a split without the class's images: one line
    others = dataclasses.replace(split, samples=[s for s in split.samples if s.label != 2])
    with pytest.raises(ConfigError, match=f"no image of class {split.classes[2]}"):
        class_pictures(others, 2, 5, net.data)
    assert SMALL["val_per_class"] >= 5


def test_units_of_a_model_on_its_data(small_data: Path, tmp_path: Path) -> None:
    """A model drawn on data: the data's classes and names; units need its CAM head."""
    spec = spec_of("model=module", "model._target_=any_nets.SmallNet", f"data.root={small_data}",
                   "data.image_size=32", "data.resize_size=32", "num_images=2", "units=2",
                   "unit_classes=[1]")  # fmt: skip
    written = visualize_run(spec, tmp_path / "out")
    split = load_split(spec, None)
    assert split is not None
    names = [p.name for p in written]
    assert names[:2] == [f"cam_{s.image_id}.png" for s in split.samples[:2]]
    assert names[2:] == [f"units_SmallNet_{split.classes[1]}.png"]


@pytest.mark.slow
def test_the_command_draws_a_folder(weights, photos, tmp_path) -> None:
    done = run_command(tmp_path, "cam-visualize", "model=torchvision", "model.name=resnet18",
                       f"model.weights_path={weights}", f"images=[{photos[1]}]", *SIZE, *CPU,
                       f"dpi={DPI}", "hydra.run.dir=out")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["cam_a.png", "cam_b.png"]
