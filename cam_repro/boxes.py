"""Public API: boxes from class activation maps (the paper's rule and the release's), IoU, and
scaling between image sizes; inclusive (x0, y0, x1, y1) pixel boxes throughout.

A stable name for code outside the package; the functions live in cam_repro.localize.boxes.
"""

from cam_repro.localize.boxes import (
    BOX_RULES,
    NORMALIZE,
    BoxRule,
    box_area,
    box_from_cam,
    boxes_from_cam,
    component_boxes,
    frame_boxes,
    iou,
    iou_matrix,
    largest_component_boxes,
    normalize_maps,
    release_boxes,
    scale_boxes,
)

__all__ = [
    "BOX_RULES",
    "NORMALIZE",
    "BoxRule",
    "box_area",
    "box_from_cam",
    "boxes_from_cam",
    "component_boxes",
    "frame_boxes",
    "iou",
    "iou_matrix",
    "largest_component_boxes",
    "normalize_maps",
    "release_boxes",
    "scale_boxes",
]
