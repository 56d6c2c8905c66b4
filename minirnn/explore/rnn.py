"""The Elman RNN: the recurrence and backpropagation through time.

Step by step: the recurrence (RNN.1)-(RNN.2), checked against one step at a time, then
backpropagation through time (RNN.3)-(RNN.5) with the library's one-step backward.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..rnn import (
    RNNStepCache,
    init_rnn_params,
    rnn_backward,
    rnn_forward,
    rnn_step_backward,
    rnn_step_forward,
)
from .printing import Step, difference, fmt, tiny

FORMS = ("recurrent",)


def walk(T: int, d: int, seed: int, backward: bool, form: str = "recurrent",
         chunk_size: int = 2) -> Iterator[Step]:
    """The sequence forward, checked against one step at a time; BPTT with ``backward``."""
    rng = np.random.default_rng(seed)
    x, h0 = tiny(rng, 1, T, d), np.zeros((1, d))
    params = {k: np.round(v, 2) for k, v in init_rnn_params(d, d, seed=seed).items()}
    yield Step("Setup: one sequence, D = H = " + str(d) + "; h0 is the state before x[0]",
               [fmt("x", x[0]), fmt("Wx", params["Wx"]), fmt("Wh", params["Wh"]),
                fmt("b", params["b"]), fmt("h0", h0[0])])
    h, cache = rnn_forward(x, h0, params)
    for t in range(T):
        h_prev = h0 if t == 0 else h[:, t - 1]
        yield Step(f"t = {t}: h[t] = tanh(x[t] Wx + h_prev Wh + b)   (RNN.1)-(RNN.2)",
                   [fmt("x[t]", x[0, t]), fmt("h_prev", h_prev[0]),
                    fmt("a = x[t] Wx + h_prev Wh + b", cache.x[0, t] @ params["Wx"]
                        + h_prev[0] @ params["Wh"] + params["b"]), fmt("h[t]", h[0, t])])
    h_chain, h_t = [], h0
    for t in range(T):                                   # a second form: one step at a time
        h_t, _ = rnn_step_forward(x[:, t], h_t, params)
        h_chain.append(h_t)
    yield Step("Check: rnn_forward against T calls of rnn_step_forward",
               [difference("sequence vs steps", h, np.stack(h_chain, axis=1))])
    if backward:
        yield from _backward(x, h0, h, cache, params)


def _backward(x, h0, h, cache, params):
    T = x.shape[1]
    dh = np.zeros_like(h)
    dh[:, -1] = 1.0
    yield Step("Backward: the loss reads the last state, dL/dh[T-1] = 1", [fmt("dh", dh[0])])
    carried, dWh = np.zeros_like(h0), np.zeros_like(params["Wh"])
    for t in reversed(range(T)):
        h_prev = h0 if t == 0 else h[:, t - 1]
        step = RNNStepCache(x=x[:, t], h_prev=h_prev, h=h[:, t], Wx=params["Wx"],
                            Wh=params["Wh"])
        delta = dh[:, t] + carried                           # (RNN.3)
        _, carried, grads = rnn_step_backward(delta, step)   # the library's step backward
        dWh = dWh + grads["Wh"]
        yield Step(f"t = {t}: delta = dh[t] + da[t+1] Wh^T, da[t] = delta (1 - h[t]^2), "
                   f"dWh += h_prev^T da[t]   (RNN.3)-(RNN.5)",
                   [fmt("delta", delta[0]), fmt("da[t]", grads["b"]), fmt("running dWh", dWh)])
    _, dh0, full = rnn_backward(dh, cache)
    yield Step("Check: rnn_backward (BPTT in one call) against the chained step backward",
               [fmt("dWh (rnn_backward)", full["Wh"]), fmt("dh0", dh0[0]),
                difference("BPTT vs steps", full["Wh"], dWh)])
