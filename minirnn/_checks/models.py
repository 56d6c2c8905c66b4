"""Checks for [`minirnn.models`][minirnn.models]: a language model checks its parameters and tokens
once per call, then trusts the layers it runs."""

from __future__ import annotations

import numpy as np

from .blocks import model_params
from .core import Shapes, active
from .layers import tokens as token_ids


def model_tokens(model, func: str, ids, params, checking=None):
    """``(ids, params)``: token ids (B, T) in ``[0, V)`` and the model's parameters (in one
    dtype); then the layers run unchecked. ``checking``: whether to check, when another
    validator calls this one."""
    if not (active() if checking is None else checking):
        return np.asarray(ids), params
    params = model_params(model, params, func)
    return _ids(model, func, ids, "B T"), params


def _ids(model, func, ids, axes):
    ids = token_ids(Shapes(f"{type(model).__name__}.{func}"), "tokens", ids,
                    model.config.vocab_size, axes)
    max_len = getattr(model.config, "max_len", None)
    if max_len is not None and axes == "B T" and ids.shape[1] > max_len:
        raise ValueError(f"{type(model).__name__}: sequence of T = {ids.shape[1]} tokens is "
                         f"longer than max_len = {max_len} learned positions")
    return ids


def model_loss(model, params, ids, targets, ignore_index):
    """``(ids, targets, params)`` for ``loss_and_grads`` (targets may be ``ignore_index``)."""
    if not active():
        return np.asarray(ids), np.asarray(targets), params
    s = Shapes(f"{type(model).__name__}.loss_and_grads")
    token_ids(s, "tokens", ids, model.config.vocab_size)
    targets = token_ids(s, "targets", targets, model.config.vocab_size, allow=(ignore_index,))
    ids, params = model_tokens(model, "forward", ids, params, checking=True)
    return ids, targets, params


def model_step(model, token, position: int | None = None):
    """One token per sequence (B,); for a model with learned positions, room for one more."""
    ids = _ids(model, "step", token, "B") if active() else np.asarray(token)
    max_len = getattr(model.config, "max_len", None)
    if position is not None and max_len is not None and position >= max_len:
        raise ValueError(f"{type(model).__name__}: position {position} is beyond max_len = "
                         f"{max_len}")
    return ids


def model_backward(model, dlogits, cache, logits_shape):
    """``dlogits`` shaped like the logits of the forward that made ``cache``."""
    if active():
        s = Shapes(f"{type(model).__name__}.backward")
        s.bind_all("B T V", logits_shape, "the logits of the forward")
        dlogits = s.array("dlogits", dlogits, "B T V")
    return dlogits
