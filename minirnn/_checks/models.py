"""Checks for [`minirnn.models`][minirnn.models]: a model checks its parameters and tokens once per
call,
then trusts the layers it runs."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .core import Shapes, active
from .layers import tokens as token_ids


def model_params(model, params, func: str = "forward") -> None:
    """``params`` has exactly the keys and shapes ``model.init()`` gives, finite floats."""
    where = f"{type(model).__name__}.{func}"
    if type(params) is not dict and not isinstance(params, Mapping):
        raise TypeError(f"{where}: params must be the dict from init(), "
                        f"got {type(params).__name__}")
    if getattr(model, "_shapes", None) is None:
        model._shapes = {k: v.shape for k, v in model.init(dtype=np.float32).items()}
    missing = sorted(set(model._shapes) - set(params))
    unknown = sorted(set(params) - set(model._shapes))
    if missing or unknown:
        raise ValueError(f"{where}: params does not fit this model: missing keys "
                         f"{missing[:5]}, unknown keys {unknown[:5]}")
    s = Shapes(where)
    for key, shape in model._shapes.items():
        s.array(f"params[{key!r}]", params[key], " ".join(f"{key}{i}" for i in shape))
        if params[key].shape != shape:
            s.fail(f"params[{key!r}] has shape {params[key].shape}, expected {shape}")


def model_tokens(model, func: str, ids, params=None, axes: str = "B T", checking=None):
    """Token ids in ``[0, V)`` (and ``params`` when given); then the layers run unchecked.
    ``checking``: whether to check, when another validator calls this one."""
    if not (active() if checking is None else checking):
        return np.asarray(ids)
    if params is not None:
        model_params(model, params, func)
    ids = token_ids(Shapes(f"{type(model).__name__}.{func}"), "tokens", ids,
                    model.config.vocab_size, axes)
    max_len = getattr(model.config, "max_len", None)
    if max_len is not None and axes == "B T" and ids.shape[1] > max_len:
        raise ValueError(f"{type(model).__name__}: sequence of T = {ids.shape[1]} tokens is "
                         f"longer than max_len = {max_len} learned positions")
    return ids


def model_loss(model, params, ids, targets):
    """Tokens and targets (``IGNORE_INDEX`` allowed) for ``loss_and_grads``."""
    from ..layers import IGNORE_INDEX

    if not active():
        return np.asarray(ids), np.asarray(targets)
    s = Shapes(f"{type(model).__name__}.loss_and_grads")
    token_ids(s, "tokens", ids, model.config.vocab_size)
    targets = token_ids(s, "targets", targets, model.config.vocab_size, allow=(IGNORE_INDEX,))
    return model_tokens(model, "forward", ids, params, checking=True), targets


def model_step(model, token, position: int | None = None):
    """One token per sequence (B,); for a model with learned positions, room for one more."""
    ids = model_tokens(model, "step", token, axes="B", checking=active())
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


# --- the image classifiers -----------------------------------------------------------------------

def classifier_images(model, func, images, params=None, checking=None):
    """Images (B, S, S, C) of the configured size (and ``params`` when given)."""
    if not (active() if checking is None else checking):
        return images
    if params is not None:
        model_params(model, params, func)
    c = model.config
    s = Shapes(f"{type(model).__name__}.{func}")
    s.bind_all("S S2 C", (c.image_size, c.image_size, c.channels), "the model's config")
    return s.array("images", images, "B S S2 C")


def classifier_loss(model, params, images, labels):
    """Images and labels (B, 1) in ``[0, n_classes)``."""
    if not active():
        return images, np.asarray(labels)
    images = classifier_images(model, "loss_and_grads", images, params, checking=True)
    s = Shapes(f"{type(model).__name__}.loss_and_grads")
    s.bind("B", images.shape[0], "images")
    labels = token_ids(s, "labels", labels, model.config.n_classes, "B one")
    if labels.shape[1] != 1:
        s.fail(f"labels must have shape (B, 1), got {labels.shape}")
    return images, labels


def classifier_backward(model, dlogits, cache):
    """``dlogits`` (B, 1, K) like the scores of the forward."""
    if active():
        s = Shapes(f"{type(model).__name__}.backward")
        s.bind_all("B one K", (cache.pooled.shape[0], 1, model.config.n_classes),
                   "the scores of the forward")
        dlogits = s.array("dlogits", dlogits, "B one K")
    return dlogits
