"""Public API: the paper's classification and localization errors (top-1/top-5, GT-known) and
the later WSOL metrics, MaxBoxAccV2 and PxAP (Choe et al., CVPR 2020).

A stable name for code outside the package; the functions live in cam_repro.localize.loc_error
and cam_repro.localize.wsol.
"""

from cam_repro.localize.loc_error import (
    IOU_THRESHOLD,
    OUTCOMES,
    best_ious,
    error_rates,
    image_outcomes,
)
from cam_repro.localize.wsol import BoxAccMeter, PxAPMeter, max_box_acc, pxap

__all__ = [
    "IOU_THRESHOLD",
    "OUTCOMES",
    "BoxAccMeter",
    "PxAPMeter",
    "best_ious",
    "error_rates",
    "image_outcomes",
    "max_box_acc",
    "pxap",
]
