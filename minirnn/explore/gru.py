"""The GRU in either reset convention: gates, candidate, the mix, and BPTT.

Step by step: r, z and the candidate n (GRU.1)-(GRU.3a/b) and the mix h = (1 - z) n + z h_prev
(GRU.4); the *other* convention on the same weights gives other numbers.
With ``--backward``: the three roads back to h_{t-1} (GRU.5)-(GRU.10).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..gru import (
    gru_backward,
    gru_forward,
    gru_step_backward,
    gru_step_forward,
    init_gru_params,
)
from .printing import Step, difference, fmt, tiny

FORMS = ("after", "before")


def walk(T: int, d: int, seed: int, backward: bool, form: str = "after",
         chunk_size: int = 2) -> Iterator[Step]:
    """The sequence forward in convention ``form``; BPTT with ``backward``."""
    rng = np.random.default_rng(seed)
    x, h0 = tiny(rng, 1, T, d), tiny(rng, 1, d)
    params = {k: np.round(v, 2) for k, v in init_gru_params(d, d, seed=seed).items()}
    params["bh"] = np.round(0.5 * rng.standard_normal(3 * d), 2)
    where = ("n = tanh(x Wx_n + bx_n + r * (h_prev Wh_n + bh_n))   (GRU.3a: PyTorch)"
             if form == "after" else
             "n = tanh(x Wx_n + bx_n + (r * h_prev) Wh_n + bh_n)   (GRU.3b: Cho v3, d2l)")
    yield Step(f"Setup: reset={form!r}, D = H = {d}, gate order r, z, n; {where}",
               [fmt("x", x[0]), fmt("h0", h0[0]), fmt("bh", params["bh"])])
    h, cache = gru_forward(x, h0, params, form)
    for t in range(T):
        step = cache.step(t)
        yield Step(f"t = {t}: r, z = sigmoid(...); {where.split('   ')[0]}; "
                   "h = (1 - z) n + z h_prev   (GRU.1)-(GRU.4)",
                   [fmt("r (reset)", step.r[0]), fmt("z (keep)", step.z[0]),
                    fmt("n (candidate)", step.h_bar[0]), fmt("h", h[0, t])])
    other = "before" if form == "after" else "after"
    h_other, _ = gru_forward(x, h0, params, other)
    yield Step(f"The same weights in the other convention ({other!r}) give another function "
               "(no mapping of the weights makes them equal; see the page)",
               [fmt(f"h with reset={other!r}", h_other[0]),
                fmt("largest |difference|", np.max(np.abs(h - h_other)))])
    h_t = h0
    for t in range(T):
        h_t, _ = gru_step_forward(x[:, t], h_t, params, form)
    yield Step("Check: gru_forward against T calls of gru_step_forward",
               [difference("sequence vs steps", h[:, -1], h_t)])
    if not backward:
        return
    dh = np.zeros_like(h)
    dh[:, -1] = 1.0
    yield Step("Backward: the loss reads the last state, dL/dh[T-1] = 1", [fmt("dh", dh[0])])
    carried = np.zeros_like(h0)
    for t in reversed(range(T)):
        step = cache.step(t)
        delta = dh[:, t] + carried
        _, carried, _ = gru_step_backward(delta, step)
        yield Step(f"t = {t}: dh_prev = delta z (direct) + the candidate's road + the gates' "
                   "roads   (GRU.5)-(GRU.10)",
                   [fmt("delta", delta[0]), fmt("direct part delta z", (delta * step.z)[0]),
                    fmt("dh_prev (all roads)", carried[0])])
    _, dh0, _ = gru_backward(dh, cache)
    yield Step("Check: gru_backward against the chained step backward",
               [difference("dh0", dh0, carried)])
