"""Checks for [`minirnn.gru`][minirnn.gru]: one function per public function, same name."""

from __future__ import annotations

from .core import Shapes, active, gradient

# "3H" is one axis letter: the three blocks r, z, h_bar side by side, bound from h's H
GRU_PARAMS = {"Wx": "D 3H", "Wh": "H 3H", "bx": "3H", "bh": "3H"}
RESETS = ("after", "before")


def _inputs(func, x, x_axes, h, h_name, params, reset):
    s = Shapes(func)
    if not isinstance(reset, str) or reset not in RESETS:
        s.fail(f"reset must be 'after' (PyTorch, cuDNN) or 'before' (Cho et al. 2014 v3, d2l), "
               f"got {reset!r}", ValueError if isinstance(reset, str) else TypeError)
    x = s.array("x", x, x_axes)
    h = s.array(h_name, h, "B H")
    s.bind("3H", 3 * h.shape[1], f"{h_name} (3 H = 3 x {h.shape[1]})")
    return x, h, s.params(params, "params", GRU_PARAMS), reset


def gru_step_forward(x, h_prev, params, reset):
    """x (B, D), h_prev (B, H), Wx (D, 3H), Wh (H, 3H), bx and bh (3H,), reset a convention."""
    if not active():
        return x, h_prev, params, reset
    return _inputs("gru_step_forward", x, "B D", h_prev, "h_prev", params, reset)


def gru_forward(x, h0, params, reset):
    """x (B, T, D), h0 (B, H), parameters and reset as for one step."""
    if not active():
        return x, h0, params, reset
    return _inputs("gru_forward", x, "B T D", h0, "h0", params, reset)


def gru_step_backward(dh, cache):
    """``dh`` (B, H) checked against the cache of ``gru_step_forward``."""
    if not active():
        return dh
    return gradient("gru_step_backward", "dh", dh, cache, "GRUStepCache", "gru_step_forward",
                    "h_bar", "B H")


def gru_backward(dh, cache):
    """``dh`` (B, T, H) checked against the cache of ``gru_forward``."""
    if not active():
        return dh
    return gradient("gru_backward", "dh", dh, cache, "GRUCache", "gru_forward", "h", "B T H")
