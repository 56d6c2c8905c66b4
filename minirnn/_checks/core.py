"""The core of the checks: the shape bookkeeper, small shared checks, and the rule that
inputs are checked once, where they enter the library."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Mapping
from contextvars import ContextVar

import numpy as np

from .._floors import trusted_modules

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Inside ``trusted()``: "all" (no checks at all) or "typed" (none but for code typed at a prompt)
_TRUSTED: ContextVar[str | None] = ContextVar("minirnn_checks_trusted", default=None)

# Files whose calls are trusted: the math, block and model modules (minirnn/_floors.py), which
# check their own inputs where they enter the library. Plain string comparisons against the
# paths the package was imported from (a code object's co_filename is its module's __file__):
# nothing here calls into the standard library, so a debugger that skips this package never
# stops inside a helper of the rule.
_CHECKS_PREFIX = os.path.dirname(__file__) + os.sep
_PACKAGE_DIR = os.path.dirname(os.path.dirname(__file__))
_TRUSTED_FILES = frozenset(os.path.join(_PACKAGE_DIR, f"{m}.py") for m in trusted_modules())


# --- checked once per call -----------------------------------------------------------------------

def active() -> bool:
    """Should the validator that asks run its checks?

    Yes, unless the public function it validates for was called by code compiled from one of
    minirnn's math, block or model files (which checked the inputs where they entered the
    library), or inside ``trusted``. The decision is made by the caller's *code*, not its
    module globals: code typed at a pdb prompt (``p``, ``!``, ``interact``), in a notebook cell,
    a script or ``python -c`` is always checked, even at a breakpoint inside the library (a
    line typed at a prompt also inside ``trusted(except_typed=True)``).

    The frames are walked, not counted: out of the checks package to the public function,
    then one more to its caller. Called from anywhere else, it answers for a public function
    called from there.
    """
    mode = _TRUSTED.get()
    if mode == "all":
        return False
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_CHECKS_PREFIX):
        frame = frame.f_back                                   # leave the validators
    caller = frame.f_back if frame is not None else None       # who called the function
    if caller is None:
        return True
    if mode == "typed":                       # only code compiled from "<stdin>", "<string>", ...
        return caller.f_code.co_filename.startswith("<")
    return caller.f_code.co_filename not in _TRUSTED_FILES


@contextlib.contextmanager
def trusted(except_typed: bool = False):
    """Run a block without checks, as inside a model (used by the benchmarks' timing loops,
    which check their inputs once before timing many calls).

    With ``except_typed=True`` a call typed at a debugger prompt (code compiled from a pseudo-file
    such as ``<stdin>``, as pdb compiles it) is still checked: ``numerical_gradient`` runs its
    nudged calls so, and a student who stops in one of them keeps the checks at the prompt.
    """
    token = _TRUSTED.set("typed" if except_typed else "all")
    try:
        yield
    finally:
        _TRUSTED.reset(token)


# --- the shape bookkeeper ------------------------------------------------------------------------

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

    def bind_all(self, letters: str, shape: tuple, origin: str) -> None:
        """``bind`` every letter of ``letters`` (space-separated) to ``shape``."""
        for letter, size in zip(letters.split(), shape):
            self.bind(letter, size, origin)

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
        if 0 in arr.shape:
            letter = letters[arr.shape.index(0)]
            self.fail(f"{name} has an empty axis {letter} (shape {arr.shape}); "
                      f"every axis of {spec} must have at least one element")
        for axis, (letter, size) in enumerate(zip(letters, arr.shape)):
            if self.sizes.get(letter, size) != size or letter not in self.sizes:
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
        if type(params) is not dict and not isinstance(params, Mapping):
            self.fail(f"{name} must be a dict of arrays, got {type(params).__name__}", TypeError)
        optional = set(optional)
        missing = [k for k in axes if k not in params and k not in optional]
        unknown = [k for k in params if k not in axes]
        expected = f"expected keys {sorted(k for k in axes if k not in optional)}" + (
            f" and optionally {sorted(optional)}" if optional else "")
        if missing:
            self.fail(f"{name} is missing key(s) {missing}; {expected}")
        if unknown:
            self.fail(f"{name} has unknown key(s) {unknown}; {expected}")
        return {k: self.array(f"{name}[{k!r}]", params[k], spec)
                for k, spec in axes.items() if k in params}


# --- small shared checks -------------------------------------------------------------------------

def lead(ndim: int, last: str) -> str:
    """Axis letters ``"n0 n1 ... last"`` for an array of ``ndim`` dimensions whose trailing
    axes are named by ``last`` (any leading axes are free)."""
    n_last = len(last.split())
    return " ".join([f"n{i}" for i in range(ndim - n_last)] + last.split())


def same_dtype(*arrays):
    """The arrays converted to their common float dtype (float32 only if all are)."""
    dtype = np.result_type(*arrays)
    return tuple(a.astype(dtype, copy=False) for a in arrays)


def common_dtype(x, params: dict):
    """``x`` and every parameter in their common dtype (one float64 array promotes the layer,
    as NumPy's promotion would: nothing is silently rounded to float32)."""
    x, *arrays = same_dtype(x, *params.values())
    return x, dict(zip(params, arrays))


def check_int(func: str, name: str, value, minimum: int) -> int:
    """Check that ``value`` is an integer (not bool) at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{func}: {name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{func}: {name} must be >= {minimum}, got {value}")
    return int(value)


def check_eps(func: str, eps) -> float:
    """Check a normalisation epsilon: a real number (not bool) ``>= 0``."""
    if isinstance(eps, bool) or not (isinstance(eps, (int, float, np.floating)) and eps >= 0):
        raise ValueError(f"{func}: eps must be a number >= 0, got {eps!r}")
    return float(eps)


def check_bool(func: str, name: str, value) -> bool:
    """Check a flag: True or False (NumPy booleans too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{func}: {name} must be True or False, got {value!r}")
    return bool(value)


def gradient(func: str, name: str, grad, cache, cls: str, forward: str, field: str,
             axes: str) -> np.ndarray:
    """A backward's cache (the class named ``cls`` that ``forward`` returns) and its upstream
    gradient ``grad``, which must have the shape of ``cache.<field>`` (axes named by ``axes``)."""
    check_cache(func, cache, cls, forward)
    s = Shapes(func)
    s.bind_all(axes, getattr(cache, field).shape, f"cache.{field}")
    return s.array(name, grad, axes)


def check_cache(func: str, cache, cls: str, forward: str) -> None:
    """Check that a backward function got the cache its forward function returned: an instance
    of the class named ``cls`` (by name, so that the checks never import the math above them)."""
    if type(cache).__name__ == cls:
        return
    hint = ""
    if isinstance(cache, tuple) and not hasattr(cache, "_fields"):
        hint = f"; {forward} returns (output, ..., cache): pass only its last element"
    raise TypeError(f"{func}: cache must be the {cls} returned by {forward}, "
                    f"got {type(cache).__name__}{hint}")
