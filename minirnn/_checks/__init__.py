"""All input validation of minirnn, in one package a debugger can skip.

A student who passes the wrong thing should read *which* argument is wrong and *what* was
expected, not a broadcasting error from deep inside NumPy. A student who steps through a
function in a debugger should land on its first equation, not on fifty lines of checks. Both
hold because every check lives here: a public math function makes **one** call into this
package (``check.<function name>(...)``, in ``minirnn/_checks/<module>.py``), and
``pdb.Pdb(skip=["minirnn._checks*"])`` or VS Code's ``justMyCode`` steps over it.

Each validator declares every array with the letters of its axes (the alphabet of the notation
page: ``B`` batch, ``T`` time, ``D`` model width, ...) on a ``Shapes``. The first array
that uses a letter fixes its size; every later use must agree, and the error names both arrays.
A validator only checks and converts (nested lists to arrays, a scalar decay to one per head,
mixed float32/float64 inputs to one dtype, a missing state to zeros); it never computes
anything a student needs to see.

**Checked once per call.** A validator checks only when its function was called from outside
the library's math and model modules (``INSIDE``): your code, a test, the tour, the
grader. When a multi-head layer calls attention, or a language model calls its layers at every
step, the inputs were already checked at the boundary, so the inner validators only convert
(``active`` looks at who called). A student who calls any function directly gets every
check; a model does not re-check its layers at every step. ``trusted()`` switches the checks off
for a block (the decode benchmark checks once, then times many steps).
"""

import inspect

from . import attention, gated, gated_msr, layers, models, msr, retention, rnn, vision
from .core import (  # noqa: F401
    FLOAT_DTYPES,
    INSIDE,
    NonFiniteError,
    Shapes,
    active,
    check_bool,
    check_cache,
    check_eps,
    check_int,
    gradient,
    lead,
    same_dtype,
    trusted,
)

# check.<name> for every public validator of the submodules (each is named after the public
# function it checks, so the lists are not written twice)
for _module in (attention, gated, gated_msr, layers, models, msr, retention, rnn, vision):
    globals().update({name: f for name, f in vars(_module).items()
                      if inspect.isfunction(f) and f.__module__ == _module.__name__
                      and not name.startswith("_")})
