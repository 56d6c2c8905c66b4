"""Known mistakes of the vision exercise, as numbers: an independent Manhattan decay mask with
switches."""

from __future__ import annotations

from functools import partial

import numpy as np

from .mistake import Mistake


def decay_mask(c, distance="manhattan", offset=0, causal=False):
    """manhattan_decay_mask's output on the case's grid, with the switches set as a mistake
    would."""
    n_y, n_x, gamma = c["n_y"], c["n_x"], np.asarray(c["gamma"], dtype=float)
    n = np.arange(n_y * n_x)
    y, x = n // n_x, n % n_x
    dy, dx = np.abs(y[:, None] - y[None, :]), np.abs(x[:, None] - x[None, :])
    dist = {"manhattan": dy + dx, "euclidean": np.sqrt(dy ** 2 + dx ** 2),
            "chebyshev": np.maximum(dy, dx), "raster": np.abs(n[:, None] - n[None, :]),
            "squared": dy ** 2 + dx ** 2}[distance]
    Gamma = gamma[:, None, None] ** (dist + offset)
    return {"Gamma": np.tril(Gamma) if causal else Gamma}


MANHATTAN_MISTAKES = (
    Mistake("the straight-line (Euclidean) distance instead of |dy| + |dx|", "(V.4)",
            "how many steps along rows and columns lie between two patches?",
            partial(decay_mask, distance="euclidean")),
    Mistake("the larger of |dy| and |dx| (Chebyshev distance) instead of their sum", "(V.4)",
            "a diagonal neighbour is two steps away, not one",
            partial(decay_mask, distance="chebyshev")),
    Mistake("the 1-D distance |n - m| along the raster order", "(V.4)",
            "the patch below is n_x tokens later in raster order but only one row away",
            partial(decay_mask, distance="raster")),
    Mistake("squared distances dy^2 + dx^2", "(V.4)",
            "gamma^(a+b) = gamma^a gamma^b needs the distances added, not squared",
            partial(decay_mask, distance="squared")),
    Mistake("one power too many: gamma^(distance + 1), so Gamma[n, n] is gamma, not 1", "(V.4)",
            "what is a patch's decay to itself?", partial(decay_mask, offset=1)),
    Mistake("only m <= n is kept (the causal mask of retention)", "(V.4)",
            "an image has no order in time: Gamma must be symmetric",
            partial(decay_mask, causal=True)),
)
