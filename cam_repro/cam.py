"""Public API: class activation maps (Zhou et al. 2016, eq. 2) and the Backprop baseline.

A stable name for code outside the package; the functions live in cam_repro.localize.cam.
"""

from cam_repro.localize.cam import (
    CAMNetwork,
    CAMOutput,
    CAMUnavailableError,
    LinearHead,
    backprop_saliency,
    cam_model,
    class_activation_maps,
    predict_with_cams,
    upsample_cams,
)

__all__ = [
    "CAMNetwork",
    "CAMOutput",
    "CAMUnavailableError",
    "LinearHead",
    "backprop_saliency",
    "cam_model",
    "class_activation_maps",
    "predict_with_cams",
    "upsample_cams",
]
