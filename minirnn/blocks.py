"""The residual block stack every model of minirnn is built from.

A block is two residual branches with a layer norm in front of each (pre-LN, derivations/
language-models.md, (L.5))::

    x = x + mix(LN_1(x))         the token mixer: attention, retention, MaSA, ...
    x = x + FFN(LN_2(x))         the feed-forward layer, token by token

and the stack ends with a final layer norm. Only the token mixer differs between the
Transformer, RetNet, the gated RetNet and the three image classifiers; a model hands its mixer
to the stack as a [`Mixer`][minirnn.blocks.Mixer]: the library's layer functions with the
model's settings (heads, form, chunk size, ...) bound. Every mixer is called one way:
``forward(x, params, state) -> (y, state, cache)``, ``backward(dy, cache) -> (dx, grads)``,
``step(x, params, state) -> (y, state)``.

Parameters live in one flat dict with dotted names (``"blocks.0.mix.Wq"``), which optimisers and
checkpoints treat uniformly; [`sub_params`][minirnn.blocks.sub_params] and
[`put_params`][minirnn.blocks.put_params] move between the flat dict and a layer's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np

from ._checks import blocks as check
from .layers import (
    ffn_backward,
    ffn_forward,
    layer_norm_backward,
    layer_norm_forward,
)

# the names a user of the library needs; the functions below them are the models' plumbing
__all__ = ["BlockCache", "Mixer", "Model", "StackCache", "count_parameters"]


# --- the flat parameter dict ---------------------------------------------------------------------

def sub_params(params: dict, prefix: str) -> dict:
    """The entries of ``params`` under ``prefix.``, with the prefix removed."""
    n = len(prefix) + 1
    return {key[n:]: value for key, value in params.items() if key.startswith(prefix + ".")}


def put_params(params: dict, prefix: str, sub: dict) -> None:
    """Store the entries of ``sub`` in ``params`` under ``prefix.``."""
    params.update({f"{prefix}.{key}": value for key, value in sub.items()})


def normal(rng: np.random.Generator, shape, std: float, dtype) -> np.ndarray:
    """Normal entries with standard deviation ``std``, drawn from ``rng``."""
    return (std * rng.standard_normal(shape)).astype(dtype)


def count_parameters(params: dict) -> int:
    """Total number of scalars in a parameter dict."""
    if not isinstance(params, Mapping):
        raise TypeError(f"count_parameters: params must be a dict of arrays, "
                        f"got {type(params).__name__}")
    for key, value in params.items():
        if not isinstance(value, np.ndarray):
            raise TypeError(f"count_parameters: params[{key!r}] must be an array, "
                            f"got {type(value).__name__}")
    return int(sum(v.size for v in params.values()))


# --- what every model shares ---------------------------------------------------------------------

class Model:
    """A model: a config, parameters from ``init``, and ``loss_and_grads`` for training.

    Subclasses: the language models of [`minirnn.models`][minirnn.models] and the image
    classifiers of [`minirnn.classifiers`][minirnn.classifiers].
    """

    config_class: type = object

    def __init__(self, config):
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, "
                            f"got {type(config).__name__}")
        self.config = config

    def init(self, seed: int = 0, dtype=np.float32) -> dict:        # pragma: no cover
        raise NotImplementedError

    def check_params(self, params, func: str = "forward") -> None:
        """Check that ``params`` has exactly the keys and shapes ``init`` gives.

        Parameters
        ----------
        params : dict of str to ndarray
            Every array float32 or float64, finite, with the shape ``init`` gives its key.
        func : str, optional
            The method named in error messages.

        Raises
        ------
        TypeError
            If ``params`` is not a dict or an array has the wrong dtype.
        ValueError
            If a key is missing or unknown, a shape differs, or a value is NaN or inf.
        """
        check.model_params(self, params, func)


# --- the blocks ----------------------------------------------------------------------------------

class Mixer(NamedTuple):
    """The token mixer of every block of a stack, called one way whatever it is.

    ``init(seed, layer, dtype) -> params``; ``forward(x, params, state) -> (y, state, cache)``
    with ``x`` (B, T, D) and ``state`` ``None`` for a new sequence (the returned state
    continues it: a KV cache, a retention state); ``backward(dy, cache) -> (dx, grads)``;
    ``step(x, params, state) -> (y, state)`` for one token ``x`` (B, D) (``None`` for a mixer
    that cannot decode token by token).
    """

    init: Callable
    forward: Callable
    backward: Callable
    step: Callable | None = None


class BlockCache(NamedTuple):
    """What the backward of one block needs."""

    ln1: tuple          # layer norm before the mixer
    mix: tuple          # the mixer's cache
    ln2: tuple          # layer norm before the feed-forward layer
    ffn: tuple


class StackCache(NamedTuple):
    """What [`blocks_backward`][minirnn.blocks.blocks_backward] needs."""

    blocks: list        # a BlockCache per block
    ln_f: tuple         # the final layer norm


def init_blocks(rng: np.random.Generator, n_layers: int, D: int, d_ff: int, mixer: Mixer,
                seed: int, dtype) -> dict:
    """Parameters of ``n_layers`` blocks and the final layer norm, in one flat dict.

    Layer norms start as the identity (``w = 1``, ``b = 0``); the feed-forward layer's
    ``W1`` is normal with standard deviation ``1/sqrt(D)``, ``W2`` with ``0.5/sqrt(F)``; the
    mixer of layer ``i`` is ``mixer.init(seed, i, dtype)``.
    """
    params: dict = {}
    for layer in range(n_layers):
        pre = f"blocks.{layer}"
        put_params(params, f"{pre}.ln1", _layer_norm_params(D, dtype))
        put_params(params, f"{pre}.mix", mixer.init(seed, layer, dtype))
        put_params(params, f"{pre}.ln2", _layer_norm_params(D, dtype))
        put_params(params, f"{pre}.ffn", {
            "W1": normal(rng, (D, d_ff), 1 / np.sqrt(D), dtype), "b1": np.zeros(d_ff, dtype),
            "W2": normal(rng, (d_ff, D), 0.5 / np.sqrt(d_ff), dtype), "b2": np.zeros(D, dtype)})
    put_params(params, "ln_f", _layer_norm_params(D, dtype))
    return params


def _layer_norm_params(D, dtype):
    return {"w": np.ones(D, dtype=dtype), "b": np.zeros(D, dtype=dtype)}


def blocks_forward(params: dict, x: np.ndarray, n_layers: int, mixer: Mixer):
    """Every block, then the final layer norm.

    Returns
    -------
    x : ndarray, shape (B, T, D)
    states : list
        The state each block's mixer returned (what decoding continues from).
    cache : StackCache
    """
    blocks, states = [], []
    for layer in range(n_layers):
        pre = f"blocks.{layer}"
        a, ln1 = layer_norm_forward(x, sub_params(params, f"{pre}.ln1"))
        y, state, mix = mixer.forward(a, sub_params(params, f"{pre}.mix"), None)
        x = x + y
        a, ln2 = layer_norm_forward(x, sub_params(params, f"{pre}.ln2"))
        y, ffn = ffn_forward(a, sub_params(params, f"{pre}.ffn"))
        x = x + y
        blocks.append(BlockCache(ln1=ln1, mix=mix, ln2=ln2, ffn=ffn))
        states.append(state)
    x, ln_f = layer_norm_forward(x, sub_params(params, "ln_f"))
    return x, states, StackCache(blocks=blocks, ln_f=ln_f)


def blocks_backward(dx: np.ndarray, cache: StackCache, mixer: Mixer, grads: dict) -> np.ndarray:
    """Backward of [`blocks_forward`][minirnn.blocks.blocks_forward]: fills ``grads`` (flat
    names) and returns the gradient of the stack's input."""
    dx, layer_grads = layer_norm_backward(dx, cache.ln_f)
    put_params(grads, "ln_f", layer_grads)
    for layer in reversed(range(len(cache.blocks))):
        pre, c = f"blocks.{layer}", cache.blocks[layer]
        da, layer_grads = ffn_backward(dx, c.ffn)                       # residual: dx flows on too
        put_params(grads, f"{pre}.ffn", layer_grads)
        da, layer_grads = layer_norm_backward(da, c.ln2)
        put_params(grads, f"{pre}.ln2", layer_grads)
        dx = dx + da
        da, layer_grads = mixer.backward(dx, c.mix)
        put_params(grads, f"{pre}.mix", layer_grads)
        da, layer_grads = layer_norm_backward(da, c.ln1)
        put_params(grads, f"{pre}.ln1", layer_grads)
        dx = dx + da
    return dx


def blocks_step(params: dict, x: np.ndarray, mixer: Mixer, states: list):
    """One new token ``x`` (B, D) through every block, each continuing its decoding state.

    Returns
    -------
    x : ndarray, shape (B, D)
        After the final layer norm.
    states : list
        The new state of every block.
    """
    states = list(states)
    for layer in range(len(states)):
        pre = f"blocks.{layer}"
        a, _ = layer_norm_forward(x, sub_params(params, f"{pre}.ln1"))
        y, states[layer] = mixer.step(a, sub_params(params, f"{pre}.mix"), states[layer])
        x = x + y
        a, _ = layer_norm_forward(x, sub_params(params, f"{pre}.ln2"))
        x = x + ffn_forward(a, sub_params(params, f"{pre}.ffn"))[0]
    x, _ = layer_norm_forward(x, sub_params(params, "ln_f"))
    return x, states
