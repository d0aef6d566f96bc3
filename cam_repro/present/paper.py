"""The paper's numbers (Zhou et al., Learning Deep Features for Discriminative Localization, CVPR
2016), each with its table, and the paper's row order; the only copy in the code.

cam-report shows them beside ours (`PAPER_CHOICES`: auto, on the paper's data only; true; false).
Keys are our paper names (cam_repro.models.config.paper_name); the paper gives no numbers for
Section 4.2 (pattern discovery).
"""

from __future__ import annotations

# Table 1, ILSVRC 2012 val, classification error % (top-1, top-5). "Backprop on X" is cam-eval
# localizer=backprop; "Grad-CAM on X" (localizer=gradcam) has no paper numbers: Grad-CAM came
# after the paper.
PAPER_TABLE1: dict[str, tuple[float, float]] = {
    "VGGnet-GAP": (33.4, 12.2),
    "GoogLeNet-GAP": (35.0, 13.2),
    "AlexNet*-GAP": (44.9, 20.9),
    "AlexNet-GAP": (51.1, 26.3),
    "GoogLeNet-GMP": (35.6, 13.9),
    "VGGnet": (31.2, 11.4),
    "GoogLeNet": (31.9, 11.3),
    "AlexNet": (42.6, 19.5),
    "NIN": (41.9, 19.6),
}
# Table 2, ILSVRC 2012 val, localization error % (top-1, top-5; GoogLeNet: CAM at 7x7).
PAPER_TABLE2: dict[str, tuple[float, float]] = {
    "GoogLeNet-GAP": (56.40, 43.00),
    "VGGnet-GAP": (57.20, 45.14),
    "GoogLeNet": (60.09, 49.34),
    "AlexNet*-GAP": (63.75, 49.53),
    "AlexNet-GAP": (67.19, 52.16),
    "NIN": (65.47, 54.19),
    "Backprop on GoogLeNet": (61.31, 50.55),
    "Backprop on VGGnet": (61.12, 51.46),
    "Backprop on AlexNet": (65.17, 52.64),
    "GoogLeNet-GMP": (57.78, 45.26),
}
# Section 4.1 and its fine-grained table (Table 5 in arXiv 1512.04150): CUB-200-2011, a linear SVM
# on GoogLeNet-GAP's GAP features, accuracy % on the full image ("full"), the CAM crop ("cam") and
# the ground-truth box ("gt"); "iou50": % of test images whose CAM box has IoU >= 0.5 with the
# ground-truth box (Section 4.1's text). Keys are the tables' row models: paper name + features.
PAPER_FINEGRAINED: dict[str, dict[str, float]] = {
    "GoogLeNet-GAP gap": {"full": 63.0, "cam": 67.8, "gt": 70.5, "iou50": 41.0},
}
# The paper's generic-features table (Section 4: SUN397, MIT Indoor67, Scene15, SUN Attribute,
# Caltech101, Caltech256, Stanford Action40, UIUC Event8; rows AlexNet fc7, GoogLeNet avgpool,
# GoogLeNet-GAP gap), accuracy %. Empty on purpose: no copy of the paper's text was at hand to
# check its numbers against, and none is quoted from memory. To add one, check it against the
# paper and key it by (the dataset's name as cam-features writes data.name, the row's model):
# ("SUN397", "GoogLeNet-GAP gap"): ACCURACY. table_generic shows each as a "(paper)" row.
PAPER_GENERIC: dict[tuple[str, str], float] = {}
_CUB = PAPER_FINEGRAINED["GoogLeNet-GAP gap"]
# The paper's other figures, quoted in reports' notes: ILSVRC test top-5 localization error and
# CUB-200-2011 accuracy from GoogLeNet-GAP features.
PAPER_NOTES = (
    "Paper, ILSVRC 2014 test top-5 loc. error: GoogLeNet-GAP 42.9 (37.1 with the two-box "
    "heuristic), Backprop 46.4; fully supervised GoogLeNet 26.7, OverFeat 29.9, AlexNet 34.2. "
    f"CUB-200-2011 (GoogLeNet-GAP features): {_CUB['full']:.1f}% accuracy on the full image, "
    f"{_CUB['cam']:.1f}% on the CAM crop, {_CUB['gt']:.1f}% on the ground-truth box."
)

PAPER_CHOICES = ("auto", "true", "false")  # show the paper's numbers: auto = on its data only
# Row order: the paper's rows first, in its order (Tables 2 then 1); then ours by name.
PAPER_ORDER = list(dict.fromkeys([*PAPER_TABLE2, *PAPER_TABLE1]))
# The generic-features table's rows, in the paper's order (paper name + features kind).
PAPER_FEATURES_ORDER = ["AlexNet fc7", "GoogLeNet avgpool", "GoogLeNet-GAP gap"]


def paper_rank(name: str) -> tuple[int, str]:
    """Where a model's rows go: the paper's rows in its order, then ours by name."""
    return (PAPER_ORDER.index(name), "") if name in PAPER_ORDER else (len(PAPER_ORDER), name)
