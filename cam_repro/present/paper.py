"""The paper's numbers (Zhou et al., Learning Deep Features for Discriminative Localization, CVPR
2016), each with its table, and the paper's row order; and the WSOL methods' published numbers
under one protocol (Choe et al. 2020, `WSOL_PUBLISHED`). The only copy of either in the code.

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


# --- the WSOL methods under one protocol (table_methods.md) -------------------------------------

WSOL_CITATION = (
    'Choe et al., "Evaluating Weakly Supervised Object Localization Methods Right", CVPR 2020 / '
    "TPAMI 2022 (arXiv 2001.07437), the main results table (main_table.png in "
    "clovaai/wsolevaluation's README): test split, last checkpoints, each method's "
    "hyperparameters tuned on the train-fullsup split"
)
WSOL_BACKBONES = ("VGG", "Inception", "ResNet")
# The zoo variants shown beside wsolevaluation's backbones (their VGG16, InceptionV3 and ResNet50
# with a CAM head): our GoogLeNet-GAP is the zoo's nearest to their InceptionV3, not the same net.
WSOL_BACKBONE_OF = {"vgg16_gap": "VGG", "googlenet_gap": "Inception", "resnet50_gap": "ResNet"}
# WSOL_CITATION's numbers as published, per (dataset, metric): {method: (VGG, Inception,
# ResNet)}; CAM's absolute, every other method's its published difference from CAM (a rounded
# difference: never added to CAM's here). ACoL's CUB ResNet is printed "3.5", without a sign.
WSOL_PUBLISHED: dict[tuple[str, str], dict[str, tuple[float, float, float]]] = {
    ("ImageNet", "MaxBoxAccV2"): {
        "cam": (60.0, 63.4, 63.7),
        "has": (+0.6, +0.3, -0.3),
        "acol": (-2.6, +0.3, -1.4),
        "spg": (-0.1, -0.1, -0.4),
        "adl": (-0.2, -2.0, +0.0),
        "cutmix": (-0.6, +0.5, -0.4),
    },
    ("CUB", "MaxBoxAccV2"): {
        "cam": (63.7, 56.7, 63.0),
        "has": (+0.0, -3.3, +1.7),
        "acol": (-6.3, -0.5, +3.5),
        "spg": (-7.4, -0.8, -2.6),
        "adl": (+2.6, +2.1, -4.6),
        "cutmix": (-1.4, +0.8, -0.2),
    },
    ("OpenImages", "PxAP"): {
        "cam": (58.3, 63.2, 58.5),
        "has": (-0.2, -5.1, -2.6),
        "acol": (-4.0, -6.0, -1.2),
        "spg": (+0.0, -0.9, -1.8),
        "adl": (+0.4, -6.4, -3.3),
        "cutmix": (-0.2, -0.7, -0.8),
    },
}


def wsol_published(dataset: str, metric: str, method: str, backbone: str) -> str | None:
    """A WSOL_PUBLISHED cell as printed: CAM's absolute value ('60.0'), another method's signed
    difference from CAM ('+0.6', '-2.6'); None where nothing is published."""
    values = WSOL_PUBLISHED.get((dataset, metric), {}).get(method)
    if values is None or backbone not in WSOL_BACKBONES:
        return None
    value = values[WSOL_BACKBONES.index(backbone)]
    return f"{value:.1f}" if method == "cam" else f"{value:+.1f}"
