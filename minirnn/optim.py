"""Optimisers, gradient clipping and a learning-rate schedule, on flat parameter dicts.

Equations (as on ``derivations/language-models.md``)::

    SGD with momentum:  u <- mu u + dw,  w <- w - lr u                         (O.1)
    Adam:  m <- b1 m + (1 - b1) dw,  v <- b2 v + (1 - b2) dw^2,
           mhat = m / (1 - b1^t),  vhat = v / (1 - b2^t),
           w <- w - lr mhat / (sqrt(vhat) + eps)                               (O.2)
    AdamW: Adam on dw, then w <- w - lr wd w   (decoupled weight decay)        (O.3)
    clipping: dw <- dw min(1, c / ||dw||), ||dw|| over all parameters together (O.4)
    schedule: linear warm-up to lr, then cosine down to min_lr                 (O.5)

An optimiser's state is a flat dict of arrays (``"m.embed"``, ``"step"``, ...) so checkpoints
save it like parameters. ``update`` changes ``params`` and ``state`` in place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

__all__ = ["SGD", "Adam", "AdamW", "clip_grad_norm", "warmup_cosine"]


def _check(func, params, grads):
    if set(params) != set(grads):
        missing, extra = sorted(set(params) - set(grads)), sorted(set(grads) - set(params))
        raise ValueError(f"{func}: grads must have the keys of params; missing {missing}, "
                         f"unexpected {extra}")
    for key in params:
        if np.shape(grads[key]) != np.shape(params[key]):
            raise ValueError(f"{func}: grads[{key!r}] has shape {np.shape(grads[key])}, "
                             f"params[{key!r}] has {np.shape(params[key])}")


class SGD:
    """Stochastic gradient descent with (heavy-ball) momentum, eq. (O.1).

    Parameters
    ----------
    momentum : float, optional
        ``mu`` in ``[0, 1)``; 0 gives plain SGD.
    """

    def __init__(self, momentum: float = 0.9):
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum

    def init(self, params: dict) -> dict:
        """Zero velocities, one per parameter, and the step counter."""
        state = {f"u.{key}": np.zeros_like(value) for key, value in params.items()}
        state["step"] = np.array(0)
        return state

    def update(self, params: dict, grads: dict, state: dict, lr: float) -> None:
        """One step with learning rate ``lr`` (in place)."""
        _check("SGD.update", params, grads)
        for key, dw in grads.items():
            u = state[f"u.{key}"]
            u *= self.momentum
            u += dw
            params[key] -= lr * u
        state["step"] += 1


class Adam:
    """Adam (Kingma and Ba 2015), eq. (O.2), with optional L2 weight decay added to the gradient.

    Parameters
    ----------
    betas : tuple of float, optional
        ``(b1, b2)``, decay rates of the first and second moment estimates.
    eps : float, optional
    weight_decay : float, optional
        L2 penalty coefficient (coupled: it is scaled by Adam's per-parameter step size, which
        is what AdamW fixes).
    """

    decoupled = False

    def __init__(self, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        if eps < 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: eps and weight_decay must be >= 0, "
                             f"got {eps} and {weight_decay}")
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay

    def init(self, params: dict) -> dict:
        """Zero moment estimates ``m.*`` and ``v.*`` and the step counter."""
        state = {f"{moment}.{key}": np.zeros_like(value)
                 for key, value in params.items() for moment in ("m", "v")}
        state["step"] = np.array(0)
        return state

    def update(self, params: dict, grads: dict, state: dict, lr: float) -> None:
        """One step with learning rate ``lr`` (in place)."""
        _check(f"{type(self).__name__}.update", params, grads)
        b1, b2 = self.betas
        state["step"] += 1
        t = int(state["step"])
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t                   # bias corrections
        for key, dw in grads.items():
            w = params[key]
            if self.weight_decay and not self.decoupled:
                dw = dw + self.weight_decay * w
            m, v = state[f"m.{key}"], state[f"v.{key}"]
            m *= b1
            m += (1 - b1) * dw
            v *= b2
            v += (1 - b2) * dw * dw
            if self.weight_decay and self.decoupled:
                w -= lr * self.weight_decay * w             # (O.3), before the Adam step
            w -= lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter 2019), eq. (O.3).

    The decay shrinks every weight by ``lr * weight_decay`` per step, independent of the
    gradient statistics, instead of being added to the gradient.
    """

    decoupled = True

    def __init__(self, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01):
        super().__init__(betas, eps, weight_decay)


def clip_grad_norm(grads: dict, max_norm: float) -> tuple[dict, float]:
    """Scale all gradients together so that their global norm is at most ``max_norm``, eq. (O.4).

    Parameters
    ----------
    grads : dict of str to ndarray
    max_norm : float
        Must be positive.

    Returns
    -------
    clipped : dict
        New arrays (the input is not changed).
    norm : float
        The global norm before clipping (``inf`` or ``nan`` if a gradient is not finite).
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) or not max_norm > 0:
        raise ValueError(f"clip_grad_norm: max_norm must be a number > 0, got {max_norm!r}")
    if not isinstance(grads, Mapping):
        raise TypeError(f"clip_grad_norm: grads must be a dict of arrays, "
                        f"got {type(grads).__name__}")
    for key, dw in grads.items():
        if not isinstance(dw, np.ndarray) or dw.dtype.kind != "f":
            raise TypeError(f"clip_grad_norm: grads[{key!r}] must be a float array, got "
                            f"{type(dw).__name__}" + (f" of dtype {dw.dtype}"
                                                     if isinstance(dw, np.ndarray) else ""))
    norm = float(np.sqrt(sum(float(np.sum(np.square(dw, dtype=np.float64)))
                             for dw in grads.values())))
    scale = min(1.0, max_norm / norm) if norm > 0 and math.isfinite(norm) else 1.0
    return {key: dw * np.asarray(scale, dtype=dw.dtype) for key, dw in grads.items()}, norm


def warmup_cosine(step: int, lr: float, warmup: int, total: int, min_lr: float = 0.0) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up, then cosine decay, eq. (O.5).

    ``lr * (step + 1) / warmup`` for the first ``warmup`` steps, then
    ``min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2`` with ``p`` going from 0 to 1 over the
    remaining steps, and ``min_lr`` after ``total``.
    """
    if warmup < 0 or total < 1 or lr < 0:
        raise ValueError(f"warmup_cosine: need warmup >= 0, total >= 1, lr >= 0; "
                         f"got {warmup}, {total}, {lr}")
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
