"""Datasets: ILSVRC (both on-disk layouts), CUB-200-2011, and the embedded synthetic benchmark.

Every reader returns a `DataSplit` whose samples carry the label, the original image size and all
ground-truth boxes in 0-based inclusive pixel coordinates of the original image.
"""

from __future__ import annotations

from cam_repro.runtime.lazy import lazy_exports

# name -> the submodule it lives in, imported on first use (the synthetic generator and the
# config schemas need no torch)
_EXPORTS = {
    "IMAGENET_MEAN": "config",
    "IMAGENET_STD": "config",
    "ImageCheck": "check",
    "check_images": "check",
    "DataConfig": "config",
    "data_config": "config",
    "LocalizationDataset": "dataset",
    "collate_skipping": "dataset",
    "DataSplit": "samples",
    "Sample": "samples",
    "load_image": "samples",
    "dataset_kind": "splits",
    "read_split": "splits",
    "eval_transform": "transforms",
    "model_input": "transforms",
    "normalize": "transforms",
    "train_transform": "transforms",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
