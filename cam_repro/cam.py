"""Public API: class activation maps (Zhou et al. 2016, eq. 2) of any classifier that ends in
global pooling and one linear layer, Grad-CAM and the Backprop baseline.

A stable name for code outside the package; the functions live in cam_repro.localize (cam.py,
layers.py, gradcam.py).
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
from cam_repro.localize.gradcam import GradCAMLayerError, grad_cam
from cam_repro.localize.layer_net import LayerCAMNet
from cam_repro.localize.layers import CAMLayers, cam_layers, find_cam_layers

__all__ = [
    "CAMLayers",
    "CAMNetwork",
    "CAMOutput",
    "CAMUnavailableError",
    "GradCAMLayerError",
    "LayerCAMNet",
    "LinearHead",
    "backprop_saliency",
    "cam_layers",
    "cam_model",
    "class_activation_maps",
    "find_cam_layers",
    "grad_cam",
    "predict_with_cams",
    "upsample_cams",
]
