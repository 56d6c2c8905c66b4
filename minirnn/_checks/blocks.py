"""Checks for [`minirnn.blocks`][minirnn.blocks]: the parameters of a whole model."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .core import Shapes


def model_params(model, params, func: str = "forward") -> dict:
    """``params`` has exactly the keys and shapes ``model.init()`` gives, finite floats;
    returned in their common dtype (one float64 array promotes the model, as NumPy would)."""
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
    dtype = np.result_type(*params.values())
    if all(value.dtype == dtype for value in params.values()):
        return params
    return {key: value.astype(dtype) for key, value in params.items()}
