"""Input checks used at the public boundary of every mechanism.

A student who passes the wrong thing should read *which* argument is wrong and *what* was
expected, not a broadcasting error from deep inside NumPy. Every public function creates one
:class:`Shapes` and declares each array with the letters of its axes (the alphabet of the
notation page: ``B`` batch, ``T`` time, ``D`` model width, ...). The first array that uses a
letter fixes its size; every later use must agree, and the error names both arrays.

Internal helpers trust their callers and do not check again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class NonFiniteError(ValueError):
    """An input holds NaN or inf. A ``ValueError``; the training loop turns it into a
    "diverged at step N" message."""


class Shapes:
    """Collects named axis sizes while the arguments of one call are checked.

    Parameters
    ----------
    func : str
        Name of the public function, used as the prefix of every error message.
    """

    def __init__(self, func: str):
        self.func = func
        self.sizes: dict[str, int] = {}
        self.origin: dict[str, str] = {}

    def fail(self, message: str, kind: type[Exception] = ValueError):
        raise kind(f"{self.func}: {message}")

    def bind(self, letter: str, size: int, origin: str) -> None:
        """Record that axis ``letter`` has ``size`` (or check it against an earlier record)."""
        if letter in self.sizes and self.sizes[letter] != size:
            self.fail(
                f"{origin} gives {letter} = {size}, but {self.origin[letter]} "
                f"gives {letter} = {self.sizes[letter]}"
            )
        self.sizes.setdefault(letter, size)
        self.origin.setdefault(letter, origin)

    def array(self, name: str, x, axes: str, neg_inf_ok: bool = False) -> np.ndarray:
        """Check that ``x`` is a finite float32/float64 array whose axes are named by ``axes``.

        ``axes`` is a space-separated list of axis letters, e.g. ``"B T D"``. NaN and inf are
        rejected (``-inf`` is allowed where ``neg_inf_ok``: the logits of a softmax, where it
        means "masked out"). Returns ``x`` as an ndarray (never a copy when it already is one).
        """
        letters = axes.split()
        spec = "(" + ", ".join(letters) + ")"
        if isinstance(x, np.ndarray):
            arr = x
        elif isinstance(x, (list, tuple)) or np.isscalar(x):
            arr = np.asarray(x)
        else:
            self.fail(
                f"{name} must be a NumPy array of shape {spec}, got {type(x).__name__}", TypeError
            )
        if arr.dtype not in FLOAT_DTYPES:
            self.fail(
                f"{name} must be a float32 or float64 array of shape {spec}, got dtype {arr.dtype}"
                + (" (convert it with .astype(np.float64))" if arr.dtype.kind in "biu" else ""),
                TypeError,
            )
        if arr.ndim != len(letters):
            self.fail(
                f"{name} must have {len(letters)} dimensions {spec}, got shape {arr.shape}"
            )
        for axis, (letter, size) in enumerate(zip(letters, arr.shape)):
            if size == 0:
                self.fail(f"{name} has an empty axis {letter} (shape {arr.shape}); "
                          f"every axis of {spec} must have at least one element")
            self.bind(letter, size, f"{name} (axis {axis} of shape {arr.shape})")
        bad = ~np.isfinite(arr)
        if neg_inf_ok:
            bad &= arr != -np.inf
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            self.fail(
                f"{name} contains {int(bad.sum())} non-finite value(s), the first "
                f"{arr[where]} at index {where}; minirnn computes on finite numbers only "
                "(a NaN usually comes from a diverged step or an uninitialised array)",
                NonFiniteError,
            )
        return arr

    def params(self, params, name: str, axes: Mapping[str, str],
               optional: Iterable[str] = ()) -> dict[str, np.ndarray]:
        """Check a parameter dict: required keys ``axes``, allowed ``optional`` keys."""
        if not isinstance(params, Mapping):
            self.fail(f"{name} must be a dict of arrays, got {type(params).__name__}", TypeError)
        optional = set(optional)
        missing = [k for k in axes if k not in params and k not in optional]
        unknown = [k for k in params if k not in axes]
        if missing:
            self.fail(f"{name} is missing key(s) {missing}; expected keys {sorted(axes)}")
        if unknown:
            self.fail(f"{name} has unknown key(s) {unknown}; expected keys {sorted(axes)}")
        return {k: self.array(f"{name}[{k!r}]", params[k], spec)
                for k, spec in axes.items() if k in params}


def result_dtype(*arrays) -> np.dtype:
    """The floating dtype a computation on ``arrays`` runs in (float32 only if all are)."""
    return np.result_type(*arrays)


def check_int(func: str, name: str, value, minimum: int) -> int:
    """Check that ``value`` is an integer (not bool) at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{func}: {name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{func}: {name} must be >= {minimum}, got {value}")
    return int(value)


def check_cache(func: str, cache, cls: type, forward: str) -> None:
    """Check that a backward function got the cache its forward function returned."""
    if isinstance(cache, cls):
        return
    hint = ""
    if isinstance(cache, tuple) and not hasattr(cache, "_fields"):
        hint = f"; {forward} returns (output, ..., cache): pass only its last element"
    raise TypeError(f"{func}: cache must be the {cls.__name__} returned by {forward}, "
                    f"got {type(cache).__name__}{hint}")
