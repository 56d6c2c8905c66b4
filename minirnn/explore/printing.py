"""What every walk of the explorer shares: a step, how arrays are printed, the inputs, the check.

The bottom of ``minirnn.explore``: the walks import from here, this imports no walk (and not the
package's ``__init__``), so the package has no import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..gradcheck import rel_error

WIDTH = 78


@dataclass
class Step:
    title: str            # what happens, with the equation number
    lines: list           # what to print


def fmt(name: str, a) -> str:
    """``name (shape) = values``, wrapped to the terminal width.

    Three decimals, exact zeros as ``0``; an array whose largest entry is below 0.05 is shown
    times a power of ten (``x 1e-3``), and one with a non-zero entry that would still round to
    zero is shown in scientific notation, so a number that is not zero never prints as zero.
    """
    a = np.asarray(a, dtype=np.float64)
    head = f"{name} {a.shape}" if a.ndim else name
    big = float(np.max(np.abs(a))) if a.size else 0.0
    if 0.0 < big < 0.05:
        exponent = int(np.floor(np.log10(big)))
        a = a / 10.0 ** exponent
        head += f" x 1e{exponent}"
    small = np.abs(a[(a != 0)])
    if small.size and small.min() < 5e-4:
        text = np.array2string(a, max_line_width=WIDTH - 4, separator=" ",
                               formatter={"float_kind": lambda x: f"{x:.2e}" if x != 0 else "0"})
    else:
        text = np.array2string(a, max_line_width=WIDTH - 4, separator=" ", formatter={
            "float_kind": lambda x: f"{x: .3f}" if x != 0 else " 0    "})   # exact zeros: 0
    head += " ="
    if "\n" not in text and len(head) + 1 + len(text) <= WIDTH:
        return f"{head} {text}"
    return head + "\n" + "\n".join("    " + line for line in text.splitlines())


def tiny(rng, *shape):
    """Short readable numbers: multiples of 0.5 between -1 and 1."""
    return rng.integers(-2, 3, shape) / 2.0


def flat(*arrays) -> np.ndarray:
    """Several arrays as one vector, to compare whole sets of gradients at once."""
    return np.concatenate([np.ravel(a) for a in arrays])


def difference(label: str, a, b) -> str:
    """The line every check prints (tests read it: ``largest relative difference, ...: X``);
    ``label`` holds no colon."""
    return f"largest relative difference, {label}: {rel_error(a, b):.1e}"


def reference_form(form: str) -> str:
    """The form a sequence form (parallel, recurrent, chunkwise) is checked against."""
    return "recurrent" if form == "parallel" else "parallel"


def whole(cache, name: str) -> np.ndarray:
    """Field ``name`` (one with batch, head and time axes: ``q``, ``v``, ``r``, ``out``, ...) of
    a retention or gated retention cache over the whole sequence: a chunkwise cache keeps the
    parallel cache of every chunk, whose fields are joined along time."""
    if hasattr(cache, "chunks"):
        return np.concatenate([getattr(chunk, name) for chunk in cache.chunks], axis=2)
    return getattr(cache, name)
