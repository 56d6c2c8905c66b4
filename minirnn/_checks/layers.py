"""Checks for [`minirnn.layers`][minirnn.layers]: one function per public function, same name."""

from __future__ import annotations

import numpy as np

from .core import (
    Shapes,
    active,
    check_cache,
    check_eps,
    check_int,
    lead,
    same_dtype,
)


def upstream(func: str, dy, cache, cls: str, forward: str, shape_of) -> np.ndarray:
    """Check a layer backward's cache and that ``dy`` is a float array shaped like the forward
    output, ``shape_of(cache)`` (``None`` in it: any size)."""
    check_cache(func, cache, cls, forward)
    shape = shape_of(cache)
    s = Shapes(func)
    dy = s.array("dy", dy, lead(np.ndim(dy), ""))
    if dy.ndim != len(shape) or any(want is not None and want != got
                                    for got, want in zip(dy.shape, shape)):
        shown = tuple("any" if w is None else w for w in shape)
        s.fail(f"dy must have the shape of the forward output {shown}, got {dy.shape}")
    return dy


def activation(s: Shapes, name: str, x, last: str = "D") -> np.ndarray:
    """An activation (..., last): at least one axis."""
    if np.ndim(x) < 1:
        s.fail(f"{name} must have at least one axis (..., {last}), got a scalar")
    return s.array(name, x, lead(np.ndim(x), last))


def tokens(s: Shapes, name: str, ids, V: int | None, axes: str = "B T", allow: tuple = ()):
    """Integer token ids with axes ``axes``, each in ``[0, V)`` or in ``allow``."""
    t = np.asarray(ids)
    if t.dtype.kind not in "iu":
        s.fail(f"{name} must be an integer array of token ids, got dtype {t.dtype}", TypeError)
    letters = axes.split()
    if t.ndim != len(letters):
        s.fail(f"{name} must have {len(letters)} dimensions ({', '.join(letters)}), "
               f"got shape {t.shape}")
    for axis, (letter, size) in enumerate(zip(letters, t.shape)):
        if size == 0:
            s.fail(f"{name} has an empty axis {letter} (shape {t.shape})")
        s.bind(letter, size, f"{name} (axis {axis} of shape {t.shape})")
    if V is not None:
        bad = ((t < 0) | (t >= V)) & ~np.isin(t, allow)
        if np.any(bad):
            s.fail(f"{name} has ids outside [0, {V}) (vocabulary size V = {V}): "
                   f"{np.unique(t[bad])[:5].tolist()}")
    return t


# --- heads and normalisation statistics ---------------------------------------------------------

def split_heads(x, n_heads):
    if not active():
        return x
    s = Shapes("split_heads")
    x = s.array("x", x, "B T D")
    n_heads = check_int("split_heads", "n_heads", n_heads, 1)
    if x.shape[-1] % n_heads:
        s.fail(f"n_heads = {n_heads} must divide the last axis of x, D = {x.shape[-1]}")
    return x


def merge_heads(x):
    if not active():
        return x
    return Shapes("merge_heads").array("x", x, "B h T d")


def mean_last(x):
    if not active():
        return x
    return activation(Shapes("mean_last"), "x", x, "n")


def matmul_few_rows(a, W):
    """``a`` (m, k) and ``W`` (k, n), float arrays with the same ``k``."""
    if not active():
        return a, W
    s = Shapes("matmul_few_rows")
    return s.array("a", a, "m k"), s.array("W", W, "k n")


def standardize(x, eps):
    """``x`` (..., n) checked, ``eps >= 0``; with ``eps = 0`` no row may be constant (0 / 0).
    That last check depends on the data, so it runs inside a model too."""
    if active():
        s = Shapes("standardize")
        x = activation(s, "x", x, "n")
        eps = check_eps("standardize", eps)
    constant_row("standardize", x, eps, "x has a constant row")
    return x, eps


def constant_row(func: str, x, eps, what: str) -> None:
    """Refuse ``eps = 0`` when a row of ``x`` is constant: its standardisation is 0 / 0."""
    if eps == 0 and np.any(np.ptp(x, axis=-1) == 0):
        raise ValueError(f"{func}: {what} and eps = 0, so its standard deviation is 0 and "
                         "x-hat would divide by zero; use eps > 0")


def standardize_backward(dxhat, xhat, sigma):
    if not active():
        return dxhat, xhat, sigma
    s = Shapes("standardize_backward")
    xhat = activation(s, "xhat", xhat, "n")
    letters = lead(xhat.ndim, "n")
    dxhat = s.array("dxhat", dxhat, letters)
    sigma = s.array("sigma", sigma, lead(xhat.ndim, "one"))
    if s.sizes["one"] != 1 or np.any(sigma <= 0):
        s.fail(f"sigma must be the positive (..., 1) standard deviations that standardize "
               f"returned, got shape {sigma.shape}")
    return dxhat, xhat, sigma


# --- the layers ---------------------------------------------------------------------------------

def linear_forward(x, params):
    if not active():
        return x, params
    s = Shapes("linear_forward")
    x = activation(s, "x", x, "Din")
    return x, s.params(params, "params", {"W": "Din Dout", "b": "Dout"}, optional=("b",))


def weight_gradient(x, dy):
    """``x`` (..., Din) and ``dy`` (..., Dout) with the same leading axes, float arrays."""
    if not active():
        return x, dy
    s = Shapes("weight_gradient")
    x = activation(s, "x", x, "Din")
    if np.ndim(dy) != x.ndim:
        s.fail(f"dy must have the leading axes of x {x.shape[:-1]} and then Dout, "
               f"got shape {np.shape(dy)}")
    return same_dtype(x, activation(s, "dy", dy, "Dout"))


def linear_backward(dy, cache):
    if not active():
        return dy
    return upstream("linear_backward", dy, cache, "LinearCache", "linear_forward",
                    lambda c: c.x.shape[:-1] + c.W.shape[1:])


def embedding_forward(ids, W):
    if not active():
        return ids, W
    s = Shapes("embedding_forward")
    W = s.array("W", W, "V D")
    return tokens(s, "tokens", ids, W.shape[0]), W


def embedding_backward(dy, cache):
    if not active():
        return dy
    return upstream("embedding_backward", dy, cache, "EmbeddingCache", "embedding_forward",
                    lambda c: (*c.tokens.shape, None))


def layer_norm_forward(x, params, eps):
    if active():
        s = Shapes("layer_norm_forward")
        x = activation(s, "x", x)
        params = s.params(params, "params", {"w": "D", "b": "D"})
        eps = check_eps("layer_norm_forward", eps)
    constant_row("layer_norm_forward", x, eps, "x has a constant row")
    return x, params, eps


def layer_norm_backward(dy, cache):
    if not active():
        return dy
    dy = upstream("layer_norm_backward", dy, cache, "LayerNormCache", "layer_norm_forward",
                  lambda c: c.xhat.shape)
    return dy


def gelu_forward(x):
    if not active():
        return x
    return Shapes("gelu_forward").array("x", x, lead(np.ndim(x), ""))


def gelu_backward(dy, cache):
    if not active():
        return dy
    return upstream("gelu_backward", dy, cache, "GELUCache", "gelu_forward", lambda c: c.x.shape)


def ffn_forward(x, params):
    if not active():
        return x, params
    s = Shapes("ffn_forward")
    x = activation(s, "x", x)
    params = s.params(params, "params", {"W1": "D F", "b1": "F", "W2": "F D", "b2": "D"})
    return x, params


def ffn_backward(dy, cache):
    if not active():
        return dy
    dy = upstream("ffn_backward", dy, cache, "FFNCache", "ffn_forward", lambda c: c.first.x.shape)
    return dy


def cross_entropy(logits, targets, ignore_index):
    if not active():
        return logits, targets
    s = Shapes("cross_entropy")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        s.fail(f"ignore_index must be an integer, got {ignore_index!r}", TypeError)
    logits = s.array("logits", logits, "B T V")
    return logits, tokens(s, "targets", targets, logits.shape[-1], allow=(ignore_index,))
