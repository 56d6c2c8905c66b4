"""Gradient checking: compare a hand-written backward with finite differences.

Every backward pass in minirnn is tested with these three functions, and students can use them
on their own layers (see the tutorial "Gradient checking your first layer").

The idea: for a forward function ``y = f(x)`` and a random upstream gradient ``dout`` (same
shape as ``y``), the scalar ``L(x) = sum(f(x) * dout)`` has gradient ``dL/dx``, which is exactly
what ``backward(dout, cache)`` must return. Central differences estimate it independently:

    dL/dx[i] ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)            (G.2)

with truncation error O(eps^2) and round-off error O(machine_eps / eps); in float64 the sweet
spot is eps ~ 1e-6, which gives about 1e-9 to 1e-11 agreement on smooth functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ._checks.core import trusted

__all__ = ["check_gradients", "numerical_gradient", "rel_error"]


def _real(func: str, name: str, x) -> np.ndarray:
    """``x`` as a new, non-empty, finite float64 array, or a clear error naming ``name``."""
    arr = np.asarray(x) if x is not None else np.asarray(x, dtype=object)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{func}: {name} must be an array of real numbers, got "
                        f"{type(x).__name__} of dtype {arr.dtype}")
    arr = np.array(arr, dtype=np.float64)
    if arr.size == 0:
        raise ValueError(f"{func}: {name} is empty (shape {arr.shape}); there is nothing to "
                         "compare")
    if not np.all(np.isfinite(arr)):
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"{func}: {name} contains {arr[where]} at index {where}; a NaN or inf "
                         "gradient is always wrong, and no error can be measured on it")
    return arr


def numerical_gradient(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                       dout: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of ``sum(f(x) * dout)`` with respect to ``x``.

    Implements eq. (G.2). Each element of ``x`` is nudged in place by ``+eps`` and ``-eps`` and
    restored afterwards (also if ``f`` raises), so ``x`` is unchanged when this returns.
    The first call ``f(x)`` runs with minirnn's input checks; the ``2 x.size`` nudged calls
    run without them (as inside a model: the shapes are the same, only values move by
    ``eps``), which saves a quarter to a half of the time of a small check. A line typed at a
    debugger prompt while stopped in one of them is still checked.

    Parameters
    ----------
    f : callable
        Maps an array shaped like ``x`` to an output array shaped like ``dout``.
    x : ndarray, any shape
        The point at which to differentiate. It is not changed: a float64 copy is perturbed
        (float32 steps of ``1e-6`` would be lost in rounding).
    dout : ndarray, shape of ``f(x)``
        Upstream gradient that turns the output into the scalar ``sum(f(x) * dout)``.
    eps : float, optional
        Step size, default ``1e-6``.

    Returns
    -------
    grad : ndarray, shape of ``x``, float64
        The estimated gradient.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1.0, 2.0])
    >>> numerical_gradient(lambda z: z ** 2, x, np.ones(2)).round(6)
    array([2., 4.])
    """
    if not callable(f):
        raise TypeError(f"numerical_gradient: f must be a function of x, got {type(f).__name__}")
    if isinstance(eps, bool) or not (isinstance(eps, (int, float)) and eps > 0):
        raise ValueError(f"numerical_gradient: eps must be a positive number, got {eps!r}")
    x = _real("numerical_gradient", "x", x)
    dout = _real("numerical_gradient", "dout", dout)
    out_shape = np.shape(f(x))
    if out_shape != dout.shape:
        raise ValueError(f"numerical_gradient: dout must have the shape of f(x), "
                         f"{out_shape}, got {dout.shape}")
    grad = np.zeros(x.shape, dtype=np.float64)
    with trusted(except_typed=True):  # f(x) was checked above: the nudged calls skip the checks
        for index in np.ndindex(x.shape):
            original = x[index]
            try:
                x[index] = original + eps
                plus = np.sum(f(x) * dout)
                x[index] = original - eps
                minus = np.sum(f(x) * dout)
            finally:
                x[index] = original
            grad[index] = (plus - minus) / (2 * eps)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """Relative error between two arrays: ``max|a - b| / max(|a| + |b|)``.

    Implements eq. (G.3). The denominator is the largest magnitude in either array, not each
    element's own magnitude, so entries that are zero (or almost) in both arrays cannot blow the
    ratio up. Two all-zero arrays have error 0. The result lies in ``[0, 1]``: 1 means the arrays
    have nothing in common (for example opposite signs), ``1e-10`` means agreement to about ten
    significant digits of the largest entry.

    Parameters
    ----------
    a, b : ndarray, same shape
        The arrays to compare, e.g. an analytic and a numerical gradient.

    Returns
    -------
    float
        The relative error.

    Raises
    ------
    ValueError
        If the shapes differ, an array is empty, or holds NaN or inf (a non-finite gradient is
        wrong whatever the other array says).
    TypeError
        If an array is not real numbers (complex, strings, objects).

    Examples
    --------
    >>> rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-8]))  # doctest: +ELLIPSIS
    2.4999...e-09
    """
    a = _real("rel_error", "a", a)
    b = _real("rel_error", "b", b)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: a and b must have the same shape, "
                         f"got {a.shape} and {b.shape}")
    scale = np.max(np.abs(a) + np.abs(b))
    if scale == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / scale)


def check_gradients(forward: Callable, backward: Callable, inputs: Mapping[str, np.ndarray],
                    params: Mapping[str, np.ndarray] | None = None, *, seed: int = 0,
                    eps: float = 1e-6, floor: float = 0.0) -> dict[str, float]:
    """Gradient-check a forward/backward pair on every input and every parameter.

    All arrays are copied to float64 first. A random standard-normal upstream gradient ``dout``
    (from ``seed``) is drawn; the analytic gradients from ``backward(dout, cache)`` are compared
    with [`numerical_gradient`][minirnn.gradcheck.numerical_gradient] using
    [`rel_error`][minirnn.gradcheck.rel_error].

    The pair must follow the minirnn convention:

    - ``forward(**inputs)`` (or ``forward(**inputs, params=params)`` when ``params`` is given)
      returns ``(out, cache)``, or ``(out, state, cache)`` for a mechanism with a state;
    - ``backward(dout, cache)`` returns the input gradients in the order of ``inputs``, followed
      by a dict of parameter gradients when ``params`` is given, followed (for a mechanism with a
      state) by the gradient of the incoming state, which is not checked here: only ``out``
      is differentiated, the returned state gets no gradient.

    Functions of another shape are wrapped in a small lambda first.

    Parameters
    ----------
    forward, backward : callable
        The pair to check.
    inputs : dict of str to ndarray
        Keyword arguments of ``forward`` to differentiate with respect to, in the order
        ``backward`` returns their gradients.
    params : dict of str to ndarray, optional
        Parameter dict passed as ``params=``; every entry is checked too.
    seed : int, optional
        Seed of the random upstream gradient.
    eps : float, optional
        Finite-difference step.
    floor : float, optional
        Default 0: every array gets the plain relative error (G.3). Some gradients are zero in
        exact arithmetic (a parameter the output cannot feel in this example), and then
        finite-difference noise of about 1e-10 against an analytic 1e-18 reads as a relative
        error of 1. With ``floor > 0`` the denominator of (G.3) is at least ``floor`` times the
        largest gradient magnitude of the whole check (eq. (G.4)), so such arrays are judged in
        absolute terms; ``0.1`` is a good choice (what the tests use).

    Returns
    -------
    dict of str to float
        Relative error (eq. (G.3), or (G.4) with ``floor``) for each input name and each
        ``"params[key]"``.

    Examples
    --------
    >>> from minirnn import rnn_step_forward, rnn_step_backward, init_rnn_params
    >>> rng = np.random.default_rng(0)
    >>> report = check_gradients(rnn_step_forward, rnn_step_backward,
    ...                          {"x": rng.normal(size=(2, 3)), "h_prev": rng.normal(size=(2, 4))},
    ...                          init_rnn_params(3, 4, seed=0))
    >>> max(report.values()) < 1e-7
    True
    """
    func = "check_gradients"
    if not callable(forward) or not callable(backward):
        raise TypeError(f"{func}: forward and backward must be functions, got "
                        f"{type(forward).__name__} and {type(backward).__name__}")
    for name, arrays in (("inputs", inputs), ("params", params)):
        if not isinstance(arrays, Mapping) and not (name == "params" and arrays is None):
            raise TypeError(f"{func}: {name} must be a dict of arrays, got "
                            f"{type(arrays).__name__}")
    inputs = {name: _real(func, f"inputs[{name!r}]", v) for name, v in inputs.items()}
    if params is not None:
        params = {name: _real(func, f"params[{name!r}]", v) for name, v in params.items()}

    def run(ins, ps):
        return forward(**ins) if ps is None else forward(**ins, params=ps)

    try:
        returned = run(inputs, params)
    except (TypeError, ValueError) as err:   # say which call failed, keep the reason
        with_params = "" if params is None else ", params=params"
        raise type(err)(f"{func}: forward(**inputs{with_params}) failed: {err}") from err
    out, cache = returned[0], returned[-1]
    dout = np.random.default_rng(seed).standard_normal(np.shape(out))
    result = backward(dout, cache)
    result = result if isinstance(result, tuple) else (result,)
    if len(returned) == 3:                  # (out, state, cache): drop d(incoming state)
        result = result[:-1]
    expected = len(inputs) + (params is not None)
    if len(result) != expected:
        then = ", then the grads dict" if params is not None else ""
        raise ValueError(f"{func}: backward returned {len(result)} values, "
                         f"expected {expected} (one per input{then})")

    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}   # name -> (analytic, numerical)
    for (name, x), analytic in zip(inputs.items(), result):
        def f(z, name=name):
            return run({**inputs, name: z}, params)[0]
        pairs[name] = (analytic, numerical_gradient(f, x, dout, eps))
    if params is not None:
        grads = result[-1]
        for key, w in params.items():
            def f(z, key=key):
                return run(inputs, {**params, key: z})[0]
            pairs[f"params[{key!r}]"] = (grads[key], numerical_gradient(f, w, dout, eps))
    if floor == 0:
        return {name: rel_error(a, n) for name, (a, n) in pairs.items()}
    largest = max(float(np.max(np.abs(a) + np.abs(n), initial=0.0)) for a, n in pairs.values())
    return {name: float(np.max(np.abs(a - n), initial=0.0)
                        / max(float(np.max(np.abs(a) + np.abs(n), initial=0.0)),
                              floor * largest, np.finfo(np.float64).tiny))
            for name, (a, n) in pairs.items()}
