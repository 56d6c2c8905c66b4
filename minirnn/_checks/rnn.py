"""Checks for [`minirnn.rnn`][minirnn.rnn]: one function per public function, same name."""

from __future__ import annotations

from .core import Shapes, active, gradient

RNN_PARAMS = {"Wx": "D H", "Wh": "H H", "b": "H"}


def _inputs(func, x, x_axes, h, h_name, params, checking):
    if not checking:
        return x, h, params
    s = Shapes(func)
    x = s.array("x", x, x_axes)
    h = s.array(h_name, h, "B H")
    return x, h, s.params(params, "params", RNN_PARAMS)


def rnn_step_forward(x, h_prev, params):
    """``(x, h_prev, params)`` checked: x (B, D), h_prev (B, H), Wx (D, H), Wh (H, H), b (H,)."""
    return _inputs("rnn_step_forward", x, "B D", h_prev, "h_prev", params, active())


def rnn_forward(x, h0, params):
    """``(x, h0, params)`` checked: x (B, T, D), h0 (B, H), parameters as for one step."""
    return _inputs("rnn_forward", x, "B T D", h0, "h0", params, active())


def rnn_step_backward(dh, cache):
    """``dh`` (B, H) checked against the cache of ``rnn_step_forward``."""
    if not active():
        return dh
    return gradient("rnn_step_backward", "dh", dh, cache, "RNNStepCache", "rnn_step_forward",
                    "h", "B H")


def rnn_backward(dh, cache):
    """``dh`` (B, T, H) checked against the cache of ``rnn_forward``."""
    if not active():
        return dh
    return gradient("rnn_backward", "dh", dh, cache, "RNNCache", "rnn_forward", "h", "B T H")
