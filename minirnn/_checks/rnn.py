"""Checks for [`minirnn.rnn`][minirnn.rnn]: one function per public function, same name."""

from __future__ import annotations

from .core import Shapes, active, check_cache

__all__ = [
    "rnn_backward",
    "rnn_forward",
    "rnn_step_backward",
    "rnn_step_forward",
]

RNN_PARAMS = {"Wx": "D H", "Wh": "H H", "b": "H"}


def rnn_step_forward(x, h_prev, params):
    """``(x, h_prev, params)`` checked: x (B, D), h_prev (B, H), Wx (D, H), Wh (H, H), b (H,)."""
    if not active():
        return x, h_prev, params
    s = Shapes("rnn_step_forward")
    x = s.array("x", x, "B D")
    h_prev = s.array("h_prev", h_prev, "B H")
    return x, h_prev, s.params(params, "params", RNN_PARAMS)


def rnn_step_backward(dh, cache):
    """``dh`` checked against the cache of [`rnn_step_forward`][minirnn.rnn.rnn_step_forward]."""
    if not active():
        return dh
    from ..rnn import RNNStepCache

    check_cache("rnn_step_backward", cache, RNNStepCache, "rnn_step_forward")
    s = Shapes("rnn_step_backward")
    s.bind_all("B H", cache.h.shape, "cache.h")
    return s.array("dh", dh, "B H")


def rnn_forward(x, h0, params):
    """``(x, h0, params)`` checked: x (B, T, D), h0 (B, H), parameters as for one step."""
    if not active():
        return x, h0, params
    s = Shapes("rnn_forward")
    x = s.array("x", x, "B T D")
    h0 = s.array("h0", h0, "B H")
    return x, h0, s.params(params, "params", RNN_PARAMS)


def rnn_backward(dh, cache):
    """``dh`` checked against the cache of [`rnn_forward`][minirnn.rnn.rnn_forward]."""
    if not active():
        return dh
    from ..rnn import RNNCache

    check_cache("rnn_backward", cache, RNNCache, "rnn_forward")
    s = Shapes("rnn_backward")
    s.bind_all("B T H", cache.h.shape, "cache.h")
    return s.array("dh", dh, "B T H")
