"""``python -m minirnn step MECHANISM``: follow a tiny example number by number.

The numbers come from the library: forward values from the caches (hidden states, attention
scores and weights, retention states, each chunk's inner and cross parts, the Manhattan decay),
backward values from the library's backward functions (and, where a walk backwards is shown step
by step, the gradient flowing into each step written out in closed form beside them). Every run
ends by checking the form shown against a *different* one: the recurrent form against the
parallel form, a KV-cache decode against the full causal attention, BPTT against the chained
step backward, 2-D retention against its four scans. Time is indexed from 0 everywhere, like the
arrays (``x[:, 0]`` is the first token).

The package, bottom to top:

- ``printing.py``: what every walk shares (``Step``, ``fmt``, ``tiny``, ``difference``); it
  imports no walk.
- one walk per mechanism, named after the module of the library it walks (``rnn.py`` walks
  ``minirnn/rnn.py``, ...). A walk imports ``printing`` and the library, never this file, and
  has the same interface:

  ``FORMS``
      the forms it can show, a tuple of names; the first is shown when none is asked for;
  ``walk(T, d, seed, backward, form, chunk_size)``
      an iterator of ``Step``; it raises ``ValueError`` at the call for a size it cannot show.

- this file, which finds the walks: every module of the package but ``printing`` is one. Adding
  a mechanism is adding a module; ``MECHANISMS`` and the command line's choices follow.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import textwrap
from collections.abc import Callable
from types import ModuleType

from .._floors import FLOORS
from .printing import WIDTH, Step, difference, fmt, tiny

__all__ = ["FORMS", "MECHANISMS", "WALKS", "Step", "difference", "find_walks", "fmt",
           "run_explorer", "tiny"]

SHARED = "printing"                     # the one module of the package that is not a walk


def find_walks(path, package: str) -> dict[str, ModuleType]:
    """Every walk of the package at ``path`` (named ``package``), by mechanism name.

    The order is that of the library's math floor (``minirnn._floors.FLOORS``: rnn, attention,
    retention, gated, msr, ..., vision), so the simplest mechanism comes first; a walk named
    after no module of that floor comes after them, alphabetically.
    """
    math = next(modules for name, _, modules in FLOORS if name == "math")
    names = [m.name for m in pkgutil.iter_modules(path) if m.name != SHARED]
    names.sort(key=lambda name: (math.index(name) if name in math else len(math), name))
    walks = {name: importlib.import_module(f"{package}.{name}") for name in names}
    for name, module in walks.items():
        if not (isinstance(getattr(module, "FORMS", None), tuple) and module.FORMS
                and callable(getattr(module, "walk", None))):
            raise TypeError(f"{package}.{name} is not a walk: every module of the package but "
                            f"{SHARED} needs FORMS (a non-empty tuple) and walk(...)")
    return walks


WALKS: dict[str, ModuleType] = find_walks(__path__, __name__)
MECHANISMS: tuple[str, ...] = tuple(WALKS)
FORMS: dict[str, tuple[str, ...]] = {name: walk.FORMS for name, walk in WALKS.items()}


def run_explorer(mechanism: str, form: str | None = None, chunk_size: int = 2, T: int = 4,
                 d: int = 2, seed: int = 0, backward: bool = False, pause: bool | None = None,
                 out: Callable[[str], None] = print, ask: Callable[[str], str] = input) -> int:
    """Print the steps of ``mechanism`` on a tiny example; pause between steps if asked.

    ``form=None`` shows the mechanism's first form (``FORMS[mechanism][0]``). ``pause=None``
    pauses only when standard input and output are a terminal. Returns the number of steps
    shown (fewer if the reader quits with ``q``).
    """
    if mechanism not in WALKS:
        raise ValueError(f"unknown mechanism {mechanism!r}; choose one of "
                         f"{', '.join(MECHANISMS)}")
    walk = WALKS[mechanism]
    form = walk.FORMS[0] if form is None else form
    if form not in walk.FORMS:
        raise ValueError(f"{mechanism} has no form {form!r}; its forms are "
                         f"{', '.join(walk.FORMS)}")
    if not 1 <= T <= 12 or not 1 <= d <= 8:
        raise ValueError(f"keep the example tiny: 1 <= T <= 12 and 1 <= d <= 8 (got T = {T}, "
                         f"d = {d})")
    if pause is None:
        pause = sys.stdin.isatty() and sys.stdout.isatty()
    steps = 0
    for step in walk.walk(T=T, d=d, seed=seed, backward=backward, form=form,
                          chunk_size=chunk_size):
        steps += 1
        out("\n" + textwrap.fill(f"[{steps}] {step.title}", WIDTH, subsequent_indent="    "))
        for line in step.lines:
            out(line)
        if pause and ask("-- Enter: next step, q: quit -- ").strip().lower() == "q":
            break
    return steps
