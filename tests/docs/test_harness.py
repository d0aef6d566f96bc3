"""The doc-test harness on a small markdown page: each kind of block runs, composes, skips or
fails as docs/README.md says."""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.outcomes import Skipped
from sybil import Sybil

from tests.docs.parser import DocsParser
from tests.docs.shell import ShellPlace, write_shims
from tests.docs.small import with_small

PAGE = """# A page

Runs, with the small settings (train_per_class=300 becomes 16), a continued line, a comment
and a chain:

```bash
cam-synth out=data/mini num_classes=2 train_per_class=300 \\
    val_per_class=50   # the example's sizes
test -x "$(which cam-synth)" && echo ran > ran.txt
```

```python
from pathlib import Path

seen = Path("ran.txt").read_text().strip()
```

```python
assert seen == "ran"
Path("python.txt").write_text(seen)
```

<!-- docs: compose (needs ILSVRC) -->
```bash
torchrun --nproc_per_node=8 $(which cam-train) model=vgg16_gap data=imagenet \\
    data.root=/data/ILSVRC2012 optim=sgd trainer.epochs=6
cam-eval -m checkpoint=RUN/checkpoints/last.pt threshold=0.1,0.2
```

<!-- docs: skip (a Slurm cluster) -->
```bash
sbatch job.sh
```

```text
not run
```

A marker quoted in running text, `<!-- docs: skip (reason) -->`, is no marker.
"""


class Folder:
    """A document folder without the shared workspace: an empty working folder."""

    def __init__(self, root: Path) -> None:
        for sub in ("work", "home", "tmp"):
            (root / sub).mkdir(parents=True)
        self._place = ShellPlace(
            root / "work", root / "home", root / "tmp", write_shims(root / "s")
        )

    def place(self) -> ShellPlace:
        return self._place


def examples(tmp_path: Path, text: str) -> list:
    page = tmp_path / "page.md"
    page.write_text(text)
    document = Sybil(parsers=[DocsParser()]).parse(page)
    document.namespace["docs_folder"] = Folder(tmp_path / "folder")
    return list(document.examples())


def outcome(example) -> str:
    try:
        example.evaluate()
    except Skipped as skip:
        return f"skipped: {skip.msg}"
    except AssertionError as err:
        return f"failed: {err}"
    return "passed"


def test_each_kind_of_block(tmp_path: Path) -> None:
    found = examples(tmp_path, PAGE)
    outcomes = [outcome(example) for example in found]
    # the ```text block is no example; everything else passes or is skipped
    assert outcomes == ["passed"] * 4 + ["skipped: docs: skip (a Slurm cluster)"]
    work = tmp_path / "folder" / "work"
    # small settings replaced the example's 300 train images per class
    train = list((work / "data/mini/ILSVRC/Data/CLS-LOC/train").rglob("*.JPEG"))
    assert len(train) == 2 * 16
    assert (work / "python.txt").read_text() == "ran"  # python blocks: one namespace, in work/


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        # a mistyped key fails composition (nothing runs)
        (
            "<!-- docs: compose (needs ILSVRC) -->\n```bash\ncam-train trainer.epoch=2\n```\n",
            "trainer.epoch",
        ),
        # a compose block must hold cam-* commands only
        ("<!-- docs: compose (needs data) -->\n```bash\nsbatch x.sh\n```\n", "not a cam-* command"),
        ("<!-- docs: skip -->\n```bash\nls\n```\n", "bad marker"),  # no reason
        ("<!-- docs: later (soon) -->\n```bash\nls\n```\n", "bad marker"),  # unknown marker
        ("<!-- docs: skip (x) -->\n\ntext\n\n```bash\nls\n```\n", "right before"),  # astray
        ("```\nuntagged\n```\n", "untagged fence"),
        ("<!-- docs: skip (x) -->\n```text\nout\n```\n", "marker on a ```text"),
    ],
)
def test_marker_and_compose_errors(tmp_path: Path, block: str, expected: str) -> None:
    results = [outcome(example) for example in examples(tmp_path, block)]
    assert any(r.startswith("failed") and expected in r for r in results), results


def test_failing_bash_block_names_the_command(tmp_path: Path) -> None:
    page = "```bash\necho fine\nls no-such-folder\necho never\n```\n"
    (result,) = [outcome(example) for example in examples(tmp_path, page)]
    assert result.startswith("failed")
    assert "failed: ls no-such-folder" in result  # the command
    assert "No such file or directory" in result  # its stderr
    assert "never" not in result


def test_small_settings_replace_the_examples_keys() -> None:
    args = with_small("cam-train", ["-m", "model=tiny_gap,tiny_gmp", "+trainer.epochs=8"])
    assert args == ["-m", "model=tiny_gap,tiny_gmp", "trainer.epochs=1", "runtime.progress=false"]
    assert with_small("cam-report", ["runs=[a]"]) == ["runs=[a]"]
    # after the first run of overrides, where Hydra's argparse takes them
    args = with_small("cam-train", ["hydra/launcher=slurm", "--cfg", "hydra", "-p", "x"])
    assert args[:3] == ["hydra/launcher=slurm", "trainer.epochs=1", "runtime.progress=false"]
    assert with_small("cam-train", ["--help"]) == [
        "trainer.epochs=1",
        "runtime.progress=false",
        "--help",
    ]
