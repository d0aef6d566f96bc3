"""Pure math on tensors and arrays: class activation maps, boxes, connected components, the
paper's errors, MaxBoxAccV2 and PxAP, CAM overlays. No I/O, no configs."""
