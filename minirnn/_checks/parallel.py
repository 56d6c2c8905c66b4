"""Checks for [`minirnn.parallel`][minirnn.parallel]: the number of workers, and the whole batch
checked as the model itself would check it, before it is cut into shards."""

from __future__ import annotations

from .classifiers import classifier_loss
from .core import check_int
from .models import model_loss


def shard_rows(n_rows, workers):
    """``(n_rows, workers)``: integers, at least 1."""
    return (check_int("shard_rows", "n_rows", n_rows, 1),
            check_int("shard_rows", "workers", workers, 1))


def data_parallel(model, workers):
    """``(model, workers)``: a model with ``loss_and_grads``, an integer ``workers >= 1``."""
    if not callable(getattr(model, "loss_and_grads", None)):
        raise TypeError(f"DataParallel: model must have a loss_and_grads method (a minirnn "
                        f"language model or classifier), got {type(model).__name__}")
    return model, check_int("DataParallel", "workers", workers, 1)


def loss_inputs(model, params, inputs, targets, ignore_index):
    """``(inputs, targets, params)``, checked as ``model.loss_and_grads`` checks them."""
    if hasattr(model.config, "n_classes"):                       # an image classifier
        return classifier_loss(model, params, inputs, targets)
    return model_loss(model, params, inputs, targets, ignore_index)
