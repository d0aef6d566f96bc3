"""Connected components (8-connected) of thresholded maps, with one union-find for both uses.

- `label_components`: the components of one mask per map (the paper's box rule, in boxes.py),
  labelled by runs of kept pixels.
- `sweep_hits`: one pass over a threshold sweep: boxes of the components of {map >= t} for every
  t (MaxBoxAccV2, in wsol.py).
- `contour_sweep_hits`: the same for wsolevaluation's candidates on uint8 maps: the boxes of
  cv2.findContours' outer and hole contours of {q > c} for every cut c = 0 .. 255, without
  OpenCV (wsol.py's convention="wsolevaluation").

The sweep: the components at a lower threshold are unions of those at a higher one, so instead of
labelling the map once per threshold, pixels are added from the brightest level down and merged
into their 8-connected neighbours with a union-find (a component tree). Each component keeps its
tight inclusive box (x0, y0, x1, y1), its pixel count and its first pixel in raster order; after
each level only the components whose box grew are scored against the GT boxes again.

Levels: with thresholds t_0 < ... < t_{T-1}, a pixel of value v has level #{i : t_i <= v}, so it
belongs to the set of threshold index i iff level > i. Adding the pixels of level i + 1 (after all
higher levels) yields exactly the components of {v >= t_i}.

Everything here is compiled with numba (cache=True), and releases the GIL (nogil=True): cam-eval
runs the kernels in a scoring thread while the main thread runs the next forward pass. The caller
passes C-contiguous float32 or float64 maps (uint8 for `contour_sweep_hits`), int64 boxes and
float64 thresholds; a float32 map value is compared with the thresholds in float64 (it converts
exactly), so a float32 map gives the same result as its float64 copy, without the copy.
The kernels repeat their union and re-scoring steps inline on purpose: the same steps as small
njit helpers (inline="always"), measured side by side on the same 64 maps, made sweep_hits ~1.2x
and contour_sweep_hits ~1.3x slower. That inlining is why this module is over 500 lines (numba
kernels are the exception to the size rule): all but a few lines are the kernels, one job.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def level_table(thresholds: np.ndarray, buckets: int) -> np.ndarray:
    """(buckets + 1,) int64: table[b] = #{t < b / buckets}, a start for the search in `_level`."""
    edges = np.arange(buckets + 1, dtype=np.float64) / buckets
    return np.searchsorted(thresholds, edges, side="left").astype(np.int64)


@njit(cache=True, nogil=True)
def _level(v: float, thresholds: np.ndarray, table: np.ndarray) -> int:
    """#{t <= v}: start from the bucket table, then walk to the exact count (correct from any
    start; one or two steps when the thresholds are spread over [0, 1])."""
    buckets = table.shape[0] - 1
    b = int(v * buckets)
    b = min(max(b, 0), buckets)
    k = table[b]
    n = thresholds.shape[0]
    while k < n and thresholds[k] <= v:
        k += 1
    while k > 0 and thresholds[k - 1] > v:
        k -= 1
    return k


@njit(cache=True, nogil=True)
def level_histograms(
    maps: np.ndarray, fg: np.ndarray, bg: np.ndarray, edges: np.ndarray, table: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """np.histogram(maps[fg], bins=edges) and np.histogram(maps[bg], bins=edges), in one pass
    without sorting: maps (N, H, W) float32 or float64, fg and bg bool of the same shape, edges
    (E,) float64 strictly increasing, table = level_table(edges, ...). As numpy's: bin i holds
    edges[i] <= v < edges[i + 1], the last bin also v == edges[-1], other values are dropped;
    values compared in float64 (numpy's common type for float32 data and float64 edges)."""
    n_bins = edges.shape[0] - 1
    fg_hist = np.zeros(n_bins, dtype=np.int64)
    bg_hist = np.zeros(n_bins, dtype=np.int64)
    last = edges[n_bins]
    for n in range(maps.shape[0]):
        for y in range(maps.shape[1]):
            for x in range(maps.shape[2]):
                is_fg = fg[n, y, x]
                if not is_fg and not bg[n, y, x]:
                    continue
                v = maps[n, y, x]
                k = _level(v, edges, table)  # #{e <= v}
                if k == 0 or (k > n_bins and v != last):
                    continue
                b = min(k - 1, n_bins - 1)
                if is_fg:
                    fg_hist[b] += 1
                else:
                    bg_hist[b] += 1
    return fg_hist, bg_hist


def _ring_runs() -> np.ndarray:
    """(256, 5) int64: for each 8-bit mask of added neighbours, [count, k1, k2, ...], the ring
    positions at which a run of consecutive added neighbours starts.

    Neighbours consecutive in the ring N, NE, E, SE, S, SW, W, NW touch each other, so a run is
    already one component: one union per run (at most 4) instead of one per neighbour.
    """
    runs = np.zeros((256, 5), dtype=np.int64)
    for mask in range(1, 256):
        bits = [(mask >> k) & 1 for k in range(8)]
        starts = [k for k in range(8) if bits[k] and not bits[k - 1]] or [0]  # 255: one run
        runs[mask, 0] = len(starts)
        runs[mask, 1 : 1 + len(starts)] = starts
    return runs


RING_RUNS = _ring_runs()


@njit(cache=True, nogil=True)
def find_root(parent: np.ndarray, i: int) -> int:
    """Root of i, with path halving (no write when i's parent is the root, the common case)."""
    while True:
        up = parent[i]
        if up == i:
            return i
        top = parent[up]
        if top == up:
            return up
        parent[i] = top
        i = top


@njit(cache=True, nogil=True)
def _doubled(a: np.ndarray) -> np.ndarray:
    """`a` (int64, 1-D) copied into an array twice as long (the tail uninitialised)."""
    out = np.empty(2 * a.shape[0], dtype=np.int64)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def _label_stack(keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8-connected components of each (H, W) mask of a C-contiguous bool (N, H, W) stack.

    -> (map index (n,), box (n, 4) inclusive, pixel count (n,)), ordered by map, then by the
    components' first pixels in raster order (scipy.ndimage.label's numbering; tested equal).
    Works on runs (maximal horizontal segments of kept pixels), not pixels: a run joins every run
    of the row above that overlaps it or touches it diagonally, through a union-find over runs
    that keeps the smaller run index as the root. Runs are numbered in raster order, so a
    component's root is its first run, and its first pixel.
    """
    n_maps, height, width = keep.shape
    cap = 1024  # runs held; doubled when full
    row = np.empty(cap, dtype=np.int64)
    start = np.empty(cap, dtype=np.int64)
    stop = np.empty(cap, dtype=np.int64)  # inclusive
    parent = np.empty(cap, dtype=np.int64)
    which = np.empty(cap, dtype=np.int64)
    n_runs = 0
    for m in range(n_maps):
        above_first, above_end = n_runs, n_runs  # runs of the previous row: [first, end)
        for y in range(height):
            first = n_runs
            x = 0
            while True:
                while x < width and not keep[m, y, x]:
                    x += 1
                if x == width:
                    break
                x0 = x
                while x < width and keep[m, y, x]:
                    x += 1
                if n_runs == row.shape[0]:  # full: double every run array
                    row, start, stop = _doubled(row), _doubled(start), _doubled(stop)
                    parent, which = _doubled(parent), _doubled(which)
                r = n_runs
                n_runs += 1
                row[r], start[r], stop[r], parent[r], which[r] = y, x0, x - 1, r, m
                # Runs above that touch [x0 - 1, x] (8-connectivity): skip those left of it.
                while above_first < above_end and stop[above_first] < x0 - 1:
                    above_first += 1
                a = above_first
                while a < above_end and start[a] <= x:
                    ra, rr = find_root(parent, a), find_root(parent, r)
                    if ra < rr:
                        parent[rr] = ra
                    elif rr < ra:
                        parent[ra] = rr
                    a += 1
            above_first, above_end = first, n_runs
    # Number the components in the order of their first runs; gather boxes and sizes.
    comp = np.empty(n_runs, dtype=np.int64)
    count = 0
    for r in range(n_runs):
        if find_root(parent, r) == r:
            comp[r] = count
            count += 1
    out_which = np.empty(count, dtype=np.int64)
    boxes = np.empty((count, 4), dtype=np.int64)
    sizes = np.zeros(count, dtype=np.int64)
    for r in range(n_runs):
        root = find_root(parent, r)
        c = comp[root]
        if root == r:
            out_which[c] = which[r]
            boxes[c, 0], boxes[c, 1], boxes[c, 2], boxes[c, 3] = start[r], row[r], stop[r], row[r]
        else:
            boxes[c, 0] = min(boxes[c, 0], start[r])
            boxes[c, 2] = max(boxes[c, 2], stop[r])
            boxes[c, 3] = max(boxes[c, 3], row[r])
        sizes[c] += stop[r] - start[r] + 1
    return out_which, boxes, sizes


def label_components(keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8-connected components of a (N, H, W) bool stack (see `_label_stack`): map index (n,),
    inclusive box (n, 4) and pixel count (n,) of each, by map, then in raster order."""
    return _label_stack(np.ascontiguousarray(keep, dtype=np.bool_))


@njit(cache=True, nogil=True)
def _best_iou(x0: int, y0: int, x1: int, y1: int, gt: np.ndarray, g0: int, g1: int) -> float:
    """Max inclusive IoU of one box against gt[g0:g1] (the arithmetic of boxes.iou_matrix)."""
    best = 0.0
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    for g in range(g0, g1):
        iw = min(x1, gt[g, 2]) - max(x0, gt[g, 0]) + 1
        ih = min(y1, gt[g, 3]) - max(y0, gt[g, 1]) + 1
        if iw <= 0 or ih <= 0:
            continue
        inter = iw * ih
        union = area + (gt[g, 2] - gt[g, 0] + 1) * (gt[g, 3] - gt[g, 1] + 1) - inter
        iou = inter / union
        if iou > best:
            best = iou
    return best


@njit(cache=True, nogil=True)
def sweep_hits(
    maps: np.ndarray,
    thresholds: np.ndarray,
    table: np.ndarray,
    gt: np.ndarray,
    gt_start: np.ndarray,
    iou_thr: np.ndarray,
    all_components: bool,
    ring_runs: np.ndarray,
) -> np.ndarray:
    """Which (threshold, IoU level) pairs localize each image.

    maps (N, H, W) float32 or float64; thresholds (T,) float64 strictly increasing; table from
    `level_table`; gt (G, 4) int64 inclusive boxes, image n owning gt[gt_start[n]:gt_start[n+1]];
    iou_thr (D,) float64 (fractions, e.g. 0.5); ring_runs = RING_RUNS. Returns hits (N, T, D)
    bool: hits[n, i, j] is True iff some candidate box of {maps[n] >= thresholds[i]} has
    IoU >= iou_thr[j] with some GT box of image n. Candidates: every 8-connected component's box
    (all_components) or only the largest component's (most pixels; ties to the one whose first
    pixel in raster order comes first).
    """
    n_img, h, w = maps.shape
    n_thr = thresholds.shape[0]
    # per-pixel state in int32 (a 2^31-pixel map is out of reach): half the memory of int64,
    # fewer cache misses in the union-find's scattered accesses (~15% faster on 224 px maps)
    n_iou = iou_thr.shape[0]
    hw = h * w
    hits = np.zeros((n_img, n_thr, n_iou), dtype=np.bool_)

    level = np.empty(hw, dtype=np.int32)
    order = np.empty(hw, dtype=np.int32)  # pixels grouped by level, highest level first
    start = np.zeros(n_thr + 2, dtype=np.int64)
    # Union-find over the map padded by a one-pixel border that is never added, so neighbours
    # need no bounds checks. Padded index (y + 1) * (w + 2) + x + 1 keeps the raster order.
    wp = w + 2
    n_pad = (h + 2) * wp
    ring = np.array([-wp, -wp + 1, 1, wp + 1, wp, wp - 1, -1, -wp - 1], dtype=np.int32)
    parent = np.empty(n_pad, dtype=np.int32)  # -1: not added (yet)
    size = np.empty(n_pad, dtype=np.int32)
    first = np.empty(n_pad, dtype=np.int32)  # smallest padded index in the component
    bx0 = np.empty(n_pad, dtype=np.int32)  # the component's box, in map coordinates
    by0 = np.empty(n_pad, dtype=np.int32)
    bx1 = np.empty(n_pad, dtype=np.int32)
    by1 = np.empty(n_pad, dtype=np.int32)
    iou = np.empty(n_pad, dtype=np.float64)  # score of the root's box when it was last scored
    scored = np.empty(n_pad, dtype=np.bool_)  # the root's iou is counted in `alive_hits`
    stamp = np.empty(n_pad, dtype=np.int32)  # last level at which the root was queued
    dirty = np.empty(hw, dtype=np.int32)  # roots whose box grew during the current level
    alive_hits = np.zeros(n_iou, dtype=np.int32)  # live roots with iou >= iou_thr[j]

    for n in range(n_img):
        g0 = gt_start[n]
        g1 = gt_start[n + 1]
        m = maps[n]

        # counting sort of the pixels by level, descending; raster order within a level
        start[:] = 0
        for y in range(h):
            for x in range(w):
                k = _level(m[y, x], thresholds, table)
                level[y * w + x] = k
                start[n_thr - k + 1] += 1
        for k in range(1, n_thr + 2):
            start[k] += start[k - 1]
        for p in range(hw):
            slot = n_thr - level[p]
            order[start[slot]] = p
            start[slot] += 1
        # start[slot] is now the end of slot `slot`; slot s holds level n_thr - s

        parent[:] = -1
        stamp[:] = -1
        alive_hits[:] = 0
        best = -1  # largest live root (all_components=False)
        pos = 0
        for i in range(n_thr - 1, -1, -1):  # threshold index; add the pixels of level i + 1
            end = start[n_thr - (i + 1)]
            n_dirty = 0
            while pos < end:
                py = order[pos] // w
                px = order[pos] - py * w
                pos += 1
                p = (py + 1) * wp + px + 1
                parent[p] = p
                size[p] = 1
                first[p] = p
                bx0[p] = px
                bx1[p] = px
                by0[p] = py
                by1[p] = py
                scored[p] = False
                stamp[p] = i
                dirty[n_dirty] = p
                n_dirty += 1
                if not all_components and (best < 0 or (size[best] == 1 and first[best] > p)):
                    best = p
                mask = 0
                for k in range(8):
                    mask |= (parent[p + ring[k]] >= 0) << k
                root = p  # p's root, kept up to date through the merges below
                for r in range(ring_runs[mask, 0]):
                    b = find_root(parent, p + ring[ring_runs[mask, 1 + r]])
                    if b == root:
                        continue
                    a = root
                    if size[a] > size[b]:  # the larger (or the older, on ties) stays root
                        a, b = b, a
                    root = b
                    # merge a into b
                    parent[a] = b
                    size[b] += size[a]
                    first[b] = min(first[b], first[a])
                    grew = False
                    if bx0[a] < bx0[b]:
                        bx0[b] = bx0[a]
                        grew = True
                    if by0[a] < by0[b]:
                        by0[b] = by0[a]
                        grew = True
                    if bx1[a] > bx1[b]:
                        bx1[b] = bx1[a]
                        grew = True
                    if by1[a] > by1[b]:
                        by1[b] = by1[a]
                        grew = True
                    if all_components:
                        if scored[a]:
                            for j in range(n_iou):
                                if iou[a] >= iou_thr[j]:
                                    alive_hits[j] -= 1
                        if grew and stamp[b] != i:
                            stamp[b] = i
                            dirty[n_dirty] = b
                            n_dirty += 1
                    elif best in (a, b):
                        best = b  # b now outgrows every other component
                    elif size[b] > size[best] or (size[b] == size[best] and first[b] < first[best]):
                        best = b

            if all_components:
                for d in range(n_dirty):
                    r = dirty[d]
                    if parent[r] != r:
                        continue  # merged into another root later in this level
                    if scored[r]:
                        for j in range(n_iou):
                            if iou[r] >= iou_thr[j]:
                                alive_hits[j] -= 1
                    iou[r] = _best_iou(bx0[r], by0[r], bx1[r], by1[r], gt, g0, g1)
                    scored[r] = True
                    for j in range(n_iou):
                        if iou[r] >= iou_thr[j]:
                            alive_hits[j] += 1
                for j in range(n_iou):
                    hits[n, i, j] = alive_hits[j] > 0
            elif best >= 0:
                score = _best_iou(bx0[best], by0[best], bx1[best], by1[best], gt, g0, g1)
                for j in range(n_iou):
                    hits[n, i, j] = score >= iou_thr[j]
    return hits


@njit(cache=True, nogil=True)
def _contour_box_iou(
    x0: int, y0: int, x1: int, y1: int, w: int, h: int, gt: np.ndarray, g0: int, g1: int
) -> float:
    """IoU of a contour's box in wsolevaluation's rule: cv2.boundingRect's (x, y, w, h) of a
    contour whose pixels span x0..x1, y0..y1 is (x0, y0, x1 - x0 + 1, y1 - y0 + 1), and their box
    (x, y, min(x + w, W - 1), min(y + h, H - 1)) is one pixel wider and taller, clipped."""
    return _best_iou(x0, y0, min(x1 + 1, w - 1), min(y1 + 1, h - 1), gt, g0, g1)


@njit(cache=True, nogil=True)
def contour_sweep_hits(
    quantised: np.ndarray,
    gt: np.ndarray,
    gt_start: np.ndarray,
    iou_thr: np.ndarray,
    ring_runs: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Which (cut, IoU level) pairs localize each image under wsolevaluation's every-contour rule.

    quantised (N, H, W) uint8 (their `(scoremap * 255).astype(np.uint8)`); gt, gt_start, iou_thr
    as for `sweep_hits`. Returns hits (N, 256, D) bool: hits[n, c, j] is True iff a candidate box
    of the binary map {quantised[n] > c} has IoU >= iou_thr[j] with a GT box of image n; and
    contours (N, 256) int64, how many contours findContours returns for it.
    Candidates are the boxes of the contours cv2.findContours(RETR_TREE) returns, without
    tracing them:
    - outer contours: one per 8-connected component of {q > c}; box `_contour_box_iou`'s;
    - hole contours: one per 4-connected component of {q <= c} that does not touch the image
      border; the contour runs through the foreground pixels 4-adjacent to the hole, so its
      pixels span the hole's box grown by one pixel on each side;
    - no contour (no pixel > c): the box (0, 0, 0, 0).
    Two sweeps: the foreground grows as c falls (8-connected union-find, as in `sweep_hits`), the
    background grows as c rises (4-connected); each keeps a count of its live candidates at or
    above each IoU level, updated only for the components whose box grew.
    """
    n_img, h, w = quantised.shape
    n_iou = iou_thr.shape[0]
    hw = h * w
    hits = np.zeros((n_img, 256, n_iou), dtype=np.bool_)
    contours = np.zeros((n_img, 256), dtype=np.int64)

    order = np.empty(hw, dtype=np.int64)  # pixels by value, ascending; raster order within
    bucket = np.zeros(257, dtype=np.int64)  # value v holds order[bucket[v]:bucket[v + 1]]
    fill = np.empty(256, dtype=np.int64)
    wp = w + 2  # padded grid, as in sweep_hits: the border is never added
    n_pad = (h + 2) * wp
    ring = np.array([-wp, -wp + 1, 1, wp + 1, wp, wp - 1, -1, -wp - 1])  # N, NE, ..., NW
    cross = np.array([-wp, -1, 1, wp])  # N, W, E, S
    parent = np.empty(n_pad, dtype=np.int64)  # -1: not added (yet)
    size = np.empty(n_pad, dtype=np.int64)
    bx0 = np.empty(n_pad, dtype=np.int64)
    by0 = np.empty(n_pad, dtype=np.int64)
    bx1 = np.empty(n_pad, dtype=np.int64)
    by1 = np.empty(n_pad, dtype=np.int64)
    iou = np.empty(n_pad, dtype=np.float64)
    scored = np.empty(n_pad, dtype=np.bool_)
    stamp = np.empty(n_pad, dtype=np.int64)
    dirty = np.empty(hw, dtype=np.int64)
    alive_hits = np.zeros(n_iou, dtype=np.int64)

    for n in range(n_img):
        g0 = gt_start[n]
        g1 = gt_start[n + 1]
        q = quantised[n]
        empty_iou = _best_iou(0, 0, 0, 0, gt, g0, g1)

        bucket[:] = 0
        for y in range(h):
            for x in range(w):
                bucket[q[y, x] + 1] += 1
        for v in range(256):
            bucket[v + 1] += bucket[v]
            fill[v] = bucket[v]
        for y in range(h):
            for x in range(w):
                v = q[y, x]
                order[fill[v]] = y * w + x
                fill[v] += 1

        # Outer contours: at cut c the pixels of value c + 1 join {q > c}.
        parent[:] = -1
        stamp[:] = -1
        alive_hits[:] = 0
        n_outer = 0  # live components
        for c in range(255, -1, -1):
            n_dirty = 0
            if c < 255:
                for pos in range(bucket[c + 1], bucket[c + 2]):
                    py = order[pos] // w
                    px = order[pos] - py * w
                    p = (py + 1) * wp + px + 1
                    parent[p] = p
                    size[p] = 1
                    bx0[p] = px
                    bx1[p] = px
                    by0[p] = py
                    by1[p] = py
                    scored[p] = False
                    stamp[p] = c
                    dirty[n_dirty] = p
                    n_dirty += 1
                    n_outer += 1
                    mask = 0
                    for k in range(8):
                        mask |= (parent[p + ring[k]] >= 0) << k
                    root = p
                    for r in range(ring_runs[mask, 0]):
                        b = find_root(parent, p + ring[ring_runs[mask, 1 + r]])
                        if b == root:
                            continue
                        a = root
                        if size[a] > size[b]:
                            a, b = b, a
                        root = b
                        parent[a] = b
                        size[b] += size[a]
                        n_outer -= 1
                        grew = False
                        if bx0[a] < bx0[b]:
                            bx0[b] = bx0[a]
                            grew = True
                        if by0[a] < by0[b]:
                            by0[b] = by0[a]
                            grew = True
                        if bx1[a] > bx1[b]:
                            bx1[b] = bx1[a]
                            grew = True
                        if by1[a] > by1[b]:
                            by1[b] = by1[a]
                            grew = True
                        if scored[a]:
                            for j in range(n_iou):
                                if iou[a] >= iou_thr[j]:
                                    alive_hits[j] -= 1
                        if grew and stamp[b] != c:
                            stamp[b] = c
                            dirty[n_dirty] = b
                            n_dirty += 1
            for d in range(n_dirty):
                r = dirty[d]
                if parent[r] != r:
                    continue
                if scored[r]:
                    for j in range(n_iou):
                        if iou[r] >= iou_thr[j]:
                            alive_hits[j] -= 1
                iou[r] = _contour_box_iou(bx0[r], by0[r], bx1[r], by1[r], w, h, gt, g0, g1)
                scored[r] = True
                for j in range(n_iou):
                    if iou[r] >= iou_thr[j]:
                        alive_hits[j] += 1
            contours[n, c] = n_outer
            if n_outer == 0:  # no pixel > c: no contour at all
                for j in range(n_iou):
                    hits[n, c, j] = empty_iou >= iou_thr[j]
            else:
                for j in range(n_iou):
                    hits[n, c, j] = alive_hits[j] > 0

        # Hole contours: at cut c the pixels of value c join the background {q <= c}.
        parent[:] = -1
        stamp[:] = -1
        alive_hits[:] = 0
        n_holes = 0  # live components away from the border: the scored ones
        for c in range(256):
            n_dirty = 0
            for pos in range(bucket[c], bucket[c + 1]):
                py = order[pos] // w
                px = order[pos] - py * w
                p = (py + 1) * wp + px + 1
                parent[p] = p
                size[p] = 1
                bx0[p] = px
                bx1[p] = px
                by0[p] = py
                by1[p] = py
                scored[p] = False
                stamp[p] = c
                dirty[n_dirty] = p
                n_dirty += 1
                root = p
                for k in range(4):
                    if parent[p + cross[k]] < 0:
                        continue
                    b = find_root(parent, p + cross[k])
                    if b == root:
                        continue
                    a = root
                    if size[a] > size[b]:
                        a, b = b, a
                    root = b
                    parent[a] = b
                    size[b] += size[a]
                    grew = False
                    if bx0[a] < bx0[b]:
                        bx0[b] = bx0[a]
                        grew = True
                    if by0[a] < by0[b]:
                        by0[b] = by0[a]
                        grew = True
                    if bx1[a] > bx1[b]:
                        bx1[b] = bx1[a]
                        grew = True
                    if by1[a] > by1[b]:
                        by1[b] = by1[a]
                        grew = True
                    if scored[a]:
                        n_holes -= 1
                        for j in range(n_iou):
                            if iou[a] >= iou_thr[j]:
                                alive_hits[j] -= 1
                    if grew and stamp[b] != c:
                        stamp[b] = c
                        dirty[n_dirty] = b
                        n_dirty += 1
            for d in range(n_dirty):
                r = dirty[d]
                if parent[r] != r:
                    continue
                if scored[r]:
                    for j in range(n_iou):
                        if iou[r] >= iou_thr[j]:
                            alive_hits[j] -= 1
                    scored[r] = False
                    n_holes -= 1
                # a component touches the image border iff its box does; such a background
                # component is no hole now, nor at any higher cut
                if bx0[r] == 0 or by0[r] == 0 or bx1[r] == w - 1 or by1[r] == h - 1:
                    continue
                iou[r] = _contour_box_iou(
                    bx0[r] - 1, by0[r] - 1, bx1[r] + 1, by1[r] + 1, w, h, gt, g0, g1
                )
                scored[r] = True
                n_holes += 1
                for j in range(n_iou):
                    if iou[r] >= iou_thr[j]:
                        alive_hits[j] += 1
            contours[n, c] += n_holes
            for j in range(n_iou):
                if alive_hits[j] > 0:
                    hits[n, c, j] = True
    return hits, contours
