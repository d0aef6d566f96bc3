"""Binary textures of the synthetic benchmark: periodic patterns a few pixels across.

A texture is a pattern of two colours; colours are drawn per object, so a texture is known by its
geometry alone (a pattern and its colour-swapped twin are the same texture, and none of the list
is another's twin). Periods are 2-8 px, so an 8-px cell shows at least one full period.
The first `body_textures` of the list are the shared body textures; the class key textures
follow them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Pattern = Callable[[np.ndarray, np.ndarray], np.ndarray]

TEXTURES: tuple[tuple[str, Pattern], ...] = (
    ("hstripes4", lambda y, x: (y // 2) % 2 == 0),
    ("vstripes4", lambda y, x: (x // 2) % 2 == 0),
    ("diagonal4", lambda y, x: ((x + y) // 2) % 2 == 0),
    ("checker2", lambda y, x: (x // 2 + y // 2) % 2 == 0),
    ("dots4", lambda y, x: (x % 4 < 2) & (y % 4 < 2)),
    ("antidiagonal4", lambda y, x: ((x - y) // 2) % 2 == 0),
    ("hstripes2", lambda y, x: y % 2 == 0),
    ("vstripes2", lambda y, x: x % 2 == 0),
    ("checker1", lambda y, x: (x + y) % 2 == 0),
    ("grid4", lambda y, x: (x % 4 == 0) | (y % 4 == 0)),
    ("hlines3", lambda y, x: y % 3 == 0),
    ("vlines3", lambda y, x: x % 3 == 0),
    ("dlines3", lambda y, x: (x + y) % 3 == 0),
    ("alines3", lambda y, x: (x - y) % 3 == 0),
    ("dots3", lambda y, x: (x % 3 == 0) & (y % 3 == 0)),
    ("diagrid4", lambda y, x: ((x + y) % 4 == 0) | ((x - y) % 4 == 0)),
    ("hstripes6", lambda y, x: (y // 3) % 2 == 0),
    ("vstripes6", lambda y, x: (x // 3) % 2 == 0),
    ("bricks", lambda y, x: (y % 4 == 0) | ((x + 2 * ((y // 4) % 2)) % 4 == 0)),
    ("plain", lambda y, x: np.zeros(np.broadcast(y, x).shape, dtype=bool)),
)
TEXTURE_NAMES = tuple(name for name, _ in TEXTURES)
MAX_PHASE = 24  # a multiple of every period above (2, 3, 4, 6, 8)


def texture_bank(size: int) -> np.ndarray:
    """(T, size + MAX_PHASE, size + MAX_PHASE) float32 0/1: every texture over a padded canvas, so
    an object with phase (py, px) reads its pattern at [t, y + py, x + px]."""
    side = size + MAX_PHASE
    y, x = np.mgrid[0:side, 0:side]
    return np.stack([np.broadcast_to(f(y, x), (side, side)) for _, f in TEXTURES]).astype(
        np.float32
    )
