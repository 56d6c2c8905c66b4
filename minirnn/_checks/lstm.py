"""Checks for [`minirnn.lstm`][minirnn.lstm]: one function per public function, same name."""

from __future__ import annotations

import numpy as np

from .core import Shapes, active, gradient, lead

# "4H" is one axis letter: the four gates' blocks side by side, bound from h's H
LSTM_PARAMS = {"Wx": "D 4H", "Wh": "H 4H", "b": "4H"}


def sigmoid(a):
    """``a``: a finite float array of any shape."""
    if not active():
        return a
    return Shapes("sigmoid").array("a", a, lead(np.ndim(a), ""))


def _inputs(func, x, x_axes, h, h_name, c, c_name, params):
    s = Shapes(func)
    x = s.array("x", x, x_axes)
    h = s.array(h_name, h, "B H")
    s.bind("4H", 4 * h.shape[1], f"{h_name} (4 H = 4 x {h.shape[1]})")
    if c is not None:
        c = s.array(c_name, c, "B H")
    return x, h, c, s.params(params, "params", LSTM_PARAMS)


def lstm_step_forward(x, h_prev, c_prev, params):
    """x (B, D), h_prev and c_prev (B, H), Wx (D, 4H), Wh (H, 4H), b (4H,)."""
    if not active():
        return x, h_prev, c_prev, params
    if c_prev is None:
        Shapes("lstm_step_forward").fail("c_prev must be an array of shape (B, H), got None",
                                         TypeError)
    x, h, c, params = _inputs("lstm_step_forward", x, "B D", h_prev, "h_prev", c_prev,
                              "c_prev", params)
    return x, h, c, params


def lstm_forward(x, h0, params, c0):
    """x (B, T, D), h0 (B, H), c0 (B, H) or None, parameters as for one step."""
    if not active():
        return x, h0, params, c0
    x, h, c, params = _inputs("lstm_forward", x, "B T D", h0, "h0", c0, "c0", params)
    return x, h, params, c


def lstm_step_backward(dh, dc, cache):
    """``dh`` and ``dc`` (B, H) checked against the cache of ``lstm_step_forward``."""
    if not active():
        return dh, dc
    dh = gradient("lstm_step_backward", "dh", dh, cache, "LSTMStepCache", "lstm_step_forward",
                  "c", "B H")
    s = Shapes("lstm_step_backward")
    s.bind_all("B H", cache.c.shape, "cache.c")
    return dh, s.array("dc", dc, "B H")


def lstm_backward(dh, cache):
    """``dh`` (B, T, H) checked against the cache of ``lstm_forward``."""
    if not active():
        return dh
    return gradient("lstm_backward", "dh", dh, cache, "LSTMCache", "lstm_forward", "h", "B T H")
