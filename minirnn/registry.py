"""Every model minirnn can build, by kind: what the command line, ``train`` and checkpoints use.

A checkpoint stores a model's config as a dict with its ``kind`` (``"rnn"``, ``"vit"``, ...);
[`config_from_dict`][minirnn.registry.config_from_dict] turns it back into the config and
[`build_model`][minirnn.registry.build_model] into the model. The table is written here, once,
from the language models and the classifiers: importing a model module registers nothing.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from .blocks import Model
from .classifiers import CLASSIFIERS
from .models import LANGUAGE_MODELS

__all__ = ["CONFIGS", "MODELS", "build_model", "config_from_dict", "config_to_dict"]

MODELS: dict[str, type] = {**LANGUAGE_MODELS, **CLASSIFIERS}
CONFIGS: dict[str, type] = {kind: model.config_class for kind, model in MODELS.items()}


def build_model(config) -> Model:
    """The model object for a config (``RNNConfig`` -> [`RNNLM`][minirnn.models.RNNLM], ...)."""
    for model in MODELS.values():
        if type(config) is model.config_class:
            return model(config)
    raise TypeError(f"build_model: expected the config of one of "
                    f"{sorted(m.config_class.__name__ for m in MODELS.values())}, "
                    f"got {type(config).__name__}")


def init(config, seed: int = 0, dtype=np.float32) -> dict:
    """Initial parameter dict for the model described by ``config``.

    Parameters
    ----------
    config : a config of one of the models (``RNNConfig``, ..., ``ViRConfig``)
    seed : int, optional
    dtype : numpy dtype, optional
        float32 (default, for speed) or float64 (for gradient checks).

    Returns
    -------
    dict of str to ndarray
    """
    return build_model(config).init(seed, dtype)


def config_to_dict(config) -> dict:
    """A JSON-ready description of ``config`` (with its ``kind``)."""
    return {"kind": config.kind, **asdict(config)}


def config_from_dict(data: dict):
    """Inverse of ``config_to_dict``; raises ValueError for an unknown kind or field."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in CONFIGS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(CONFIGS)}")
    try:
        return CONFIGS[kind](**data)
    except TypeError as err:
        raise ValueError(f"invalid {kind} config {data}: {err}") from None
