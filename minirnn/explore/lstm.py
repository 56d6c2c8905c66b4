"""The LSTM: the gates, the cell, and the two gradients BPTT carries.

Step by step: the four gates and the cell (LSTM.1)-(LSTM.3), checked against one step at a
time; with ``--backward``, BPTT with the library's step backward, showing the cell's two
sources (LSTM.4) and the carousel dc_{t-1} = f * dc (LSTM.5).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..lstm import init_lstm_params, lstm_backward, lstm_forward, lstm_step_backward
from ..lstm import lstm_step_forward as step_forward
from .printing import Step, difference, fmt, tiny

FORMS = ("recurrent",)


def walk(T: int, d: int, seed: int, backward: bool, form: str = "recurrent",
         chunk_size: int = 2) -> Iterator[Step]:
    """The sequence forward, checked against one step at a time; BPTT with ``backward``."""
    rng = np.random.default_rng(seed)
    x, h0 = tiny(rng, 1, T, d), np.zeros((1, d))
    params = {k: np.round(v, 2) for k, v in init_lstm_params(d, d, seed=seed).items()}
    yield Step(f"Setup: one sequence, D = H = {d}; gates in the order i, f, o, g; the forget "
               "gate's bias starts at +1", [fmt("x", x[0]), fmt("Wx", params["Wx"]),
                                           fmt("b", params["b"]), fmt("h0 = c0", h0[0])])
    h, cache = lstm_forward(x, h0, params)
    H = d
    for t in range(T):
        i, f, o = (cache.gates[0, t, k * H:(k + 1) * H] for k in range(3))
        c_prev = h0[0] if t == 0 else cache.c[0, t - 1]
        yield Step(f"t = {t}: gates from a = x Wx + h_prev Wh + b; c = f c_prev + i g; "
                   "h = o tanh(c)   (LSTM.1)-(LSTM.3)",
                   [fmt("i (write?)", i), fmt("f (keep?)", f), fmt("o (show?)", o),
                    fmt("g (candidate)", cache.gates[0, t, 3 * H:]), fmt("c_prev", c_prev),
                    fmt("c", cache.c[0, t]), fmt("h", h[0, t])])
    h_t, c_t, steps = h0, h0, []
    for t in range(T):
        h_t, c_t, step = step_forward(x[:, t], h_t, c_t, params)
        steps.append(step)
    yield Step("Check: lstm_forward against T calls of lstm_step_forward",
               [difference("sequence vs steps", h[:, -1], h_t)])
    if not backward:
        return
    dh = np.zeros_like(h)
    dh[:, -1] = 1.0
    yield Step("Backward: the loss reads the last state, dL/dh[T-1] = 1", [fmt("dh", dh[0])])
    dh_next, dc_next = np.zeros_like(h0), np.zeros_like(h0)
    for t in reversed(range(T)):
        step = steps[t]
        dc_total = dc_next + (dh[:, t] + dh_next) * step.o * (1 - step.tanh_c ** 2)
        _, dh_next_new, dc_prev, _ = lstm_step_backward(dh[:, t] + dh_next, dc_next, step)
        yield Step(f"t = {t}: dc = dc_next + dh o (1 - tanh(c)^2) (two sources, added); "
                   "dc_prev = f dc: no matrix, no tanh'   (LSTM.4)-(LSTM.5)",
                   [fmt("dc_next (from t+1)", dc_next[0]), fmt("dc (total)", dc_total[0]),
                    fmt("f", step.f[0]), fmt("dc_prev = f dc", dc_prev[0]),
                    fmt("dh_prev = da Wh^T", dh_next_new[0])])
        dh_next, dc_next = dh_next_new, dc_prev
    _, dh0, dc0, _ = lstm_backward(dh, cache)
    yield Step("Check: lstm_backward (BPTT in one call) against the chained step backward",
               [difference("dc0", dc0, dc_next), difference("dh0", dh0, dh_next)])
