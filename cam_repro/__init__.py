"""cam-repro: Class Activation Mapping (Zhou et al., CVPR 2016), reproduced.

The layers and each module's job: docs/architecture.md.
"""
