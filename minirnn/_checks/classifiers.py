"""Checks for [`minirnn.classifiers`][minirnn.classifiers]: an image classifier checks its
parameters, images and labels once per call, then trusts the layers it runs."""

from __future__ import annotations

import numpy as np

from .blocks import model_params
from .core import Shapes, active
from .layers import tokens as token_ids


def classifier_images(model, func, images, params, checking=None):
    """``(images, params)``: images (B, S, S, C) of the configured size, and the model's
    parameters (in one dtype)."""
    if not (active() if checking is None else checking):
        return images, params
    params = model_params(model, params, func)
    c = model.config
    s = Shapes(f"{type(model).__name__}.{func}")
    s.bind_all("S S2 C", (c.image_size, c.image_size, c.channels), "the model's config")
    return s.array("images", images, "B S S2 C"), params


def classifier_loss(model, params, images, labels):
    """``(images, labels, params)``: labels (B, 1) in ``[0, n_classes)``."""
    if not active():
        return images, np.asarray(labels), params
    images, params = classifier_images(model, "loss_and_grads", images, params, checking=True)
    s = Shapes(f"{type(model).__name__}.loss_and_grads")
    s.bind("B", images.shape[0], "images")
    labels = token_ids(s, "labels", labels, model.config.n_classes, "B one")
    if labels.shape[1] != 1:
        s.fail(f"labels must have shape (B, 1), got {labels.shape}")
    return images, labels, params


def classifier_backward(model, dlogits, cache):
    """``dlogits`` (B, 1, K) like the scores of the forward."""
    if active():
        s = Shapes(f"{type(model).__name__}.backward")
        s.bind_all("B one K", (cache.pooled.shape[0], 1, model.config.n_classes),
                   "the scores of the forward")
        dlogits = s.array("dlogits", dlogits, "B one K")
    return dlogits
