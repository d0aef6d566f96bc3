"""Public API: the paper's classification and localization errors (top-1/top-5, GT-known) and
the pointing game, and the later WSOL metrics, MaxBoxAccV2 and PxAP (Choe et al., CVPR 2020).

A stable name for code outside the package; the functions live in cam_repro.localize.loc_error,
cam_repro.localize.wsol and cam_repro.localize.pxap.
"""

from cam_repro.localize.loc_error import (
    IOU_THRESHOLD,
    OUTCOMES,
    best_ious,
    error_rates,
    image_outcomes,
    map_peaks,
    points_in_boxes,
)
from cam_repro.localize.pxap import PxAPMeter, pxap
from cam_repro.localize.wsol import (
    CONVENTIONS,
    BoxAccMeter,
    max_box_acc,
    resize_boxes_wsolevaluation,
    wsolevaluation_thresholds,
)

__all__ = [
    "CONVENTIONS",
    "IOU_THRESHOLD",
    "OUTCOMES",
    "BoxAccMeter",
    "PxAPMeter",
    "best_ious",
    "error_rates",
    "image_outcomes",
    "map_peaks",
    "max_box_acc",
    "points_in_boxes",
    "pxap",
    "resize_boxes_wsolevaluation",
    "wsolevaluation_thresholds",
]
